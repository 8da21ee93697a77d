/**
 * The routes of the client API, without sockets: a checked request and a service's result become
 * a reply, or an HttpError. Service failures keep their code and get its status; a code outside
 * the union, even one named like a property of every object, becomes 500 Internal and is logged.
 */
import { Buffer } from 'node:buffer';
import { describe, expect, test } from 'vitest';
import type { Failure, KvService, Result } from '../../../src/api/index.js';
import { HttpError, answer, bytesToJson, serviceError } from '../../../src/io/http/index.js';
import type { ApiRequest, HttpLogger, Reply } from '../../../src/io/http/index.js';

class Log implements HttpLogger {
  readonly lines: { level: string; obj: object; msg: string }[] = [];
  warn(obj: object, msg: string): void {
    this.lines.push({ level: 'warn', obj, msg });
  }
  error(obj: object, msg: string): void {
    this.lines.push({ level: 'error', obj, msg });
  }
}

const text = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));

/** A service whose every call answers `result` (health: `healthy`). */
function serviceOf(result: Result<unknown>, healthy = true): KvService & { calls: unknown[] } {
  const calls: unknown[] = [];
  const call = (r: unknown): Promise<never> => {
    calls.push(r);
    return Promise.resolve(result as never);
  };
  return {
    calls,
    put: call,
    delete: call,
    get: call,
    scan: call,
    status: () => Promise.resolve({ node: 1 }),
    placement: () => ({ node: 1, shards: 2, replicas: 1, hash: 'h', leaders: [1, null] }),
    metrics: () => Promise.resolve({ contentType: 'text/plain; version=0.0.4', body: 'up 1\n' }),
    health: () => ({ ok: healthy, detail: { shards: 2 } }),
  };
}

async function run(req: ApiRequest, service: KvService, body: Uint8Array = new Uint8Array(0), logger = new Log()): Promise<Reply> {
  return answer(req, { service, logger, readBody: () => Promise.resolve(body) });
}

async function refusal(req: ApiRequest, service: KvService, logger = new Log()): Promise<HttpError> {
  try {
    await run(req, service, new Uint8Array(0), logger);
  } catch (e) {
    if (e instanceof HttpError) return e;
    throw e;
  }
  throw new Error('answered');
}

const json = (r: Reply): unknown => JSON.parse(r.body.toString('utf8'));
const key = text('k');

describe('service failures', () => {
  test('keep their code and get its status', () => {
    const log = new Log();
    const e = serviceError({ ok: false, code: 'NotLeader', message: 'node 2 leads' }, log);
    expect(e.code).toBe('NotLeader');
    expect(e.status).toBe(503);
    expect(e.headers).toEqual({ 'retry-after': '1' });
    expect(e.message).toBe('node 2 leads');
    expect(log.lines).toEqual([]);
  });

  test('a code outside the union is 500 Internal naming the code, and is logged', () => {
    for (const code of ['FluxCapacitorDrained', '__proto__', 'constructor', 'toString', 'hasOwnProperty', '']) {
      const log = new Log();
      const f: Failure = { ok: false, code, message: 'no flux' };
      const e = serviceError(f, log);
      expect(e.code, code).toBe('Internal');
      expect(e.status, code).toBe(500);
      expect(e.headers, code).toEqual({});
      expect(e.message, code).toBe(`internal error (${code}: no flux)`);
      expect(log.lines, code).toEqual([{ level: 'error', obj: { code, message: 'no flux' }, msg: 'unknown service error code' }]);
    }
  });

  test('every route that calls the KV answers a failure with it', async () => {
    const service = serviceOf({ ok: false, code: 'Overloaded', message: 'busy' });
    const requests: ApiRequest[] = [
      { route: 'put', tenant: 't', key, expectedVersion: undefined },
      { route: 'delete', tenant: 't', key, expectedVersion: undefined },
      { route: 'get', tenant: 't', key, consistency: 'stale', json: false },
      { route: 'scan', tenant: 't', prefix: new Uint8Array(0), limit: 5, startAfter: undefined, consistency: 'lease' },
    ];
    for (const req of requests) {
      const e = await refusal(req, service);
      expect(e.code, req.route).toBe('Overloaded');
      expect(e.status, req.route).toBe(503);
    }
  });
});

