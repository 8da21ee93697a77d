/**
 * Tenants and auth on real node processes (two nodes over Iroh on 127.0.0.1, `--auth on`): the
 * admin token file, tenants created by the admin, each tenant confined to its keys by its token,
 * rotation and deletion taking effect on both nodes, per-tenant rate limits, bad input, and the
 * `iroh-raft tenants` command.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Client } from '../../src/client/index.js';
import { KEYED_HASH } from '../../src/wire/shard-hash.js';
import { CLI, TestCluster, eventually } from './cluster.js';

const c = new TestCluster({ nodes: 2, shards: 4, extra: ['--auth', 'on'] });
beforeAll(() => c.start(), 60_000);
afterAll(() => c.close());

const adminTokenPath = (n: number): string => join(c.node(n).data, 'admin.token');
const adminToken = (n: number): string => readFileSync(adminTokenPath(n), 'utf8').trim();

interface Call {
  readonly method?: string;
  readonly token?: string;
  readonly body?: string | Uint8Array;
  readonly headers?: Record<string, string>;
  readonly node?: number;
}

async function call(path: string, o: Call = {}): Promise<{ status: number; body: string; headers: Headers }> {
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
  const res = await fetch(`${c.node(o.node ?? 1).url}${path}`, { method: o.method ?? 'GET', headers, ...(o.body === undefined ? {} : { body: o.body }) });
  return { status: res.status, body: await res.text(), headers: res.headers };
}

const codeOf = (r: { body: string }): string | undefined => (JSON.parse(r.body) as { error?: { code?: string } }).error?.code;

async function createTenant(name: string, quota: Record<string, unknown> = {}): Promise<string> {
  const r = await call('/v1/tenants', { method: 'POST', token: adminToken(1), body: JSON.stringify({ name, quota }) });
  expect(r.status, r.body).toBe(201);
  const j = JSON.parse(r.body) as { tenant: { name: string; generation: number }; token: string };
  expect(j.tenant).toMatchObject({ name, generation: 1 });
  expect(j.token).toMatch(new RegExp(`^${name.replace(/\./g, '\\.')}\\.[A-Za-z0-9_-]{43}$`));
  return j.token;
}

describe('tenants and auth (--auth on)', () => {
  let tokenA = '';
  let tokenB = '';

  test('the admin token: created at the first start, mode 0600, its path printed; each node has its own', () => {
    for (const n of [1, 2]) {
      expect(statSync(adminTokenPath(n)).mode & 0o777).toBe(0o600);
      expect(c.node(n).output).toContain(`admin token: ${adminTokenPath(n)}`);
      expect(adminToken(n)).toMatch(/^_admin\.[A-Za-z0-9_-]{43}$/);
    }
    expect(adminToken(1)).not.toBe(adminToken(2));
  });

  test('without a valid token: 401 with www-authenticate: Bearer; /healthz stays open', async () => {
    expect((await call('/healthz')).status).not.toBe(401);
    for (const authorization of [
      undefined,
      '',
      'Basic YWRtaW46YWRtaW4=',
      'Bearer',
      'Bearer ',
      'Bearer a b',
      `Bearer ${'x'.repeat(8000)}`,
      'Bearer acme.short',
    ]) {
      const r = await call('/v1/kv/k', authorization === undefined ? {} : { headers: { authorization } });
      expect(r.status, String(authorization)).toBe(401);
      expect(codeOf(r)).toBe('Unauthorized');
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    // Another node's admin token is not this node's.
    expect((await call('/v1/status', { token: adminToken(2) })).status).toBe(401);
    expect((await call('/v1/status', { token: adminToken(1) })).status).toBe(200);
    expect((await call('/metrics', { token: adminToken(1) })).status).toBe(200);
    expect((await call('/metrics')).status).toBe(401);
  });

  test('the admin creates tenants; names starting with _ and bad bodies are refused with stable codes', async () => {
    tokenA = await createTenant('acme');
    tokenB = await createTenant('beta.io');
    const admin = adminToken(1);
    const post = (body: string | Uint8Array, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Headers }> =>
      call('/v1/tenants', { method: 'POST', token: admin, body, headers });
    const again = await post(JSON.stringify({ name: 'acme' }));
    expect([again.status, codeOf(again)]).toEqual([409, 'TenantExists']);
    const cases: [string | Uint8Array, number, string][] = [
      [JSON.stringify({ name: '_system' }), 400, 'InvalidTenant'],
      [JSON.stringify({ name: '_admin' }), 400, 'InvalidTenant'],
      [JSON.stringify({ name: 'a b' }), 400, 'InvalidTenant'],
      [JSON.stringify({ name: 't'.repeat(65) }), 400, 'InvalidTenant'],
      [JSON.stringify({ name: 7 }), 400, 'InvalidTenant'],
      [JSON.stringify({}), 400, 'InvalidTenant'],
      ['not json', 400, 'BadRequest'],
      ['', 400, 'BadRequest'],
      ['[1,2]', 400, 'BadRequest'],
      ['null', 400, 'BadRequest'],
      [new Uint8Array([0xff, 0xfe, 0x7b, 0x7d]), 400, 'BadRequest'],
      [JSON.stringify({ name: 'x', quota: { requestsPerSec: '5' } }), 400, 'BadRequest'],
      [JSON.stringify({ name: 'x', quota: { requestsPerSec: -1 } }), 400, 'BadRequest'],
      [JSON.stringify({ name: 'x', quota: { bytes: 5 } }), 400, 'BadRequest'],
      [JSON.stringify({ name: 'x', quota: [] }), 400, 'BadRequest'],
      [JSON.stringify({ name: 'x', extra: true }), 400, 'BadRequest'],
      [JSON.stringify({ name: 'x', pad: 'p'.repeat(5000) }), 413, 'PayloadTooLarge'],
    ];
    for (const [body, status, code] of cases) {
      const r = await post(body);
      expect([r.status, codeOf(r)], String(body).slice(0, 60)).toEqual([status, code]);
    }
    // Nothing above created a tenant, and the list holds no token or hash.
    const list = await call('/v1/tenants', { token: admin });
    expect(list.status).toBe(200);
    const names = (JSON.parse(list.body) as { tenants: { name: string }[] }).tenants.map((t) => t.name);
    expect(names).toEqual(['acme', 'beta.io']);
    expect(list.body).not.toMatch(/token|hash|secret/i);
    expect(list.body).not.toContain(tokenA.slice(tokenA.lastIndexOf('.') + 1));
    // Paths and methods of the admin API.
    expect((await call('/v1/tenants/acme', { token: admin })).status).toBe(405);
    expect((await call('/v1/tenants/acme/frob', { method: 'POST', token: admin })).status).toBe(404);
    expect(codeOf(await call('/v1/tenants/nobody', { method: 'DELETE', token: admin }))).toBe('TenantNotFound');
    expect(codeOf(await call('/v1/tenants/%E0%A4%A', { method: 'DELETE', token: admin }))).toBe('BadRequest');
  });

  test('each tenant reads and writes its own keys only; another tenant is 403, its keys invisible', async () => {
    expect((await call('/v1/kv/k', { method: 'PUT', token: tokenA, body: 'a-value' })).status).toBe(200);
    expect((await call('/v1/kv/k', { method: 'PUT', token: tokenB, body: 'b-value' })).status).toBe(200);
    expect((await call('/v1/kv/only-b', { method: 'PUT', token: tokenB, body: 'b-secret' })).status).toBe(200);
    expect((await call('/v1/kv/k', { token: tokenA })).body).toBe('a-value');
    expect((await call('/v1/kv/k', { token: tokenB })).body).toBe('b-value');
    // A names B: 403, whichever way.
    for (const r of [
      await call('/v1/kv/only-b', { token: tokenA, headers: { 'x-tenant': 'beta.io' } }),
      await call('/v1/kv/only-b?tenant=beta.io', { token: tokenA }),
      await call('/v1/kv/only-b', { method: 'PUT', token: tokenA, body: 'x', headers: { 'x-tenant': 'beta.io' } }),
      await call('/v1/kv/only-b', { method: 'DELETE', token: tokenA, headers: { 'x-tenant': 'beta.io' } }),
      await call('/v1/kv?prefix=&tenant=beta.io', { token: tokenA }),
    ]) {
      expect([r.status, codeOf(r)]).toEqual([403, 'Forbidden']);
    }
    // Naming itself is fine; B's key is simply not in A's key space.
    expect((await call('/v1/kv/k', { token: tokenA, headers: { 'x-tenant': 'acme' } })).body).toBe('a-value');
    const missing = await call('/v1/kv/only-b', { token: tokenA });
    expect([missing.status, codeOf(missing)]).toEqual([404, 'KeyNotFound']);
    const scan = JSON.parse((await call('/v1/kv?prefix=', { token: tokenA })).body) as { items: { key: string }[] };
    expect(scan.items.map((i) => i.key)).toEqual(['k']);
    // Any valid token may read where keys live (the client library routes by it).
    expect((await call('/v1/placement', { token: tokenA })).status).toBe(200);
    expect((await call('/v1/placement')).status).toBe(401);
    // The status page is static HTML, open to anyone; its data is the admin's.
    for (const r of [await call('/ui', { token: tokenA }), await call('/')]) {
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
    }
    // Tenants may not use admin routes, nor name a reserved tenant.
    for (const [path, method] of [
      ['/v1/status', 'GET'],
      ['/metrics', 'GET'],
      ['/v1/tenants', 'GET'],
      ['/v1/tenants/beta.io/rotate', 'POST'],
    ] as const) {
      const r = await call(path, { method, token: tokenA });
      expect([r.status, codeOf(r)], path).toEqual([403, 'Forbidden']);
    }
    // The admin acts on any tenant through x-tenant, but never on the reserved ones.
    expect((await call('/v1/kv/only-b', { token: adminToken(1), headers: { 'x-tenant': 'beta.io' } })).body).toBe('b-secret');
    const sys = await call('/v1/kv/tenants%2Facme', { token: adminToken(1), headers: { 'x-tenant': '_system' } });
    expect([sys.status, codeOf(sys)]).toEqual([400, 'InvalidTenant']);
  });

  test("tenant records live on the meta group: creating and deleting tenants advances its log, not the data shards'", async () => {
    interface Shard {
      shard: number;
      applied: number;
    }
    const applied = async (): Promise<{ data: number[]; meta: number }> => {
      const st = JSON.parse((await call('/v1/status', { token: adminToken(1) })).body) as { shards: Shard[]; metaGroup: Shard | null };
      return { data: st.shards.map((s) => s.applied), meta: st.metaGroup?.applied ?? -1 };
    };
    // The shards settle (elections, the placement record) before they are compared.
    let before = await applied();
    await eventually(
      async () => {
        const now = await applied();
        const same = JSON.stringify(now) === JSON.stringify(before);
        before = now;
        return same;
      },
      30_000,
      'quiet shards',
    );
    for (let i = 0; i < 5; i++) {
      await createTenant(`where-${i}`);
      expect((await call(`/v1/tenants/where-${i}`, { method: 'DELETE', token: adminToken(1) })).status).toBe(200);
    }
    let after = before;
    await eventually(async () => (after = await applied()).meta >= before.meta + 10, 10_000, 'the meta group applied the ten changes');
    expect(after.data).toEqual(before.data);
    expect(JSON.parse(readFileSync(join(c.node(1).data, 'cluster.json'), 'utf8'))).toHaveProperty('system', 'meta');
  }, 60_000);

  test('records are replicated: a tenant made through node 1 works through node 2; rotation and deletion reach it within about a second', async () => {
    const tokenC = await createTenant('gamma');
    let t0 = Date.now();
    await eventually(
      async () => (await call('/v1/kv/c', { method: 'PUT', token: tokenC, body: 'c', node: 2 })).status === 200,
      10_000,
      'new tenant usable on node 2',
    );
    const seenMs = Date.now() - t0;
    expect((await call('/v1/kv/c', { token: tokenC, node: 2 })).body).toBe('c');

    // Rotate through node 1: the old token is dead there at once, and on node 2 after its cache.
    const rot = await call('/v1/tenants/gamma/rotate', { method: 'POST', token: adminToken(1) });
    expect(rot.status).toBe(200);
    const rotated = JSON.parse(rot.body) as { tenant: { generation: number }; token: string };
    expect(rotated.tenant.generation).toBe(2);
    expect((await call('/v1/kv/c', { token: tokenC })).status).toBe(401);
    t0 = Date.now();
    await eventually(async () => (await call('/v1/kv/c', { token: tokenC, node: 2 })).status === 401, 10_000, 'old token refused on node 2');
    const rotatedMs = Date.now() - t0;
    expect((await call('/v1/kv/c', { token: rotated.token })).body).toBe('c');
    expect((await call('/v1/kv/c', { token: rotated.token, node: 2 })).body).toBe('c');

    // Delete through node 2's admin: the token stops on both nodes; the data stays.
    expect((await call('/v1/tenants/gamma', { method: 'DELETE', token: adminToken(2), node: 2 })).status).toBe(200);
    expect((await call('/v1/kv/c', { token: rotated.token, node: 2 })).status).toBe(401);
    t0 = Date.now();
    await eventually(async () => (await call('/v1/kv/c', { token: rotated.token })).status === 401, 10_000, 'deleted token refused on node 1');
    const deletedMs = Date.now() - t0;
    expect((await call('/v1/kv/c', { token: adminToken(1), headers: { 'x-tenant': 'gamma' } })).body).toBe('c');
    console.log(`tenant seen on node 2 after ${seenMs} ms; rotation after ${rotatedMs} ms; deletion after ${deletedMs} ms`);
  });

  test("the placement key and x-shard: the admin's token gets them, a tenant's does not; the typed client works with either", async () => {
    const token = await createTenant('placer');
    const asTenant = JSON.parse((await call('/v1/placement', { token })).body) as { hash: string; placementKey?: string };
    expect(asTenant.hash).toBe(KEYED_HASH);
    expect(asTenant).not.toHaveProperty('placementKey');
    for (const n of [1, 2]) {
      const asAdmin = JSON.parse((await call('/v1/placement', { token: adminToken(n), node: n })).body) as { hash: string; placementKey?: string };
      expect(asAdmin.hash).toBe(KEYED_HASH);
      expect(asAdmin.placementKey).toMatch(/^[0-9a-f]{32}$/);
      // One key for the cluster, whichever node answers.
      if (n === 2)
        expect(asAdmin.placementKey).toBe((JSON.parse((await call('/v1/placement', { token: adminToken(1) })).body) as { placementKey: string }).placementKey);
    }
    const endpoints = [c.node(1).url, c.node(2).url];
    const tenantClient = new Client({ endpoints, tenant: 'placer', token });
    // An admin token is its node's own: that client talks to node 1 only.
    const adminClient = new Client({ endpoints: [c.node(1).url], tenant: 'placer', token: adminToken(1) });
    try {
      for (let i = 0; i < 20; i++) expect((await tenantClient.put(`p${i}`, `v${i}`)).version).toBe(1);
      for (let i = 0; i < 20; i++) expect((await adminClient.get(`p${i}`))?.value.text()).toBe(`v${i}`);
      expect((await adminClient.put('p0', 'again')).version).toBe(2);
      expect((await tenantClient.get('p0'))?.value.text()).toBe('again');
      // Nor does a tenant's token learn a key's shard from answers (it could collect keys of one shard by probing); the admin's does.
      for (const r of [
        await call('/v1/kv/p1', { token }),
        await call('/v1/kv/absent', { token }),
        await call('/v1/kv/p2', { token, method: 'PUT', body: 'x' }),
      ]) {
        expect(r.headers.get('x-shard')).toBeNull();
        expect(r.headers.get('x-node')).toMatch(/^\d+$/);
      }
      const asAdmin = await call('/v1/kv/p1', { token: adminToken(1), headers: { 'x-tenant': 'placer' } });
      expect(asAdmin.headers.get('x-shard')).toMatch(/^\d+$/);
    } finally {
      await Promise.all([tenantClient.close(), adminClient.close()]);
    }
  });

  test('two admins creating one name at once, through two nodes: exactly one wins', async () => {
    for (let round = 0; round < 5; round++) {
      const name = `race${round}`;
      const body = JSON.stringify({ name });
      const answers = await Promise.all([
        call('/v1/tenants', { method: 'POST', token: adminToken(1), body }),
        call('/v1/tenants', { method: 'POST', token: adminToken(2), body, node: 2 }),
      ]);
      expect(answers.map((a) => a.status).sort()).toEqual([201, 409]);
      const winner = JSON.parse(answers.find((a) => a.status === 201)!.body) as { token: string };
      expect((await call('/v1/kv/k', { token: winner.token, node: 1 })).status).toBe(404);
      expect((await call('/v1/kv/k', { token: winner.token, node: 2 })).status).toBe(404);
    }
  });

  test('rate limit: 5 requests/s; 50 sent at once get 429 RateLimited with retry-after, another tenant is unaffected', async () => {
    const slow = await createTenant('slow', { requestsPerSec: 5 });
    const fast = await createTenant('fast');
    const burst = async (token: string): Promise<{ status: number; retryAfter: string | null; code: string | undefined }[]> =>
      Promise.all(
        Array.from({ length: 50 }, async () => {
          const r = await call('/v1/kv/nothing', { token });
          return { status: r.status, retryAfter: r.headers.get('retry-after'), code: codeOf(r) };
        }),
      );
    const [s, f] = await Promise.all([burst(slow), burst(fast)]);
    const limited = s.filter((r) => r.status === 429);
    const passed = s.filter((r) => r.status === 404);
    expect(limited.length + passed.length).toBe(50);
    expect(passed.length).toBeGreaterThanOrEqual(1);
    expect(limited.length).toBeGreaterThanOrEqual(40);
    for (const r of limited) {
      expect(r.code).toBe('RateLimited');
      expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(Number.isInteger(Number(r.retryAfter))).toBe(true);
    }
    expect(f.map((r) => r.status)).toEqual(Array<number>(50).fill(404));
    // The limit is per node: node 2 has a bucket of its own.
    expect((await call('/v1/kv/nothing', { token: slow, node: 2 })).status).toBe(404);
    // Refusals are counted (the tests before this one met 401s and 403s on node 1).
    const metrics = (await call('/metrics', { token: adminToken(1) })).body;
    const value = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1] ?? NaN);
    expect(value('iroh_raft_http_rate_limited_total')).toBeGreaterThanOrEqual(limited.length);
    expect(value('iroh_raft_http_unauthorized_total')).toBeGreaterThan(0);
    expect(value('iroh_raft_http_forbidden_total')).toBeGreaterThan(0);
    expect(value('iroh_raft_http_rate_buckets')).toBeGreaterThanOrEqual(1);
  });

  test('iroh-raft kv reads its token as tenants does: --token-file, else IROH_RAFT_TOKEN; none is Unauthorized', () => {
    const kv = (args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } => {
      const r = spawnSync(process.execPath, [CLI, 'kv', ...args, '--via', c.node(1).url, '--timeout-ms', '5000'], {
        encoding: 'utf8',
        env: { ...process.env, IROH_RAFT_TOKEN: '', ...env },
      });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    const put = kv(['put', 'from-file', 'v', '--tenant', 'acme', '--token-file', adminTokenPath(1)]);
    expect([put.status, put.stderr]).toEqual([0, '']);
    expect(kv(['get', 'from-file', '--tenant', 'acme'], { IROH_RAFT_TOKEN: adminToken(1) }).stdout).toBe('v');
    const none = kv(['get', 'from-file', '--tenant', 'acme']);
    expect([none.status, (JSON.parse(none.stderr) as { error: { code: string } }).error.code]).toEqual([1, 'Unauthorized']);
    const both = kv(['get', 'from-file', '--token', 'a', '--token-file', adminTokenPath(1)]);
    expect([both.status, (JSON.parse(both.stderr) as { error: { code: string } }).error.code]).toEqual([2, 'InvalidFlag']);
  });

  test('iroh-raft tenants: create, list, rotate, delete; server errors exit 1, bad flags exit 2', () => {
    const run = (args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } => {
      const r = spawnSync(process.execPath, [CLI, 'tenants', ...args], { encoding: 'utf8', env: { ...process.env, IROH_RAFT_TOKEN: '', ...env } });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    const via = ['--via', c.node(1).url];
    const file = ['--token-file', adminTokenPath(1)];
    const created = run(['create', 'cli-made', '--rate', '3', ...via, ...file]);
    expect(created.status, created.stderr).toBe(0);
    const issued = JSON.parse(created.stdout) as { tenant: { name: string; quota: { requestsPerSec: number } }; token: string };
    expect(issued.tenant).toMatchObject({ name: 'cli-made', quota: { requestsPerSec: 3 } });
    const listed = run(['list', ...via], { IROH_RAFT_TOKEN: adminToken(1) });
    expect(listed.status).toBe(0);
    expect((JSON.parse(listed.stdout) as { tenants: { name: string }[] }).tenants.map((t) => t.name)).toContain('cli-made');
    const rotated = run(['rotate', 'cli-made', ...via, '--token', adminToken(1)]);
    expect(rotated.status).toBe(0);
    expect((JSON.parse(rotated.stdout) as { token: string }).token).not.toBe(issued.token);
    expect(run(['delete', 'cli-made', ...via, ...file]).status).toBe(0);

    const gone = run(['delete', 'cli-made', ...via, ...file]);
    expect(gone.status).toBe(1);
    expect(JSON.parse(gone.stderr)).toMatchObject({ error: { code: 'TenantNotFound' } });
    const dup = run(['create', 'acme', ...via, ...file]);
    expect([dup.status, (JSON.parse(dup.stderr) as { error: { code: string } }).error.code]).toEqual([1, 'TenantExists']);
    const reserved = run(['create', '_x', ...via, ...file]);
    expect([reserved.status, (JSON.parse(reserved.stderr) as { error: { code: string } }).error.code]).toEqual([1, 'InvalidTenant']);
    const wrong = run(['list', ...via, '--token', adminToken(2)]);
    expect([wrong.status, (JSON.parse(wrong.stderr) as { error: { code: string } }).error.code]).toEqual([1, 'Unauthorized']);

    for (const args of [
      ['create', 'x', '--rate', 'lots', ...file],
      ['create', 'x', '--rate', '0', ...file],
      ['create', ...file],
      ['list', '--bogus', '1', ...file],
      ['list', ...via],
      ['list', '--via', 'not a url', ...file],
      ['frob', ...file],
      ['list', '--token', 'a', ...file],
      ['list', '--token-file', join(c.root, 'missing')],
      ['delete', 'x', '--rate', '3', ...file],
    ]) {
      const r = run(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect((JSON.parse(r.stderr) as { error: { code: string } }).error.code).toMatch(/^(InvalidFlag|UnknownFlag)$/);
    }
    // Nothing above was a bug: no request failed inside either node.
    for (const n of [1, 2]) expect(c.node(n).output).not.toMatch(/request failed|"level":50/);
  });
});
