/**
 * A request is answered with what its route did, even when the connection goes wrong after its
 * head arrived (both found by test/integration/http-fuzz-auth.test.ts against a real node):
 *
 * - Its body's framing is broken (a bad chunk size) while its route already runs. A route that
 *   never reads the body (DELETE) has acted, so it is answered with its result, not a 400 that
 *   would say nothing happened (the fuzz saw a role revoked by a DELETE answered 400); a route
 *   that reads the body (PUT) is answered 400 BadRequest and writes nothing. The connection closes
 *   after the answer.
 * - The client half-closes once its request is sent. Node dropped such a request unanswered while
 *   its route went on (the fuzz saw connections closed without a byte); it is answered now.
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

/** Sends `raw` (then half-closes when `halfClose`) and reads until the server closes: everything it answered. */
function rawExchange(raw: string, halfClose: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: server.address.port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => reject(new Error('no close within 5 s')), 5_000);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    if (halfClose) s.end(raw);
    else s.write(raw);
  });
}

/** Sends `raw` whole (no half-close) and reads until the server closes: status, body, and how many answers came. */
async function exchange(raw: string): Promise<{ status: number; body: string; answers: number }> {
  const text = await rawExchange(raw, false);
  const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1] ?? 0);
  return { status, body: text.slice(text.indexOf('\r\n\r\n') + 4), answers: text.match(/HTTP\/1\.1 \d{3} /g)?.length ?? 0 };
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

/** Sends `raw` and half-closes at once (as `nc -N` or a shell's `exec 3<>` do), then reads until the server closes. */
function halfClosed(raw: string): Promise<string> {
  return rawExchange(raw, true);
}

describe('a client that half-closes after its whole request', () => {
  test('is still answered when the route finishes later: the write it made is not silent', async () => {
    await kv.put({ tenant: 'default', key: Buffer.from('half'), value: Buffer.from('v') });
    let release = (): void => undefined;
    kv.gate = new Promise<void>((r) => (release = r));
    const answers = [
      halfClosed('DELETE /v1/kv/half HTTP/1.1\r\nhost: localhost\r\n\r\n'),
      halfClosed('PUT /v1/kv/put-half HTTP/1.1\r\nhost: localhost\r\ncontent-length: 5\r\n\r\nvalue'),
    ];
    // The routes wait in the service while the server sees each client's end.
    await new Promise((r) => setTimeout(r, 100));
    release();
    kv.gate = undefined;
    const [del, put] = await Promise.all(answers);
    expect(del).toMatch(/^HTTP\/1\.1 200 [^]*\r\n\r\n\{"deleted":true\}$/);
    expect(put).toMatch(/^HTTP\/1\.1 200 [^]*\r\n\r\n\{"version":1\}$/);
    const got = await kv.get({ tenant: 'default', key: Buffer.from('put-half'), consistency: 'linearizable' });
    expect(got.ok && got.value.found && Buffer.from(got.value.value).toString()).toBe('value');
  });
});