describe('routes', () => {
  test('put passes the body, the expected version and the session (delete too); a mismatch is 412 with the current version', async () => {
    const ok = serviceOf({ ok: true, value: { version: 3, swapped: true } });
    const r = await run({ route: 'put', tenant: 't', key, expectedVersion: 2 }, ok, text('v'));
    expect(r.status).toBe(200);
    expect(r.headers).toEqual({ 'x-version': '3', 'content-type': 'application/json' });
    expect(json(r)).toEqual({ version: 3 });
    expect(ok.calls).toEqual([{ tenant: 't', key, value: text('v'), expectedVersion: 2 }]);

    const plainPut = serviceOf({ ok: true, value: { version: 1, swapped: true } });
    await run({ route: 'put', tenant: 't', key, expectedVersion: undefined }, plainPut);
    expect(plainPut.calls[0]).not.toHaveProperty('expectedVersion');

    const session = { clientId: 2 ** 52 + 1, seq: 9 };
    const withSession = serviceOf({ ok: true, value: { version: 1, swapped: true } });
    await run({ route: 'put', tenant: 't', key, expectedVersion: undefined, session }, withSession, text('v'));
    await run({ route: 'delete', tenant: 't', key, expectedVersion: undefined, session }, withSession);
    expect(withSession.calls).toEqual([
      { tenant: 't', key, value: text('v'), session },
      { tenant: 't', key, session },
    ]);

    const e = await refusal({ route: 'put', tenant: 't', key, expectedVersion: 2 }, serviceOf({ ok: true, value: { version: 5, swapped: false } }));
    expect(e.code).toBe('VersionMismatch');
    expect(e.status).toBe(412);
    expect(e.toJSON()).toMatchObject({ version: 5 });
  });

  test('get: the raw value with its metadata headers, or JSON; a missing key is 404 KeyNotFound', async () => {
    const found = serviceOf({ ok: true, value: { found: true, value: new Uint8Array([0xff, 0]), version: 2, createIndex: 7, modIndex: 9 } });
    const raw = await run({ route: 'get', tenant: 't', key, consistency: 'linearizable', json: false }, found);
    expect(raw.status).toBe(200);
    expect(raw.headers).toEqual({ 'x-version': '2', 'x-create-index': '7', 'x-mod-index': '9', 'content-type': 'application/octet-stream' });
    expect([...raw.body]).toEqual([0xff, 0]);
    const asJson = await run({ route: 'get', tenant: 't', key, consistency: 'linearizable', json: true }, found);
    expect(json(asJson)).toEqual({ key: 'k', value: { base64: '/wA=' }, version: 2, createIndex: 7, modIndex: 9 });
    expect(asJson.headers['content-type']).toBe('application/json');
    const e = await refusal({ route: 'get', tenant: 't', key, consistency: 'linearizable', json: false }, serviceOf({ ok: true, value: { found: false } }));
    expect(e.code).toBe('KeyNotFound');
    expect(e.status).toBe(404);
  });

  test('scan: items in JSON, and next (the last key) only when there is more', async () => {
    const items = [
      { key: text('a'), value: text('1'), version: 1 },
      { key: new Uint8Array([0x62, 0xff]), value: text('2'), version: 4 },
    ];
    const more = await run(
      { route: 'scan', tenant: 't', prefix: new Uint8Array(0), limit: 2, startAfter: undefined, consistency: 'linearizable' },
      serviceOf({ ok: true, value: { items, more: true } }),
    );
    expect(json(more)).toEqual({
      items: [
        { key: 'a', value: '1', version: 1 },
        { key: { base64: 'Yv8=' }, value: '2', version: 4 },
      ],
      more: true,
      next: { base64: 'Yv8=' },
    });
    const done = await run(
      { route: 'scan', tenant: 't', prefix: new Uint8Array(0), limit: 2, startAfter: text('a'), consistency: 'linearizable' },
      serviceOf({ ok: true, value: { items, more: false } }),
    );
    expect(json(done)).not.toHaveProperty('next');
  });

  test('status, health (503 when not ok) and metrics (its own content type)', async () => {
    const s = serviceOf({ ok: true, value: undefined }, false);
    expect(json(await run({ route: 'status' }, s))).toEqual({ node: 1 });
    expect(json(await run({ route: 'placement', withKey: false }, s))).toEqual({ node: 1, shards: 2, replicas: 1, hash: 'h', leaders: [1, null] });
    const h = await run({ route: 'health' }, s);
    expect(h.status).toBe(503);
    expect(json(h)).toEqual({ ok: false, detail: { shards: 2 } });
    expect((await run({ route: 'health' }, serviceOf({ ok: true, value: undefined }))).status).toBe(200);
    const m = await run({ route: 'metrics' }, s);
    expect(m.headers).toEqual({ 'content-type': 'text/plain; version=0.0.4' });
    expect(m.body.toString()).toBe('up 1\n');
  });

  test('bytesToJson: text when the bytes are UTF-8, else base64', () => {
    expect(bytesToJson(text('é/x'))).toBe('é/x');
    expect(bytesToJson(new Uint8Array([0xc3]))).toEqual({ base64: 'ww==' });
    expect(bytesToJson(new Uint8Array(0))).toBe('');
  });
});
