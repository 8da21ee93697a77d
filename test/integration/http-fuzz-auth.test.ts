/**
 * A seeded fuzz of the client API of a real node process with `--auth on`: thousands of raw
 * requests over sockets mixing every route (KV get, put, delete, scan; tenants create, list,
 * delete, rotate; roles; members; status, metrics, placement, healthz, the status page), tokens
 * (tenants' own, another tenant's, the admin's on tenant routes, rotated and deleted ones, forged
 * and malformed `authorization` headers), `x-tenant` and `?tenant=` naming other tenants, bad
 * versions, limits, prefixes and escapes, bodies of odd sizes and framings, session writes sent
 * again, writes that cross a tenant's key, byte and rate quotas, and clients that half-close
 * their connection once the request is sent.
 *
 * Every request is answered, never with a 5xx; a refusal is JSON with a known stable code; the
 * node never dies. A model of what each tenant holds (changed only by 2xx answers) and of the
 * tenants and roles is checked answer by answer (a read returns exactly what its own tenant
 * wrote: never another tenant's value) and against the node's whole state at checkpoints and at
 * the end: a refused request changed nothing. `FUZZ_SEED` replays another run. The same seed
 * sends the same requests; only 429s depend on the clock (a tenant's requests per second), so a
 * rerun may see a few different answers, each judged against the model as it then stands.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { TestCluster, eventually, sleep } from './cluster.js';
import { FIXED, FIXED_QUOTAS, SEEDED_KEYS, fuzzCase } from './http-fuzz-auth-gen.js';
import { json, judge, listed, modelList, modelRoles, newTally, rolesListed } from './http-fuzz-auth-judge.js';
import type { Tally } from './http-fuzz-auth-judge.js';
import { Model } from './http-fuzz-auth-model.js';
import { build, exchange } from './http-fuzz-auth-wire.js';
import type { Answer, Built } from './http-fuzz-auth-wire.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261207);
const RUNS = 3000;
/** Cases between two full comparisons of the node with the model. */
const CHECK_EVERY = 500;

const c = new TestCluster({ nodes: 1, shards: 4, extra: ['--auth', 'on'] });
beforeAll(() => c.start(), 60_000);
afterAll(() => c.close());

interface Reply {
  readonly status: number;
  readonly body: unknown;
}

