/** Auth's pure parts: the Authorization header, the tenant admin body, tenant names in requests, and when auth is on by default. */
import { describe, expect, test } from 'vitest';
import { HttpError } from '../../../src/io/http/index.js';
import { bearerToken } from '../../../src/io/http/auth.js';
import { parseRequest } from '../../../src/io/http/request.js';
import { answerTenants, createBody, parseTenantRoute } from '../../../src/io/http/tenant-routes.js';
import { defaults } from '../../../src/main/config.js';
import { authOf } from '../../../src/main/node.js';

const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
    return undefined;
  } catch (e) {
    if (e instanceof HttpError) return `${e.status} ${e.code}`;
    throw e;
  }
};

describe('bearerToken', () => {
  test('takes the token of `Bearer <token>` (scheme in any case)', () => {
    expect(bearerToken('Bearer acme.xyz')).toBe('acme.xyz');
    expect(bearerToken('bearer   acme.xyz ')).toBe('acme.xyz');
  });

  test('missing or malformed: 401 Unauthorized with a Bearer challenge', () => {
    for (const h of [undefined, '', 'Bearer', 'Bearer ', 'Basic dXNlcjpwdw==', 'Bearer a b', 'Bearer\tabc', 'Bearer é', 'Token abc']) {
      let err: unknown;
      try {
        bearerToken(h);
      } catch (e) {
        err = e;
      }
      expect(err, String(h)).toBeInstanceOf(HttpError);
      expect((err as HttpError).status).toBe(401);
      expect((err as HttpError).code).toBe('Unauthorized');
      expect((err as HttpError).headers['www-authenticate']).toMatch(/^Bearer/);
    }
  });
});

describe('createBody', () => {
  const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
  test('name and an optional quota', () => {
    expect(createBody(enc('{"name":"acme"}'))).toEqual({ name: 'acme', quota: {} });
    expect(createBody(enc('{"name":"acme","quota":{"requestsPerSec":2.5}}'))).toEqual({ name: 'acme', quota: { requestsPerSec: 2.5 } });
    expect(createBody(enc('{"name":"acme","quota":{"bytesMax":1048576,"keysMax":10}}'))).toEqual({ name: 'acme', quota: { bytesMax: 1048576, keysMax: 10 } });
  });

  test('anything else is 400 BadRequest or InvalidTenant, past 4 KiB 413', () => {
    const cases: [string, string][] = [
      ['', '400 BadRequest'],
      ['{', '400 BadRequest'],
      ['"acme"', '400 BadRequest'],
      ['[]', '400 BadRequest'],
      ['{"name":1}', '400 InvalidTenant'],
      ['{"name":"a","quota":{"requestsPerSec":"1"}}', '400 BadRequest'],
      ['{"name":"a","quota":{"requestsPerSec":0}}', '400 BadRequest'],
      ['{"name":"a","quota":{"requestsPerSec":1e999}}', '400 BadRequest'],
      ['{"name":"a","quota":{"keys":10}}', '400 BadRequest'],
      ['{"name":"a","quota":{"keysMax":0}}', '400 BadRequest'],
      ['{"name":"a","quota":{"keysMax":1.5}}', '400 BadRequest'],
      ['{"name":"a","quota":{"keysMax":"10"}}', '400 BadRequest'],
      ['{"name":"a","quota":{"bytesMax":-1}}', '400 BadRequest'],
      ['{"name":"a","quota":{"bytesMax":9007199254740992}}', '400 BadRequest'],
      ['{"name":"a","quota":{"bytesMax":null}}', '400 BadRequest'],
      ['{"name":"a","quota":null}', '400 BadRequest'],
      ['{"name":"a","token":"x"}', '400 BadRequest'],
      [`{"name":"${'a'.repeat(5000)}"}`, '413 PayloadTooLarge'],
    ];
    for (const [body, want] of cases)
      expect(
        codeOf(() => createBody(enc(body))),
        body.slice(0, 40),
      ).toBe(want);
    expect(codeOf(() => createBody(new Uint8Array([0x7b, 0xff, 0x7d])))).toBe('400 BadRequest');
  });
});

