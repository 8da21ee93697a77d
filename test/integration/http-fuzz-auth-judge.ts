/**
 * The judge of the auth-on HTTP fuzz (http-fuzz-auth.test.ts): what each answer must be given
 * the request's principal, the tenant it names and the model, and the model's change when the
 * answer is a success. Every 2xx is checked against the model before it is applied: a read
 * returns exactly the value its own tenant wrote (never another tenant's), a compare-and-set
 * succeeds only at the version the model holds, a delete says `deleted` only for a key the
 * model holds.
 */
import { Buffer } from 'node:buffer';
import { expect } from 'vitest';
import { isServiceErrorCode } from '../../src/api/index.js';
import { limitOf } from './http-fuzz-auth-gen.js';
import type { Route } from './http-fuzz-auth-gen.js';
import { bytesToJson } from './http-fuzz-auth-model.js';
import type { Model } from './http-fuzz-auth-model.js';
import type { Answer, Built } from './http-fuzz-auth-wire.js';

/** Paths answered without a token (README, "Tenants and auth"). */
const OPEN = new Set(['/healthz', '/', '/ui', '/ui/']);
/** Routes a tenant's token may use besides the open ones. */
const TENANT_ROUTES = new Set<Route['r']>(['put', 'get', 'delete', 'scan']);

/** Tallies of a run, for the README line and the test's own floor on coverage. */
export interface Tally {
  readonly statuses: Map<number, number>;
  readonly codes: Map<string, number>;
  /** 2xx answers to KV reads (get, scan) that the model confirmed. */
  reads: number;
  /** 2xx KV writes applied to the model. */
  writes: number;
  /** Session writes sent again and answered from the session, applying nothing. */
  replays: number;
  /** GETs of a key that only other tenants hold, answered 404 to this tenant (leak probes). */
  probes: number;
}

export const newTally = (): Tally => ({ statuses: new Map(), codes: new Map(), reads: 0, writes: 0, replays: 0, probes: 0 });
const bump = <K>(m: Map<K, number>, k: K): void => void m.set(k, (m.get(k) ?? 0) + 1);

