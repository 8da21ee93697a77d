import type { Result } from '../api/index.js';
import { KvError } from '../shards/kv/index.js';

/**
 * The KV encoders throw KvError for a field that does not fit its length field (a tenant of more
 * than 255 bytes, say) before anything is sent: a bad request, answered with the error's code
 * (InvalidTenant, KeyTooLarge, ...) instead of a 500.
 */
export async function refusingBadFields<T>(f: () => Promise<Result<T>>): Promise<Result<T>> {
  try {
    return await f();
  } catch (e) {
    if (!(e instanceof KvError)) throw e;
    return { ok: false, code: e.code, message: e.message };
  }
}
