/**
 * The workload shared by the cluster benchmark (bench/cluster.ts) and its load generator
 * (bench/load-worker.ts): key names, values that can be recomputed from their key (so verifying
 * a write needs only the key), and the messages between the two processes.
 */
import type { HistogramJson } from './histogram.js';

export type Consistency = 'linearizable' | 'lease' | 'stale';

/**
 * The HTTP API a target speaks: iroh-raft's own (`PUT /v1/kv/<key>` with the value as the body,
 * `GET /v1/kv/<key>?consistency=`), or etcd v3's JSON gateway (`POST /v3/kv/put` and
 * `POST /v3/kv/range` with base64 keys and values in JSON; a range is linearizable unless
 * `serializable` is set, which is what `stale` asks for).
 */
export type Api = 'iroh-raft' | 'etcd';

export interface KvRequest {
  readonly method: 'GET' | 'PUT' | 'POST';
  readonly path: string;
  readonly body: Buffer;
  readonly contentType: string | undefined;
}

const EMPTY = Buffer.alloc(0);

export function putRequest(api: Api, key: string, value: Buffer): KvRequest {
  if (api === 'etcd') {
    const body = Buffer.from(`{"key":"${Buffer.from(key).toString('base64')}","value":"${value.toString('base64')}"}`);
    return { method: 'POST', path: '/v3/kv/put', body, contentType: 'application/json' };
  }
  return { method: 'PUT', path: `/v1/kv/${key}`, body: value, contentType: 'application/octet-stream' };
}

export function getRequest(api: Api, key: string, consistency: Consistency): KvRequest {
  if (api === 'etcd') {
    const body = Buffer.from(`{"key":"${Buffer.from(key).toString('base64')}"${consistency === 'stale' ? ',"serializable":true' : ''}}`);
    return { method: 'POST', path: '/v3/kv/range', body, contentType: 'application/json' };
  }
  return { method: 'GET', path: `/v1/kv/${key}?consistency=${consistency}`, body: EMPTY, contentType: undefined };
}

/**
 * The value a 2xx read answer carries (latin1 text), or null when the key does not exist (an
 * iroh-raft read answers 404 for that; an etcd range answers 200 without `kvs`).
 */
export function readValue(api: Api, body: string): string | null {
  if (api === 'iroh-raft') return body;
  const kvs = (JSON.parse(body) as { kvs?: { value?: string }[] }).kvs;
  if (kvs === undefined || kvs.length === 0) return null;
  return Buffer.from(kvs[0]!.value ?? '', 'base64').toString('latin1');
}

/** A short code for a non-2xx answer: iroh-raft's `error.code`, etcd's gateway `message`, or the status alone. */
export function errorCodeOf(status: number, body: string): string {
  try {
    const e = JSON.parse(body) as { error?: { code?: unknown } | string; message?: unknown };
    if (typeof e.error === 'object' && typeof e.error.code === 'string') return `${status} ${e.error.code}`;
    if (typeof e.message === 'string') return `${status} ${e.message.slice(0, 80)}`;
    return String(status);
  } catch {
    return String(status);
  }
}

/** Share of requests that are reads, in percent (puts are the rest): put = 0, get = 100. */
export interface Mix {
  readonly label: string;
  readonly readPercent: number;
  /**
   * `cas`: every request is a compare-and-set on a preloaded key, expecting the version the load
   * generator last saw for it (conflicts between connections answer 412 and teach it the version).
   */
  readonly cas?: boolean;
}

