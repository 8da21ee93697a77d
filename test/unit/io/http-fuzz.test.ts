/**
 * A seeded fuzz of the client API over real sockets: thousands of requests with random methods,
 * paths, percent-encodings, queries, headers (tenant, version, if-match, sessions, host,
 * authorization, framing) and bodies, sent raw. Every one must be answered (never a hang, never a
 * crash), never with a 5xx, with a JSON error carrying a known stable code when refused; and a
 * refused request must leave the state exactly as it was. The seed is fixed; fast-check prints
 * the failing case and its seed to replay.
 */
import { Buffer } from 'node:buffer';
import { connect } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isServiceErrorCode } from '../../../src/api/index.js';
import { HttpServer } from '../../../src/io/http/index.js';
import { MemoryKv } from '../../support/memory-kv.js';

const SEED = 20261206;
const RUNS = 2000;

let server: HttpServer;
const kv = new MemoryKv();
const errors: unknown[] = [];
beforeAll(async () => {
  const logger = { warn: () => undefined, error: (obj: object) => errors.push(obj) };
  server = await HttpServer.start({ host: '127.0.0.1', port: 0, service: kv, logger, requestTimeoutMs: 1_000, maxBodyBytes: 4096, lingerMs: 50 });
});
afterAll(() => server.destroy());

