/**
 * Request parsing of the client API, without sockets: method, target and headers become a typed
 * request or an HttpError with its code, status and headers. What only a socket shows (bodies,
 * timeouts, lingering, 100-continue) is in http.test.ts.
 */
import { Buffer } from 'node:buffer';
import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, test } from 'vitest';
import { HttpError, parseRequest, percentDecode } from '../../../src/io/http/index.js';
import type { ApiRequest } from '../../../src/io/http/index.js';
import { declaredBodyBytes, hasBody, payloadTooLarge, splitTarget } from '../../../src/io/http/request.js';

const MAX_KEY = 8;

function parse(method: string, url: string, headers: IncomingHttpHeaders = {}): ApiRequest {
  return parseRequest({ method, url, headers }, { maxKeyBytes: MAX_KEY });
}

/** The HttpError a parse throws (fails when it does not throw one). */
function refusal(method: string, url: string, headers: IncomingHttpHeaders = {}): HttpError {
  try {
    parse(method, url, headers);
  } catch (e) {
    if (e instanceof HttpError) return e;
    throw e;
  }
  throw new Error(`${method} ${url} was accepted`);
}

const bytes = (...b: number[]): Uint8Array => new Uint8Array(b);
const text = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));
/** A parsed request with its byte fields as plain Uint8Arrays, for toEqual. */
function plain(r: ApiRequest): unknown {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v instanceof Uint8Array ? new Uint8Array(v) : v]));
}

describe('routes', () => {
  test('PUT, DELETE and GET (HEAD too) of /v1/kv/<key>', () => {
    expect(plain(parse('PUT', '/v1/kv/a'))).toEqual({ route: 'put', tenant: 'default', key: text('a'), expectedVersion: undefined });
    expect(plain(parse('DELETE', '/v1/kv/a'))).toEqual({ route: 'delete', tenant: 'default', key: text('a') });
    for (const method of ['GET', 'HEAD']) {
      expect(plain(parse(method, '/v1/kv/a'))).toEqual({ route: 'get', tenant: 'default', key: text('a'), consistency: 'linearizable', json: false });
    }
  });

  test('a scan is GET or HEAD of /v1/kv or /v1/kv/, with defaults', () => {
    for (const [method, url] of [
      ['GET', '/v1/kv'],
      ['GET', '/v1/kv/'],
      ['HEAD', '/v1/kv'],
    ] as const) {
      expect(plain(parse(method, url))).toEqual({
        route: 'scan',
        tenant: 'default',
        prefix: bytes(),
        limit: 100,
        startAfter: undefined,
        consistency: 'linearizable',
      });
    }
  });

  test('status, placement, healthz and metrics', () => {
    expect(parse('GET', '/v1/status')).toEqual({ route: 'status' });
    for (const path of ['/', '/ui', '/ui/']) expect(parse('GET', path)).toEqual({ route: 'page' });
    expect(parse('HEAD', '/ui')).toEqual({ route: 'page' });
    // No tenant token (auth off, or the admin's): the placement key may be shown; a tenant's token: never.
    expect(parse('GET', '/v1/placement')).toEqual({ route: 'placement', withKey: true });
    expect(parseRequest({ method: 'GET', url: '/v1/placement', headers: {} }, { maxKeyBytes: MAX_KEY }, 'acme')).toEqual({
      route: 'placement',
      withKey: false,
    });
    // Nor do a tenant's answers name the key's shard.
    for (const method of ['GET', 'PUT', 'DELETE']) {
      expect(parseRequest({ method, url: '/v1/kv/k', headers: {} }, { maxKeyBytes: MAX_KEY }, 'acme')).toMatchObject({ hideShard: true });
      expect(parse(method, '/v1/kv/k')).not.toHaveProperty('hideShard');
    }
    expect(refusal('PUT', '/v1/placement').code).toBe('MethodNotAllowed');
    expect(parse('GET', '/healthz')).toEqual({ route: 'health' });
    expect(parse('HEAD', '/metrics')).toEqual({ route: 'metrics' });
  });

  test('an unknown path is 404 NotFound', () => {
    for (const url of ['/ui/x', '/uix', '/v1', '/v2/kv/a', '/v1/kvx', '/metrics/', '/V1/kv/a']) {
      const e = refusal('GET', url);
      expect(e.code, url).toBe('NotFound');
      expect(e.status, url).toBe(404);
    }
  });

  test('a wrong method is 405 MethodNotAllowed with allow', () => {
    const cases: [string, string, string][] = [
      ['POST', '/v1/kv/a', 'GET, HEAD, PUT, DELETE'],
      ['PATCH', '/v1/kv/', 'GET, HEAD, PUT, DELETE'],
      ['PUT', '/v1/kv', 'GET, HEAD'],
      ['DELETE', '/v1/status', 'GET, HEAD'],
      ['POST', '/healthz', 'GET, HEAD'],
      ['PUT', '/metrics', 'GET, HEAD'],
      ['get', '/v1/kv/a', 'GET, HEAD, PUT, DELETE'],
    ];
    for (const [method, url, allow] of cases) {
      const e = refusal(method, url);
      expect(e.code, `${method} ${url}`).toBe('MethodNotAllowed');
      expect(e.status).toBe(405);
      expect(e.headers).toEqual({ allow });
    }
  });

  test('PUT or DELETE of /v1/kv/ is 400 EmptyKey', () => {
    for (const method of ['PUT', 'DELETE']) expect(refusal(method, '/v1/kv/').code).toBe('EmptyKey');
  });
});

