/**
 * One HTTP attempt with global fetch (undici keeps connections alive per origin): the whole
 * answer read, or a {@link ClientError} with the server's code, status and retry-after, or
 * `Unreachable` when no answer came (refused, reset, or silent past the attempt's deadline).
 */
import { ClientError } from './errors.js';
import type { ClientErrorCode } from './errors.js';

export interface AttemptRequest {
  readonly method: 'GET' | 'PUT' | 'DELETE';
  /** Path and query, e.g. `/v1/kv/a?consistency=stale`. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Uint8Array;
}

/** A 2xx answer, read whole. */
export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Uint8Array;
}

/**
 * Sends `req` to `baseUrl`. `signal` is the call's (abort, deadline): when it fires the attempt
 * rejects with its reason as is; `attemptTimeoutMs` ends only this attempt, as Unreachable.
 */
export async function attempt(baseUrl: string, req: AttemptRequest, signal: AbortSignal, attemptTimeoutMs: number): Promise<Answer> {
  // Plain listener and timer rather than AbortSignal.any and .timeout: cheaper per request.
  const ctl = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ctl.abort();
  }, attemptTimeoutMs);
  const onAbort = (): void => ctl.abort();
  signal.addEventListener('abort', onAbort);
  const both = ctl.signal;
  let res: Response;
  let body: Uint8Array;
  try {
    res = await fetch(`${baseUrl}${req.path}`, {
      method: req.method,
      headers: req.headers,
      ...(req.body === undefined ? {} : { body: req.body }),
      signal: both,
    });
    body = new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    if (signal.aborted) throw signal.reason;
    const why = timedOut ? `no answer within ${attemptTimeoutMs} ms` : describe(e);
    throw new ClientError('Unreachable', `${req.method} ${baseUrl}${req.path}: ${why}`, { endpoint: baseUrl });
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
  }
  if (res.ok) return { status: res.status, headers: res.headers, body };
  throw errorOf(res, body, baseUrl);
}

/** The API's error answer `{"error":{"code","message",...}}` as a ClientError; BadResponse when it is not one. */
function errorOf(res: Response, body: Uint8Array, endpoint: string): ClientError {
  const retryAfter = Number(res.headers.get('retry-after') ?? NaN);
  const info = { status: res.status, endpoint, ...(Number.isFinite(retryAfter) && retryAfter >= 0 ? { retryAfterMs: retryAfter * 1000 } : {}) };
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(body));
  } catch {
    parsed = undefined;
  }
  const err = (parsed as { error?: unknown } | undefined)?.error as { code?: unknown; message?: unknown } | undefined;
  if (typeof err?.code !== 'string') return new ClientError('BadResponse', `HTTP ${res.status} from ${endpoint} without an API error body`, info);
  const { code, message, ...details } = err as Record<string, unknown>;
  // A code from a newer server than this client knows stays as sent: callers compare strings.
  return new ClientError(code as ClientErrorCode, typeof message === 'string' ? message : '', { ...info, details });
}

/** A network error's most useful words: undici hides the errno in `cause`. */
function describe(e: unknown): string {
  const cause = (e as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return e instanceof Error ? e.message : String(e);
}