/** The JSON of a body (undefined when it is not JSON). */
export function json(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** The tenant a KV request acts on if served: the token's tenant, or for the admin what it names (else `default`). */
function tenantOf(b: Built): string | undefined {
  if (b.principal.kind === 'tenant') return b.principal.tenant;
  if (b.principal.kind === 'admin' && b.named !== null) return b.named ?? 'default';
  return undefined;
}

/** Whether a 2xx is impossible for `b` whatever the model: no or a dead token, a tenant beyond its rights, a method not the route's. */
function mustRefuse(b: Built, path: string): string | undefined {
  const open = OPEN.has(path);
  if (!open && b.principal.kind === 'invalid') return 'a request without a valid token was served';
  const tenantRoute = TENANT_ROUTES.has(b.c.route.r) || (b.c.route.r === 'other' && path.endsWith('/v1/placement'));
  if (b.principal.kind === 'tenant' && !open && !tenantRoute) return 'a tenant token used an admin route';
  if (b.principal.kind === 'tenant' && TENANT_ROUTES.has(b.c.route.r) && b.named !== undefined && b.named !== b.principal.tenant)
    return 'a tenant token acted on another tenant';
  if (b.c.method !== undefined && b.c.method !== 'HEAD') return `method ${b.c.method} was served`;
  if (b.c.host === 'attacker.example') return `host ${JSON.stringify(b.c.host)} was served`;
  // An expectation other than 100-continue alone is refused (RFC 9110 lets a server ignore one listed beside it).
  const expects = b.c.headers.filter(([n]) => n === 'expect').map(([, v]) => v);
  if (expects.length > 0 && !expects.includes('100-continue')) return 'an unknown expectation was served';
  return undefined;
}

/**
 * Judges one answer and applies a success to the model. `original`: for a replayed session write,
 * the first answer to the same bytes.
 */
export function judge(b: Built, a: Answer, m: Model, t: Tally, original?: Answer): void {
  const what = `${b.method} ${b.path.slice(0, 200)} (${JSON.stringify(b.principal)}) -> ${a.head.slice(0, 300)} ${a.body.toString('latin1').slice(0, 300)}`;
  expect(a.status, `answered: ${what}`).toBeGreaterThanOrEqual(200);
  expect(a.status, `no 5xx: ${what}`).toBeLessThan(500);
  expect(a.trailing, `one answer per request: ${what}`).toBe(0);
  bump(t.statuses, a.status);
  const path = b.path.split('?')[0] ?? '';
  if (a.status >= 400) {
    if (b.method !== 'HEAD') {
      const code = (json(a.body) as { error?: { code?: unknown } } | undefined)?.error?.code;
      expect(typeof code === 'string' && isServiceErrorCode(code), `a known code: ${what}`).toBe(true);
      bump(t.codes, code as string);
      refusal(b, a, code as string, m, what);
    }
    if (a.status === 401) expect(b.principal.kind === 'invalid' && !OPEN.has(path), `401 only for a missing or dead token: ${what}`).toBe(true);
    return;
  }
  const why = mustRefuse(b, path);
  expect(why, what).toBeUndefined();
  if (b.c.method === 'HEAD') return;
  if (b.replay !== undefined && original !== undefined && original.status < 300) {
    // Answered from the session: the same answer as the first time, nothing applied again.
    expect(a.body.toString('latin1'), `a replay answers as the first time: ${what}`).toBe(original.body.toString('latin1'));
    t.replays++;
    return;
  }
  success(b, a, m, t, what);
}

/** Facts a refusal tells about the model. */
function refusal(b: Built, a: Answer, code: string, m: Model, what: string): void {
  const r = b.c.route;
  const tenant = tenantOf(b);
  if (code === 'KeyNotFound' && r.r === 'get' && tenant !== undefined)
    expect(m.get(tenant, r.key.bytes), `404 for a key the model holds: ${what}`).toBeUndefined();
  if (code === 'VersionMismatch' && (r.r === 'put' || r.r === 'delete') && tenant !== undefined && b.replay === undefined) {
    // Refused at another version than the model's current one, which the answer names (a replay answers as it did then).
    const current = m.get(tenant, r.key.bytes)?.version ?? 0;
    expect(current, `412 at the version asked for: ${what}`).not.toBe(expectedVersion(r));
    expect((json(a.body) as { error: { version?: unknown } }).error.version, what).toBe(current);
  }
  if (code === 'TenantExists' && r.r === 'tenant-create' && r.body.valid) expect(m.tenants.has(r.body.name), what).toBe(true);
  if (code === 'TenantNotFound' && (r.r === 'tenant-delete' || r.r === 'tenant-rotate')) expect(m.tenants.has(decodeURIComponent(r.name)), what).toBe(false);
  if (code === 'QuotaExceeded') {
    const q = tenant === undefined ? undefined : m.tenants.get(tenant)?.quota;
    expect(q?.keysMax !== undefined || q?.bytesMax !== undefined, `QuotaExceeded for a tenant without a byte or key quota: ${what}`).toBe(true);
  }
  if (code === 'RateLimited') {
    expect(b.principal.kind === 'tenant' && m.tenants.get(b.principal.tenant)?.quota.requestsPerSec !== undefined, what).toBe(true);
    expect(Number(a.headers.get('retry-after')), what).toBeGreaterThanOrEqual(1);
  }
  if (code === 'Unauthorized') expect(a.headers.get('www-authenticate') ?? '', what).toMatch(/^Bearer/);
}

/** The compare-and-set version a write asks for, when the node will read one (undefined: none, or one it refuses). */
function expectedVersion(r: Extract<Route, { r: 'put' | 'delete' }>): number | undefined {
  const parse = (s: string | undefined): number | undefined =>
    s !== undefined && /^"?(0|[1-9][0-9]{0,15})"?$/.test(s.trim()) ? Number(s.trim().replace(/"/g, '')) : undefined;
  return parse(r.version.query) ?? parse(r.version.ifMatch);
}

/** Applies a 2xx to the model, checking it first. */
function success(b: Built, a: Answer, m: Model, t: Tally, what: string): void {
  const r = b.c.route;
  const tenant = tenantOf(b);
  const body = json(a.body) as Record<string, unknown> | undefined;
  switch (r.r) {
    case 'put':
    case 'delete':
    case 'get':
    case 'scan':
      expect(tenant, what).toBeDefined();
      if (b.principal.kind === 'tenant') expect(a.headers.has('x-shard'), `x-shard hidden from a tenant: ${what}`).toBe(false);
      return kvSuccess(b, r, tenant!, a, body, m, t, what);
    case 'tenant-create': {
      expect(r.body.valid && !m.tenants.has(r.body.name), `201 for a bad body or an existing name: ${what}`).toBe(true);
      if (!r.body.valid) return;
      const made = body as { tenant: { name: string; quota: Record<string, number>; generation: number }; token: string };
      expect(made.tenant.name, what).toBe(r.body.name);
      expect(made.tenant.quota, what).toEqual(r.body.quota);
      expect(made.token.startsWith(`${r.body.name}.`), what).toBe(true);
      return m.created(r.body.name, r.body.quota, made.tenant.generation, made.token);
    }
    case 'tenant-list':
      return expect(listed(body), what).toEqual(modelList(m));
    case 'tenant-delete':
    case 'tenant-rotate': {
      const name = decodeURIComponent(r.name);
      const rec = m.tenants.get(name);
      expect(rec, `a 2xx for a tenant the model does not hold: ${what}`).toBeDefined();
      if (r.r === 'tenant-delete') return m.retire(name, undefined);
      const next = body as { tenant: { generation: number }; token: string };
      expect(next.tenant.generation, what).toBe(rec!.generation + 1);
      return m.retire(name, { token: next.token, generation: next.tenant.generation });
    }
    case 'role-list':
      return expect(rolesListed(body), what).toEqual(modelRoles(m));
    case 'role':
      return roleSuccess(r, body, m, what);
    case 'other':
      expect(b.method === 'DELETE' && b.path.startsWith('/v1/members/'), `a member removed: ${what}`).toBe(false);
      return;
  }
}

function kvSuccess(
  b: Built,
  r: Extract<Route, { r: 'put' | 'delete' | 'get' | 'scan' }>,
  tenant: string,
  a: Answer,
  body: Record<string, unknown> | undefined,
  m: Model,
  t: Tally,
  what: string,
): void {
  if (r.r === 'scan') {
    const limit = limitOf(r.limit);
    expect(limit, what).toBeDefined();
    const after = r.after === undefined || r.after.bytes.length === 0 ? undefined : r.after.bytes;
    t.reads++;
    return expect(body, `the scan returns exactly the model's page of tenant ${tenant}: ${what}`).toEqual(
      m.page(tenant, r.prefix?.bytes ?? new Uint8Array(0), after, limit!),
    );
  }
  expect(r.key.style, `a broken escape was served: ${what}`).not.toBe('broken');
  if (r.r === 'get' && r.key.bytes.length === 0) {
    // `GET /v1/kv/` is a scan of the whole tenant, 100 keys at most.
    t.reads++;
    return expect(body, `GET /v1/kv/ scans tenant ${tenant}: ${what}`).toEqual(m.page(tenant, new Uint8Array(0), undefined, 100));
  }
  const held = m.get(tenant, r.key.bytes);
  if (r.r === 'get') {
    expect(held, `a 200 for a key tenant ${tenant} does not hold (another tenant's?): ${what}`).toBeDefined();
    expect(a.headers.get('x-version'), what).toBe(String(held!.version));
    const asJson = a.headers.get('content-type')?.startsWith('application/json') === true;
    const got = asJson ? (body as { value: unknown }).value : a.body.toString('latin1');
    t.reads++;
    return expect(got, `the value tenant ${tenant} wrote: ${what}`).toEqual(asJson ? bytesToJson(held!.value) : held!.value.toString('latin1'));
  }
  const ev = expectedVersion(r);
  if (r.r === 'delete') {
    expect(body?.deleted, `deleted says whether the model held the key: ${what}`).toBe(held !== undefined);
    if (ev !== undefined) expect(held?.version, what).toBe(ev);
    m.delete(tenant, r.key.bytes);
    t.writes++;
    return;
  }
  expect(b.body, `a value with broken framing was stored: ${what}`).toBeDefined();
  if (ev !== undefined) expect(held?.version ?? 0, `a compare-and-set served at another version: ${what}`).toBe(ev);
  const version = body?.version;
  expect(typeof version === 'number' && version > 0, what).toBe(true);
  m.put(tenant, r.key.bytes, b.body!, version as number);
  t.writes++;
}

function roleSuccess(r: Extract<Route, { r: 'role' }>, body: Record<string, unknown> | undefined, m: Model, what: string): void {
  if (r.method === 'GET') return expect(body?.role, what).toBe(m.roles.get(r.id));
  if (r.method === 'DELETE') {
    expect(m.roles.has(r.id), what).toBe(true);
    m.roles.delete(r.id);
    return;
  }
  const role = (json(Buffer.from(r.body)) as { role?: string } | undefined)?.role;
  expect(body?.role, what).toBe(role);
  m.roles.set(r.id, role!);
}

/** `GET /v1/tenants` reduced to what the model knows: name, quota, generation. */
export function listed(body: unknown): unknown[] {
  const ts = (body as { tenants: { name: string; quota: unknown; generation: number }[] }).tenants;
  return ts.map((x) => ({ name: x.name, quota: x.quota, generation: x.generation })).sort((x, y) => (x.name < y.name ? -1 : 1));
}

export function modelList(m: Model): unknown[] {
  return [...m.tenants].map(([name, r]) => ({ name, quota: r.quota, generation: r.generation })).sort((x, y) => (x.name < y.name ? -1 : 1));
}

export function rolesListed(body: unknown): [string, string][] {
  return (body as { roles: { endpointId: string; role: string }[] }).roles.map((x): [string, string] => [x.endpointId, x.role]).sort();
}

export function modelRoles(m: Model): [string, string][] {
  return [...m.roles].sort();
}
