/**
 * The status page as served over real HTTP: HTML whose content-security-policy allows exactly its
 * own inline style and script (their hashes match) and nothing from elsewhere; with auth on, the
 * page served without a token while its data (`/v1/status`) still needs the admin token; and the
 * client load the server measures for it, which counts `/v1/kv` requests only.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { KvService, TenantService } from '../../../src/api/index.js';
import { HttpServer } from '../../../src/io/http/index.js';

/** Answers every KV call at once: the page and the load window need no more. */
const service: KvService = {
  put: () => Promise.resolve({ ok: true, value: { version: 1, swapped: true } }),
  delete: () => Promise.resolve({ ok: true, value: { deleted: true } }),
  get: () => Promise.resolve({ ok: true, value: { found: false } }),
  scan: () => Promise.resolve({ ok: true, value: { items: [], more: false } }),
  status: () => Promise.resolve({ node: 1 }),
  metrics: () => Promise.resolve({ contentType: 'text/plain', body: '' }),
  health: () => ({ ok: true, detail: {} }),
  placement: () => ({ node: 1, shards: 1, replicas: 1, hash: 'fnv1a-32', leaders: [1] }),
};

/** Knows one token, the admin's; the real directory is proven by test/integration/tenants.test.ts. */
const ADMIN = '_admin.page-test';
const tenants: TenantService = {
  authenticate: (token) => Promise.resolve({ ok: true, value: token === ADMIN ? { kind: 'admin' } : { kind: 'refused', reason: 'WrongSecret' } }),
  create: () => Promise.reject(new Error('not used')),
  list: () => Promise.resolve({ ok: true, value: [] }),
  delete: () => Promise.reject(new Error('not used')),
  rotate: () => Promise.reject(new Error('not used')),
  setQuota: () => Promise.reject(new Error('not used')),
};

let http: HttpServer;
let secured: HttpServer;
beforeAll(async () => {
  http = await HttpServer.start({ host: '127.0.0.1', port: 0, service });
  secured = await HttpServer.start({ host: '127.0.0.1', port: 0, service, auth: { tenants } });
});
afterAll(async () => {
  await http.close();
  await secured.close();
});

const sha256 = (s: string): string => `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`;

describe('status page', () => {
  test('GET / and /ui serve one HTML page whose CSP allows exactly its own inline style and script', async () => {
    const a = await fetch(`${http.url}/`);
    const b = await fetch(`${http.url}/ui`);
    expect(a.status).toBe(200);
    expect(a.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await a.text();
    expect(await b.text()).toBe(html);
    const csp = a.headers.get('content-security-policy') ?? '';
    const script = /<script>([\s\S]*)<\/script>/.exec(html)?.[1] ?? '';
    const style = /<style>([\s\S]*)<\/style>/.exec(html)?.[1] ?? '';
    expect(script).toContain("fetch('/v1/status'");
    // The admin token: asked for in a password input, kept in sessionStorage, sent as a bearer token.
    expect(html).toMatch(/<form id="auth">[\s\S]*<input id="token" type="password"/);
    expect(script).toContain("authorization: 'Bearer ' + sent");
    expect(script).toContain('sessionStorage.setItem(TOKEN_KEY');
    expect(html).toContain('<button id="forget" type="button" hidden>forget token</button>');
    const directives = new Map(csp.split('; ').map((d) => [d.split(' ')[0], d.split(' ').slice(1).join(' ')]));
    expect(directives.get('default-src')).toBe("'none'");
    expect(directives.get('script-src')).toBe(sha256(script));
    expect(directives.get('style-src')).toBe(sha256(style));
    expect(directives.get('connect-src')).toBe("'self'");
    expect(a.headers.get('x-content-type-options')).toBe('nosniff');
    // Nothing is loaded from another origin: no src or href but the inline icon.
    expect([...html.matchAll(/(?:src|href)="([^"]*)"/g)].map((m) => m[1])).toEqual(['data:,']);
  });

  test('with auth on, the page (GET and HEAD of /, /ui, /ui/) needs no token; its data and /metrics need the admin token', async () => {
    const page = await (await fetch(`${http.url}/`)).text();
    for (const path of ['/', '/ui', '/ui/']) {
      const r = await fetch(`${secured.url}${path}`);
      expect(r.status, path).toBe(200);
      expect(r.headers.get('content-security-policy'), path).toMatch(/^default-src 'none'; script-src 'sha256-/);
      expect(await r.text(), path).toBe(page);
      expect((await fetch(`${secured.url}${path}`, { method: 'HEAD' })).status, path).toBe(200);
    }
    for (const path of ['/v1/status', '/metrics']) {
      for (const headers of [{}, { authorization: 'Bearer _admin.wrong' }]) {
        const r = await fetch(`${secured.url}${path}`, { headers });
        expect(r.status, path).toBe(401);
        expect(((await r.json()) as { error: { code: string } }).error.code).toBe('Unauthorized');
      }
      expect((await fetch(`${secured.url}${path}`, { headers: { authorization: `Bearer ${ADMIN}` } })).status, path).toBe(200);
    }
    // Only those three paths are open: others near them still need the token.
    for (const path of ['/ui/x', '/index.html', '/v1/kv/a']) expect((await fetch(`${secured.url}${path}`)).status, path).toBe(401);
  });

  test('HEAD /ui answers the headers of GET without a body', async () => {
    const r = await fetch(`${http.url}/ui`, { method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-security-policy')).toMatch(/^default-src 'none'/);
    expect(await r.text()).toBe('');
  });

  test('the client load counts /v1/kv requests only, not the page, status, health or metrics', async () => {
    const before = http.clientLoad().requests;
    for (const path of ['/', '/ui', '/v1/status', '/healthz', '/metrics']) await (await fetch(`${http.url}${path}`)).arrayBuffer();
    expect(http.clientLoad().requests).toBe(before);
    await (await fetch(`${http.url}/v1/kv/a`, { method: 'PUT', body: 'x' })).arrayBuffer();
    await (await fetch(`${http.url}/v1/kv/a`)).arrayBuffer();
    await (await fetch(`${http.url}/v1/kv?prefix=a`)).arrayBuffer();
    await (await fetch(`${http.url}/v1/kv/a`, { method: 'DELETE' })).arrayBuffer();
    // A response's close comes just after its body: wait for the last one.
    await new Promise((r) => setTimeout(r, 50));
    const load = http.clientLoad();
    expect(load.requests).toBe(before + 4);
    expect(load.requestsPerSec).toBeGreaterThan(0);
    expect(load.p99Ms).toBeGreaterThan(0);
  });
});
