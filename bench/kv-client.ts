/**
 * The benchmark's own small HTTP client for everything but the load itself: health
 * checks, preloading, reading back acknowledged writes, scraping /metrics and /v1/status.
 */
import http from 'node:http';

export interface Answer {
  readonly status: number;
  readonly body: Buffer;
  readonly headers: http.IncomingHttpHeaders;
}

/** Keep-alive connections, so reading back a hundred thousand writes does not open as many sockets. */
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

export interface CallInit {
  readonly method?: 'GET' | 'PUT' | 'POST';
  readonly body?: Buffer;
  readonly contentType?: string | undefined;
}

/**
 * One request (node:http: several times cheaper per request than fetch, which matters when the
 * benchmark reads back every acknowledged write); throws on network errors and after `timeoutMs`.
 */
export function call(url: string, init: CallInit = {}, timeoutMs = 10_000): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: init.method ?? 'GET',
        agent,
        timeout: timeoutMs,
        headers: {
          ...(init.body ? { 'content-length': init.body.length } : {}),
          ...(init.contentType !== undefined ? { 'content-type': init.contentType } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(init.body);
  });
}

/** The error code of a `{"error":{"code"}}` body, or the status alone. */
export function describe(a: Answer): string {
  try {
    const code = (JSON.parse(a.body.toString('utf8')) as { error?: { code?: unknown } }).error?.code;
    return typeof code === 'string' ? `${a.status} ${code}` : String(a.status);
  } catch {
    return String(a.status);
  }
}

/** Answers worth retrying: the node is electing, overloaded or forwarding to a peer that is away. */
const retryable = (status: number): boolean => status === 503 || status === 504;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * `call`, again after 503/504 answers and network errors, up to `attempts` times with a growing
 * pause; `url` is asked anew for each attempt (to try another node). Resolves with the last
 * answer, or rejects with the last network error.
 */
export async function callRetrying(url: () => string, init: CallInit = {}, attempts = 10): Promise<Answer> {
  for (let i = 1; ; i++) {
    try {
      const a = await call(url(), init);
      if (!retryable(a.status) || i >= attempts) return a;
    } catch (e) {
      if (i >= attempts) throw e;
    }
    await sleep(Math.min(1000, 20 * 2 ** i));
  }
}

/** Runs `f` over `items` with at most `limit` calls in flight; resolves when all are done. */
export async function forEachLimit<T>(items: readonly T[], limit: number, f: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await f(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/** Sums of the samples of each metric in Prometheus text (over all label sets). */
export async function scrape(baseUrl: string): Promise<Map<string, number>> {
  // Once more on a network error: a kept-alive socket the server closed while idle resets.
  const a = await call(`${baseUrl}/metrics`).catch(() => call(`${baseUrl}/metrics`));
  if (a.status !== 200) throw new Error(`${baseUrl}/metrics answered ${describe(a)}`);
  const sums = new Map<string, number>();
  for (const line of a.body.toString('utf8').split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const v = Number(m[2]);
    if (Number.isFinite(v)) sums.set(m[1]!, (sums.get(m[1]!) ?? 0) + v);
  }
  return sums;
}

/** Resolves once every URL answers /healthz with 200; rejects after `timeoutMs`. */
export async function waitHealthy(urls: readonly string[], timeoutMs: number, alive: () => void = () => {}, path = '/healthz'): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  const pending = new Set(urls);
  while (pending.size > 0) {
    alive();
    for (const u of [...pending]) {
      try {
        if ((await call(`${u}${path}`, {}, 2000)).status === 200) pending.delete(u);
      } catch {
        // not listening yet
      }
    }
    if (pending.size === 0) return;
    if (performance.now() > deadline) throw new Error(`not healthy within ${timeoutMs / 1000} s: ${[...pending].join(', ')}`);
    await sleep(100);
  }
}