/** `put`, `get`, `cas`, or `mixed:R/W` with R + W = 100 (R percent reads, W percent writes). */
export function parseMix(s: string): Mix | undefined {
  if (s === 'put') return { label: s, readPercent: 0 };
  if (s === 'cas') return { label: s, readPercent: 0, cas: true };
  if (s === 'get') return { label: s, readPercent: 100 };
  const m = /^mixed:(\d{1,3})\/(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const r = Number(m[1]);
  const w = Number(m[2]);
  if (r + w !== 100) return undefined;
  return { label: s, readPercent: r };
}

/** Largest value the node accepts (`valueBytesMax` in src/shards/kv/limits.ts), bytes. */
export const VALUE_BYTES_MAX = 1 << 20;
/** Keys preloaded for reads at most, whatever `--keys` says: preloading is not what we measure. */
export const PRELOAD_KEYS_MAX = 5000;

/** The key of preloaded (read) key `i` of a run. */
export const readKey = (prefix: string, i: number): string => `${prefix}r${i}`;
/** The key of write number `seq` of load instance `instance`: every put writes a new key. */
export const writeKey = (prefix: string, instance: number, seq: number): string => `${prefix}w${instance}-${seq}`;

/** The value stored under `key`: the key and a separator repeated to `size` bytes (ASCII). */
export function valueOf(key: string, size: number): Buffer {
  return Buffer.alloc(size, `${key};`);
}

/** The value a compare-and-set writes when it moves `key` to `version`: checkable from both. */
export function casValueOf(key: string, version: number, size: number): Buffer {
  return valueOf(`${key}#${version}`, size);
}

/** A compare-and-set of iroh-raft's API: `PUT /v1/kv/<key>?version=<expected>`. */
export function casRequest(key: string, expected: number, value: Buffer): KvRequest {
  return { method: 'PUT', path: `/v1/kv/${key}?version=${expected}`, body: value, contentType: 'application/octet-stream' };
}

/** The `version` of a 200 `{"version"}` answer or of a 412 `{"error":{"version"}}` one, or undefined. */
export function versionOf(body: string): number | undefined {
  try {
    const j = JSON.parse(body) as { version?: unknown; error?: { version?: unknown } };
    const v = j.version ?? j.error?.version;
    return typeof v === 'number' && Number.isSafeInteger(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** What the parent asks the load generator to do (first IPC message). */
export interface LoadConfig {
  readonly api: Api;
  /** One autocannon instance per URL; connections are split between them. */
  readonly urls: readonly string[];
  readonly connections: number;
  readonly durationS: number;
  readonly valueSize: number;
  readonly mix: Mix;
  readonly consistency: Consistency;
  readonly prefix: string;
  /** Preloaded keys readKey(prefix, 0 .. readKeys - 1); reads pick one uniformly. */
  readonly readKeys: number;
  /** Client-side deadline per request, seconds (autocannon's `timeout`). */
  readonly timeoutS: number;
  /** Acknowledged write seqs kept per run; past it a uniform reservoir sample of this size. */
  readonly ackedKeptMax: number;
  /**
   * Leader-aware load (iroh-raft only): the cluster's shard count and tenant. Each URL's
   * connections then send only keys whose shard that URL's node leads, as a client that follows
   * the `x-node` answers would; who leads what is read from every URL's GET /v1/status every 0.5 s.
   */
  readonly direct?: { readonly shards: number; readonly tenant: string };
  /** Drive the load through iroh-raft's client library (bench/client-load.ts) instead of autocannon. */
  readonly client?: boolean;
  /** iroh-raft only: every request names this tenant in `x-tenant` (nodes with `--auth off`). Default: none (the node's default tenant). */
  readonly tenant?: string;
  /**
   * Requests per second over all connections (autocannon's overallRate, split over the URLs as the
   * connections are): a steady load. Default: none, each connection sends as soon as its answer came.
   */
  readonly ratePerSec?: number;
  /**
   * Seconds of load before the measured window (autocannon only): answers that complete in it count
   * for the checks (acknowledged writes are read back, reads compared, non-2xx answers reported)
   * but not for the rate or the latencies. Default 0.
   */
  readonly warmupS?: number;
}

export interface OpResult {
  /** Latency of 2xx answers, from just before the request is written to its last byte. */
  readonly latency: HistogramJson;
  /** Answers by HTTP status. */
  readonly statuses: Record<string, number>;
  /** Non-2xx answers by `status code` (the error body's code), e.g. "503 Overloaded". */
  readonly errorCodes: Record<string, number>;
}

/** The load generator's answer (last IPC message). */
export interface LoadResult {
  readonly elapsedS: number;
  readonly put: OpResult;
  readonly get: OpResult;
  /** Reads answered 200 with a value other than the one written. */
  readonly readMismatches: number;
  /** Some mismatching reads (key, length got, first bytes), for the report. */
  readonly readMismatchSamples: readonly string[];
  /** Acknowledged writes (200 with a version), all of them. */
  readonly ackedWrites: number;
  /** Of those, the ones acknowledged in the measured window (after the warm-up); absent: all of them. */
  readonly ackedWritesMeasured?: number;
  /** [instance, seq] of acknowledged writes: all of them, or a uniform sample of ackedKeptMax. */
  readonly acked: readonly (readonly [number, number])[];
  readonly ackedSampled: boolean;
  /** autocannon's own totals, summed over instances (a cross-check of ours). */
  readonly autocannon: {
    readonly requests: number;
    readonly errors: number;
    readonly timeouts: number;
    readonly non2xx: number;
    readonly mismatches: number;
    readonly resets: number;
  };
  /** Connection errors (refused, reset), with their messages counted. */
  readonly connErrors: Record<string, number>;
  /** --mix cas: per preloaded key index, the highest version an acknowledged compare-and-set set. */
  readonly casMax: Record<string, number>;
}

export type WorkerMessage =
  | { readonly type: 'ready' }
  /** The warm-up is over: the measured window starts now (sent only with warmupS > 0). */
  | { readonly type: 'measuring' }
  | { readonly type: 'progress'; readonly elapsedS: number; readonly okPerSec: number; readonly nonOkPerSec: number }
  | { readonly type: 'result'; readonly result: LoadResult }
  | { readonly type: 'error'; readonly message: string };