/** A plain request of the checks (not the fuzz): retried while the tenant is over its rate. */
async function call(method: string, path: string, token: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  for (;;) {
    const res = await fetch(`${c.node(1).url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...headers },
      ...(body === undefined ? {} : { body }),
    });
    const bytes = Buffer.from(await res.arrayBuffer());
    if (res.status !== 429) return { status: res.status, body: json(bytes) ?? bytes.toString('latin1') };
    await sleep(1000 * Number(res.headers.get('retry-after') ?? 1));
  }
}

/** The node's whole state against the model: tenants, roles, every tenant's keys (read with its own token when it has one). */
async function compare(m: Model, when: string): Promise<void> {
  expect(c.node(1).proc?.exitCode, `the node is running ${when}`).toBeNull();
  const tenants = await call('GET', '/v1/tenants', m.adminToken);
  expect(listed(tenants.body), `tenants ${when}`).toEqual(modelList(m));
  const roles = await call('GET', '/v1/roles', m.adminToken);
  expect(rolesListed(roles.body), `roles ${when}`).toEqual(modelRoles(m));
  for (const name of m.tenantNames()) {
    const rec = m.tenants.get(name);
    const r =
      rec === undefined ? await call('GET', '/v1/kv?limit=10000', m.adminToken, { 'x-tenant': name }) : await call('GET', '/v1/kv?limit=10000', rec.token);
    expect(r.status, `scan of ${name} ${when}`).toBe(200);
    expect(r.body, `tenant ${name} holds what the model says ${when}`).toEqual(m.page(name, new Uint8Array(0), undefined, 10_000));
    // Writes through one node, one at a time, hold a byte or key quota exactly (README, "Tenants and auth").
    if (rec?.boundHeld === true)
      expect(m.within(name, rec.quota), `tenant ${name} within ${JSON.stringify(rec.quota)} ${when}: ${JSON.stringify(m.usage(name))}`).toBe(true);
  }
}

/** The admin makes the setup's tenants and each writes its own value under the same keys. */
async function setup(): Promise<Model> {
  const m = new Model(readFileSync(join(c.node(1).data, 'admin.token'), 'utf8').trim());
  await eventually(async () => (await fetch(`${c.node(1).url}/healthz`)).status === 200, 30_000, 'healthz 200');
  for (const [endpointId, role] of rolesListed((await call('GET', '/v1/roles', m.adminToken)).body)) m.roles.set(endpointId, role);
  for (const name of FIXED) {
    const r = await call('POST', '/v1/tenants', m.adminToken, {}, JSON.stringify({ name, quota: FIXED_QUOTAS[name] }));
    expect(r.status).toBe(201);
    const made = r.body as { tenant: { generation: number }; token: string };
    m.created(name, FIXED_QUOTAS[name]!, made.tenant.generation, made.token);
  }
  const writers: [string, string, Record<string, string>][] = [
    ...FIXED.map((t): [string, string, Record<string, string>] => [t, m.tenants.get(t)!.token, {}]),
    ['default', m.adminToken, {}],
    ['ghost', m.adminToken, { 'x-tenant': 'ghost' }],
  ];
  for (const [tenant, token, headers] of writers) {
    for (const key of SEEDED_KEYS) {
      const value = `${tenant}-secret-${key}`;
      const r = await call('PUT', `/v1/kv/${encodeURIComponent(key)}`, token, headers, value);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      m.put(tenant, Buffer.from(key), Buffer.from(value), (r.body as { version: number }).version);
    }
  }
  await compare(m, 'after the setup');
  return m;
}

/** The last session write sent with a fresh client id, and its answer, for a replay. */
interface SessionWrite {
  readonly built: Built;
  readonly answer: Answer;
}

/** One fuzz case: built from the model, sent, judged; a replay sends the last session write's bytes again. */
async function runCase(fcase: Parameters<typeof build>[0], m: Model, t: Tally, state: { clientId: number; last: SessionWrite | undefined }): Promise<void> {
  const r = fcase.route;
  const replaying = (r.r === 'put' || r.r === 'delete') && r.session.kind === 'replay' ? state.last : undefined;
  let b: Built;
  if (replaying !== undefined) {
    const first = replaying.built;
    b = { ...first, principal: first.sent === undefined ? { kind: 'invalid' } : m.principalOf(first.sent), replay: first };
  } else b = build(fcase, m, state.clientId++);
  const a = await exchange(c.node(1).httpPort, b.raw, b.c.halfClose).catch((e: unknown) => {
    throw new Error(`${String(e)}; node ${c.node(1).proc?.exitCode ?? 'running'}:\n${c.node(1).output.slice(-2000)}`);
  });
  if (a.status === 0)
    throw new Error(
      `no answer (${JSON.stringify(a.head)}) to ${JSON.stringify(b.raw.toString('latin1').slice(0, 600))}; node ${c.node(1).proc?.exitCode ?? 'running'}:\n${c.node(1).output.slice(-2000)}`,
    );
  judge(b, a, m, t, replaying?.answer);
  if (replaying === undefined && (r.r === 'put' || r.r === 'delete') && r.session.kind === 'fresh') state.last = { built: b, answer: a };
}

/** For each tenant with a token, GETs of keys that only other tenants hold: each is 404 KeyNotFound. */
async function probeLeaks(m: Model, t: Tally): Promise<void> {
  for (const [tenant, rec] of m.tenants) {
    const own = m.data.get(tenant) ?? new Map();
    const others = new Set([...m.data].filter(([n]) => n !== tenant).flatMap(([, keys]) => [...keys.keys()]));
    for (const hex of [...others].filter((k) => !own.has(k)).slice(0, 12)) {
      const key = [...Buffer.from(hex, 'hex')].map((x) => `%${x.toString(16).padStart(2, '0')}`).join('');
      const r = await call('GET', `/v1/kv/${key}`, rec.token);
      expect([r.status, (r.body as { error?: { code?: string } }).error?.code], `tenant ${tenant} GET of another tenant's key ${hex}`).toEqual([
        404,
        'KeyNotFound',
      ]);
      t.probes++;
    }
  }
}

describe('HTTP fuzz with --auth on, against a real node', () => {
  test(`${RUNS} requests: answered, never 5xx, refusals coded, no refusal changes anything, no tenant reads another's keys`, async () => {
    const m = await setup();
    const t = newTally();
    const state = { clientId: 2 ** 52 + 7_777, last: undefined as SessionWrite | undefined };
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fuzzCase, async (fcase) => {
        await runCase(fcase, m, t, state);
        if (++n % CHECK_EVERY === 0) await compare(m, `after ${n} cases`);
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    await compare(m, 'at the end');
    await probeLeaks(m, t);
    const sorted = <K>(x: Map<K, number>): [K, number][] => [...x].sort((p, q) => q[1] - p[1]);
    console.log(`http-fuzz-auth seed ${SEED}: statuses ${JSON.stringify(sorted(t.statuses))}`);
    console.log(
      `codes ${JSON.stringify(sorted(t.codes))}; reads ${t.reads}, writes ${t.writes}, replays ${t.replays}, leak probes ${t.probes}; tenants ${JSON.stringify(modelList(m))}`,
    );
    // The fuzz reached deep: refusals of every kind the brief names, and real reads and writes.
    for (const code of [
      'Unauthorized',
      'Forbidden',
      'RateLimited',
      'QuotaExceeded',
      'VersionMismatch',
      'TenantExists',
      'TenantNotFound',
      'KeyNotFound',
      'InvalidTenant',
    ])
      expect(t.codes.get(code) ?? 0, code).toBeGreaterThan(0);
    expect(t.writes).toBeGreaterThan(200);
    expect(t.reads).toBeGreaterThan(100);
    expect(t.replays).toBeGreaterThan(0);
    expect(t.probes).toBeGreaterThan(0);
    expect((await fetch(`${c.node(1).url}/healthz`)).status).toBe(200);
    expect(c.node(1).output).not.toMatch(/unknown service error code|uncaught|unhandled/i);
  }, 180_000);
});