describe('tenant routes and names', () => {
  const head = (url: string, headers: Record<string, string> = {}, method = 'GET') => ({ method, url, headers });
  const limits = { maxKeyBytes: 1024 };

  test('admin paths', () => {
    expect(parseTenantRoute('POST', '/v1/tenants')).toEqual({ route: 'tenant-create' });
    expect(parseTenantRoute('GET', '/v1/tenants/')).toEqual({ route: 'tenant-list' });
    expect(parseTenantRoute('DELETE', '/v1/tenants/a.b')).toEqual({ route: 'tenant-delete', name: 'a.b' });
    expect(parseTenantRoute('POST', '/v1/tenants/acme/rotate')).toEqual({ route: 'tenant-rotate', name: 'acme' });
    expect(codeOf(() => parseTenantRoute('PUT', '/v1/tenants'))).toBe('405 MethodNotAllowed');
    expect(codeOf(() => parseTenantRoute('GET', '/v1/tenants/acme/rotate/x'))).toBe('404 NotFound');
  });

  test('reserved and malformed tenant names are InvalidTenant, with auth off too', () => {
    for (const t of ['_system', '_admin', '_', 'a b', 'x'.repeat(65)]) {
      expect(
        codeOf(() => parseRequest(head('/v1/kv/k', { 'x-tenant': t }), limits)),
        t,
      ).toBe('400 InvalidTenant');
      expect(
        codeOf(() => parseRequest(head(`/v1/kv/k?tenant=${encodeURIComponent(t)}`), limits)),
        t,
      ).toBe('400 InvalidTenant');
    }
    expect(parseRequest(head('/v1/kv/k', { 'x-tenant': 'a_b' }), limits)).toMatchObject({ tenant: 'a_b' });
  });

  test("bound to a token's tenant: its own by default, naming it is fine, another is 403", () => {
    expect(parseRequest(head('/v1/kv/k'), limits, 'acme')).toMatchObject({ tenant: 'acme' });
    expect(parseRequest(head('/v1/kv/k?tenant=acme'), limits, 'acme')).toMatchObject({ tenant: 'acme' });
    expect(codeOf(() => parseRequest(head('/v1/kv/k', { 'x-tenant': 'beta' }), limits, 'acme'))).toBe('403 Forbidden');
    expect(codeOf(() => parseRequest(head('/v1/kv?prefix=a&tenant=default'), limits, 'acme'))).toBe('403 Forbidden');
  });
});

describe('authOf', () => {
  test('on off loopback, off on loopback, unless --auth says', () => {
    const cfg = defaults();
    expect(authOf(cfg)).toMatchObject({ on: false });
    expect(authOf({ ...cfg, http: { host: '::1', port: 1 } })).toMatchObject({ on: false });
    expect(authOf({ ...cfg, http: { host: '0.0.0.0', port: 1 } })).toMatchObject({ on: true, why: expect.stringContaining('non-loopback') as unknown });
    expect(authOf({ ...cfg, http: { host: '10.1.2.3', port: 1 } })).toMatchObject({ on: true });
    expect(authOf({ ...cfg, auth: 'on' })).toEqual({ on: true, why: '--auth on' });
    expect(authOf({ ...cfg, http: { host: '0.0.0.0', port: 1 }, auth: 'off' })).toEqual({ on: false, why: '--auth off' });
  });
});

describe('tenant admin with auth off', () => {
  test('there are no tenants to manage: 404 NotFound', async () => {
    await expect(answerTenants({ route: 'tenant-list' }, undefined, () => Promise.resolve(new Uint8Array(0)))).rejects.toMatchObject({
      status: 404,
      code: 'NotFound',
    });
  });
});
