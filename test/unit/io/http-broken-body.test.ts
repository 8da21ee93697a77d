/**
 * A request whose head is whole but whose body's framing is broken (a bad chunk size) arrives
 * while its route already runs: the answer must tell what the route did. A route that never reads
 * the body (DELETE) has acted, so it is answered with its result, not a 400 that would say nothing
 * happened; a route that reads the body (PUT) is answered 400 BadRequest and writes nothing.
 * Either way the connection closes after the answer. (Found by test/integration/http-fuzz-auth.test.ts:
 * a role revoked by a DELETE answered 400.)
 */
import { Buffer } from 'node:buffer';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { HttpServer } from '../../../src/io/http/index.js';
import { MemoryKv } from '../../support/memory-kv.js';

let server: HttpServer;
const kv = new MemoryKv();
const errors: unknown[] = [];
beforeAll(async () => {
  const logger = { warn: () => undefined, error: (obj: object) => errors.push(obj) };
  server = await HttpServer.start({ host: '127.0.0.1', port: 0, service: kv, logger, lingerMs: 50 });
});
afterAll(() => server.destroy());

/** Sends `raw` whole (no half-close) and reads until the server closes: status, body, and how many answers came. */
function exchange(raw: string): Promise<{ status: number; body: string; answers: number }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: server.address.port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => reject(new Error('no close within 5 s')), 5_000);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1] ?? 0);
      resolve({ status, body: text.slice(text.indexOf('\r\n\r\n') + 4), answers: text.match(/HTTP\/1\.1 \d{3} /g)?.length ?? 0 });
    });
    s.write(raw);
  });
}

const broken = (method: string, key: string): string =>
  `${method} /v1/kv/${key} HTTP/1.1\r\nhost: localhost\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nvalue\r\n0\r\n\r\n`;

describe('a broken chunked body under a route that already runs', () => {
  test('DELETE, which reads no body, is answered with what it did: 200 deleted, and the key is gone', async () => {
    await kv.put({ tenant: 'default', key: Buffer.from('gone'), value: Buffer.from('v') });
    const a = await exchange(broken('DELETE', 'gone'));
    expect(a.answers).toBe(1);
    expect([a.status, a.body]).toEqual([200, '{"deleted":true}']);
    const after = await kv.get({ tenant: 'default', key: Buffer.from('gone'), consistency: 'linearizable' });
    expect(after.ok && after.value.found).toBe(false);
  });

  test('PUT, which reads the body, is answered 400 BadRequest and writes nothing', async () => {
    const before = kv.fingerprint();
    const a = await exchange(broken('PUT', 'never'));
    expect(a.answers).toBe(1);
    expect(a.status).toBe(400);
    expect((JSON.parse(a.body) as { error: { code: string } }).error.code).toBe('BadRequest');
    expect(kv.fingerprint()).toBe(before);
  });

  test('nothing was logged as a failure', () => {
    expect(errors).toEqual([]);
  });
});
