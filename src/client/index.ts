/**
 * `iroh-raft/client`: the typed client of an iroh-raft cluster's HTTP API.
 *
 * ```ts
 * import { Client } from 'iroh-raft/client';
 * const kv = new Client({ endpoints: ['http://127.0.0.1:7070'] });
 * await kv.put('greeting', 'hello');
 * (await kv.get('greeting'))?.value.text(); // 'hello'
 * await kv.close();
 * ```
 *
 * It imports nothing heavy at runtime (global fetch, src/wire's hash and session ids; types of
 * src/api), so it loads in any Node >= 20.15 process without the engine's native parts; a lint
 * rule keeps it so.
 */
export { Client } from './client.js';
export type { CallOptions, ClientOptions, GetResult, PutOptions, ReadOptions, ScanItem, ScanOptions, ScanPage } from './client.js';
export { ClientError, ClientOnlyCode, RETRYABLE, isRetryable } from './errors.js';
export type { ClientErrorCode, ClientErrorInfo } from './errors.js';
export { Bytes } from './bytes.js';
export type { BytesLike } from './bytes.js';
export type { RetryOptions } from './backoff.js';
export type { Consistency } from '../api/consistency.js';