describe('request target', () => {
  test('the absolute form is reduced to its path; a fragment is dropped', () => {
    expect(splitTarget('http://example.com:7070/v1/kv/a?x=1')).toEqual({ path: '/v1/kv/a', query: 'x=1' });
    expect(splitTarget('http://example.com')).toEqual({ path: '/', query: '' });
    expect(splitTarget('/v1/kv/a#frag?x')).toEqual({ path: '/v1/kv/a', query: '' });
    expect(parse('GET', 'https://h/v1/status')).toEqual({ route: 'status' });
  });

  test('a target that is neither a path nor absolute is 400 BadRequest', () => {
    for (const url of ['*', 'v1/kv/a', '', 'h:/x']) expect(refusal('GET', url).code, url).toBe('BadRequest');
  });
});

describe('keys', () => {
  const keyOf = (path: string): number[] => {
    const r = parse('DELETE', `/v1/kv/${path}`);
    if (r.route !== 'delete') throw new Error(r.route);
    return [...r.key];
  };

  test('are the percent-decoded path bytes; + is a plus; %2F and / are the same byte', () => {
    expect(keyOf('a%2Fb')).toEqual(keyOf('a/b'));
    expect(keyOf('a+b')).toEqual([0x61, 0x2b, 0x62]);
    expect(keyOf('%00%ff%FF')).toEqual([0, 0xff, 0xff]);
    expect(keyOf('%C3%A9')).toEqual([0xc3, 0xa9]);
    // Node reads the request line as latin1: a raw byte comes back as itself.
    expect(keyOf('\u00e9')).toEqual([0xe9]);
  });

  test('a broken escape is 400 BadRequest', () => {
    for (const k of ['%', '%4', '%zz', 'a%g0']) expect(refusal('GET', `/v1/kv/${k}`).code, k).toBe('BadRequest');
  });

  test('are at most maxKeyBytes, counted after decoding: else 400 KeyTooLarge', () => {
    expect(keyOf('%FF'.repeat(MAX_KEY))).toHaveLength(MAX_KEY);
    const e = refusal('GET', `/v1/kv/${'%FF'.repeat(MAX_KEY + 1)}`);
    expect(e.code).toBe('KeyTooLarge');
    expect(e.status).toBe(400);
    expect(refusal('GET', `/v1/kv?prefix=${'p'.repeat(MAX_KEY + 1)}`).message).toMatch(/prefix/);
    expect(refusal('GET', `/v1/kv?after=${'a'.repeat(MAX_KEY + 1)}`).message).toMatch(/after/);
  });
});