/** Sends `raw` on a new connection and reads until the server closes it: status and body. */
function exchange(raw: Buffer): Promise<{ status: number; body: string; raw: string; trailing: string }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: server.address.port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer within 5 s to ${JSON.stringify(raw.toString('latin1').slice(0, 300))}`));
    }, 5_000);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      // An interim 100 Continue may come first (expect: 100-continue); the answer follows it.
      const text = Buffer.concat(chunks)
        .toString('latin1')
        .replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '');
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1] ?? 0);
      const at = text.indexOf('\r\n\r\n');
      const length = Number(/\r\ncontent-length: (\d+)\r\n/i.exec(text.slice(0, at + 2))?.[1] ?? NaN);
      // One answer per request: nothing may follow its body (a second answer would be garbage to the client).
      const body = at < 0 ? '' : text.slice(at + 4);
      resolve({ status, body, raw: text, trailing: Number.isNaN(length) ? '' : body.slice(length) });
    });
    s.end(raw);
  });
}

const pick = <T>(xs: readonly T[]): fc.Arbitrary<T> => fc.constantFrom(...xs);
const piece = fc.oneof(
  pick(['a', 'b/c', 'users/ada', '%2F', '%00', '%ff', '%zz', '%', '%4', '+', '..', '.', '~', '%C3%A9', 'é', ' ', '%20', '?', '#', '//', '\\']),
  fc.string({ maxLength: 12 }),
  fc.constant('x'.repeat(1100)),
);
const key = fc.array(piece, { maxLength: 4 }).map((p) => p.join(''));
const num = fc.oneof(pick(['0', '1', '2', '-1', '1.5', 'abc', '', '99999999999999999999', '"1"', ' 3 ', '0x10', '1e3']), fc.nat().map(String));
const query = fc
  .array(
    fc.tuple(
      pick(['prefix', 'limit', 'after', 'consistency', 'tenant', 'version', 'format', 'bogus', '']),
      fc.oneof(piece, num, pick(['lease', 'stale', 'linearizable', 'json', 'acme', 'default'])),
    ),
    { maxLength: 4 },
  )
  .map((kvs) => (kvs.length === 0 ? '' : `?${kvs.map(([k, v]) => `${k}=${v}`).join('&')}`));
const path = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(key, query).map(([k, q]) => `/v1/kv/${k}${q}`) },
  { weight: 2, arbitrary: query.map((q) => `/v1/kv${q}`) },
  {
    weight: 2,
    arbitrary: pick([
      '/v1/status',
      '/healthz',
      '/metrics',
      '/v1/placement',
      '/',
      '/ui',
      '/ui/',
      '/v1/tenants',
      '/v1',
      '/nope',
      '*',
      'http://localhost/v1/kv/a',
      'no-slash',
    ]),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 30 }).map((s) => `/${s}`) },
);
const header = fc.oneof(
  fc.tuple(pick(['x-tenant']), fc.oneof(pick(['acme', 'default', '', 't'.repeat(300), '_system', 'a b', 'é']), fc.string({ maxLength: 10 }))),
  fc.tuple(pick(['if-match']), num),
  fc.tuple(pick(['x-client-id', 'x-client-seq']), fc.oneof(num, pick(['4503599627370496', '9007199254740991', '9007199254740992']))),
  fc.tuple(pick(['authorization']), pick(['Bearer x', 'Bearer', 'Basic abc', 'bearer acme.abc', ''])),
  fc.tuple(pick(['accept']), pick(['application/json', '*/*', 'text/html'])),
  fc.tuple(pick(['expect']), pick(['100-continue', 'nonsense'])),
  fc.tuple(
    fc.string({ minLength: 1, maxLength: 8 }).filter((n) => /^[a-z-]+$/.test(n)),
    fc.string({ maxLength: 20 }),
  ),
);
/** Header values are sent as latin1 text; line breaks would split the request, so they are cut. */
const clean = (v: string): string => v.replace(/[\r\n]/g, '');
const request = fc.record({
  method: fc.oneof(
    { weight: 8, arbitrary: pick(['GET', 'PUT', 'DELETE', 'HEAD', 'POST']) },
    { weight: 1, arbitrary: pick(['PATCH', 'OPTIONS', 'FOO', 'get']) },
  ),
  path,
  host: fc.oneof({ weight: 8, arbitrary: fc.constant('localhost') }, { weight: 1, arbitrary: pick(['attacker.example', '', '127.0.0.1:1', '[::1]']) }),
  headers: fc.array(header, { maxLength: 4 }),
  body: fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ maxLength: 64 }), fc.constant(new Uint8Array(5000))),
  framing: fc.oneof({ weight: 8, arbitrary: fc.constant('length' as const) }, { weight: 1, arbitrary: pick(['chunked', 'chunked-bad', 'none'] as const) }),
});

type FuzzRequest = typeof request extends fc.Arbitrary<infer T> ? T : never;

function encode(r: FuzzRequest): Buffer {
  const lines = [`${r.method} ${clean(r.path)} HTTP/1.1`, `host: ${r.host}`, 'connection: close'];
  for (const [n, v] of r.headers) lines.push(`${n}: ${clean(v)}`);
  const body = Buffer.from(r.body);
  if (r.framing === 'length') lines.push(`content-length: ${body.length}`);
  if (r.framing === 'chunked' || r.framing === 'chunked-bad') lines.push('transfer-encoding: chunked');
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  if (r.framing === 'chunked') return Buffer.concat([head, Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
  if (r.framing === 'chunked-bad') return Buffer.concat([head, Buffer.from('zz\r\n'), body]);
  return r.framing === 'none' ? head : Buffer.concat([head, body]);
}

describe('HTTP fuzz', () => {
  test(`${RUNS} random requests: always answered, never 5xx, refusals coded and without effect`, async () => {
    // A few keys for the requests to find, overwrite, compare against and delete.
    for (const k of ['a', 'users/ada', 'b/c']) await kv.put({ tenant: 'default', key: Buffer.from(k), value: Buffer.from('seed') });
    const codes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const before = kv.fingerprint();
        const { status, body, raw, trailing } = await exchange(encode(r));
        expect(trailing, raw.slice(0, 600)).toBe('');
        expect(status, raw.slice(0, 200)).toBeGreaterThanOrEqual(200);
        expect(status, raw.slice(0, 400)).toBeLessThan(500);
        if (status >= 400) {
          expect(kv.fingerprint()).toBe(before);
          if (r.method !== 'HEAD') {
            const code = (JSON.parse(body.slice(0, body.length - trailing.length)) as { error: { code: string; message: string } }).error.code;
            expect(isServiceErrorCode(code), code).toBe(true);
            codes.set(code, (codes.get(code) ?? 0) + 1);
          }
        }
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    expect(errors).toEqual([]);
    // The fuzz reached deep: many distinct refusals, not only one kind.
    expect([...codes.keys()].length).toBeGreaterThanOrEqual(8);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  }, 120_000);
});