describe('query', () => {
  test('values are percent-decoded bytes with + as a space; unknown parameters are ignored', () => {
    const r = parse('GET', '/v1/kv?prefix=a+b%2B%FF&after=&cachebust=1&cachebust=2');
    expect(plain(r)).toMatchObject({ prefix: bytes(0x61, 0x20, 0x62, 0x2b, 0xff), startAfter: undefined });
  });

  test('a known parameter given twice, a broken escape or a text parameter that is not UTF-8 is 400 BadRequest', () => {
    for (const url of ['/v1/kv?limit=1&limit=2', '/v1/kv?prefix=%zz', '/v1/kv?%zz=1', '/v1/kv/a?tenant=%FF', '/v1/kv/a?consistency=%C3']) {
      expect(refusal('GET', url).code, url).toBe('BadRequest');
    }
  });

  test('tenant: x-tenant or ?tenant=, default "default"; both given must agree', () => {
    const tenantOf = (url: string, headers: IncomingHttpHeaders = {}): unknown => (parse('GET', url, headers) as { tenant: string }).tenant;
    expect(tenantOf('/v1/kv/a')).toBe('default');
    expect(tenantOf('/v1/kv/a', { 'x-tenant': 'acme' })).toBe('acme');
    expect(tenantOf('/v1/kv/a?tenant=acme')).toBe('acme');
    expect(tenantOf('/v1/kv/a?tenant=acme', { 'x-tenant': 'acme' })).toBe('acme');
    expect(tenantOf('/v1/kv?tenant=acme')).toBe('acme');
    expect(refusal('PUT', '/v1/kv/a?tenant=b', { 'x-tenant': 'a' }).code).toBe('BadRequest');
  });

  test('consistency: linearizable by default, lease or stale; anything else is 400 InvalidConsistency', () => {
    for (const c of ['linearizable', 'lease', 'stale']) {
      expect(parse('GET', `/v1/kv/a?consistency=${c}`)).toMatchObject({ consistency: c });
      expect(parse('GET', `/v1/kv?consistency=${c}`)).toMatchObject({ consistency: c });
    }
    for (const c of ['', 'strong', 'Lease', 'toString']) {
      const e = refusal('GET', `/v1/kv/a?consistency=${c}`);
      expect(e.code, c).toBe('InvalidConsistency');
      expect(e.status).toBe(400);
    }
  });

  test('JSON answers: ?format=json, or accept listing application/json with q above 0', () => {
    const json = (url: string, accept?: string): unknown => (parse('GET', url, accept === undefined ? {} : { accept }) as { json: boolean }).json;
    expect(json('/v1/kv/a?format=json')).toBe(true);
    expect(json('/v1/kv/a?format=raw', 'application/json')).toBe(false);
    expect(json('/v1/kv/a', 'text/html, Application/JSON;q=0.5')).toBe(true);
    expect(json('/v1/kv/a', 'application/json;q=0')).toBe(false);
    expect(json('/v1/kv/a', '*/*')).toBe(false);
    expect(refusal('GET', '/v1/kv/a?format=xml').code).toBe('BadRequest');
  });

  test('compare-and-set version: ?version=N or if-match N or "N"; both must agree; else 400 BadRequest', () => {
    const version = (url: string, ifMatch?: string): unknown =>
      (parse('PUT', url, ifMatch === undefined ? {} : { 'if-match': ifMatch }) as { expectedVersion?: number }).expectedVersion;
    expect(version('/v1/kv/a')).toBeUndefined();
    expect(version('/v1/kv/a?version=0')).toBe(0);
    expect(version('/v1/kv/a?version=7')).toBe(7);
    expect(version('/v1/kv/a', '7')).toBe(7);
    expect(version('/v1/kv/a', ' "7" ')).toBe(7);
    expect(version('/v1/kv/a?version=7', '"7"')).toBe(7);
    for (const [url, ifMatch] of [
      ['/v1/kv/a?version=7', '8'],
      ['/v1/kv/a?version=07', undefined],
      ['/v1/kv/a?version=-1', undefined],
      ['/v1/kv/a', '*'],
      ['/v1/kv/a?version=99999999999999999', undefined],
    ] as const) {
      expect(refusal('PUT', url, ifMatch === undefined ? {} : { 'if-match': ifMatch }).code, `${url} ${ifMatch}`).toBe('BadRequest');
    }
  });

  test('client session: x-client-id in 2^52..2^53-1 and x-client-seq from 1, both or neither; else 400 InvalidSession', () => {
    const session = (method: string, headers: IncomingHttpHeaders): unknown => (parse(method, '/v1/kv/a', headers) as { session?: unknown }).session;
    const id = String(2 ** 52 + 12345);
    expect(session('PUT', {})).toBeUndefined();
    expect(session('PUT', { 'x-client-id': id, 'x-client-seq': '1' })).toEqual({ clientId: 2 ** 52 + 12345, seq: 1 });
    expect(session('DELETE', { 'x-client-id': id, 'x-client-seq': ' 42 ' })).toEqual({ clientId: 2 ** 52 + 12345, seq: 42 });
    expect(session('PUT', { 'x-client-id': String(2 ** 52), 'x-client-seq': String(Number.MAX_SAFE_INTEGER) })).toEqual({
      clientId: 2 ** 52,
      seq: Number.MAX_SAFE_INTEGER,
    });
    expect(session('PUT', { 'x-client-id': String(Number.MAX_SAFE_INTEGER), 'x-client-seq': '1' })).toEqual({ clientId: Number.MAX_SAFE_INTEGER, seq: 1 });
    const bad: IncomingHttpHeaders[] = [
      { 'x-client-id': id },
      { 'x-client-seq': '1' },
      // Below 2^52: the nodes' own ids (src/wire/session.ts).
      { 'x-client-id': '7', 'x-client-seq': '1' },
      { 'x-client-id': String(2 ** 52 - 1), 'x-client-seq': '1' },
      { 'x-client-id': '9007199254740992', 'x-client-seq': '1' },
      { 'x-client-id': id, 'x-client-seq': '0' },
      { 'x-client-id': id, 'x-client-seq': '-1' },
      { 'x-client-id': id, 'x-client-seq': '01' },
      { 'x-client-id': id, 'x-client-seq': '1.5' },
      { 'x-client-id': id, 'x-client-seq': '9007199254740992' },
      { 'x-client-id': `0x${(2 ** 52).toString(16)}`, 'x-client-seq': '1' },
      { 'x-client-id': id, 'x-client-seq': '' },
    ];
    for (const headers of bad) {
      const e = refusal('PUT', '/v1/kv/a', headers);
      expect(e.code, JSON.stringify(headers)).toBe('InvalidSession');
      expect(e.status).toBe(400);
    }
    expect(refusal('DELETE', '/v1/kv/a', { 'x-client-seq': '1' }).code).toBe('InvalidSession');
  });

  test('scan limit: an integer in 1..10000, default 100; else 400 InvalidLimit', () => {
    expect(parse('GET', '/v1/kv?limit=1')).toMatchObject({ limit: 1 });
    expect(parse('GET', '/v1/kv?limit=10000')).toMatchObject({ limit: 10_000 });
    for (const limit of ['0', '10001', '', 'x', '1.5', '-1', '1e3', '0x10', '1234567']) {
      const e = refusal('GET', `/v1/kv?limit=${limit}`);
      expect(e.code, limit).toBe('InvalidLimit');
      expect(e.status).toBe(400);
    }
  });
});

describe('order of checks', () => {
  test('method before key, key before query, tenant before consistency before limit', () => {
    expect(refusal('POST', '/v1/kv/%zz?limit=0').code).toBe('MethodNotAllowed');
    expect(refusal('GET', `/v1/kv/${'k'.repeat(MAX_KEY + 1)}?consistency=x`).code).toBe('KeyTooLarge');
    expect(refusal('GET', '/v1/kv/k?consistency=x&tenant=a', { 'x-tenant': 'b' }).code).toBe('BadRequest');
    expect(refusal('GET', '/v1/kv?consistency=x&limit=0').code).toBe('InvalidConsistency');
    expect(refusal('GET', `/v1/kv?limit=0&prefix=${'p'.repeat(MAX_KEY + 1)}`).code).toBe('InvalidLimit');
  });
});

describe('body', () => {
  test('declared length and whether there is a body, from the headers', () => {
    expect(declaredBodyBytes({})).toBeUndefined();
    expect(declaredBodyBytes({ 'content-length': '12' })).toBe(12);
    expect(hasBody({})).toBe(false);
    expect(hasBody({ 'content-length': '0' })).toBe(false);
    expect(hasBody({ 'content-length': '1' })).toBe(true);
    expect(hasBody({ 'transfer-encoding': 'chunked' })).toBe(true);
  });

  test('a body over the limit is 413 PayloadTooLarge', () => {
    const e = payloadTooLarge(1024);
    expect(e.code).toBe('PayloadTooLarge');
    expect(e.status).toBe(413);
    expect(e.message).toContain('1024');
  });
});

describe('percentDecode', () => {
  test('decodes bytes, keeps other characters as latin1 bytes, refuses a broken escape', () => {
    expect([...(percentDecode('a%2Fb%ff+', false) ?? [])]).toEqual([0x61, 0x2f, 0x62, 0xff, 0x2b]);
    expect([...(percentDecode('a+b', true) ?? [])]).toEqual([0x61, 0x20, 0x62]);
    expect([...(percentDecode('\u00e9', false) ?? [])]).toEqual([0xe9]);
    for (const bad of ['%', '%a', '%zz', 'a%g1', '\u0100']) expect(percentDecode(bad, false), bad).toBeUndefined();
  });
});
