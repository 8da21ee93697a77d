/**
 * Byte and key quotas on real node processes (two nodes over Iroh on 127.0.0.1, `--auth on`):
 * a write past a tenant's keysMax or bytesMax is 403 QuotaExceeded and not written, while reads,
 * deletes and overwrites that do not grow usage are served; deleting makes room again; another
 * tenant is unaffected; the admin list shows the quota and the usage counted; bad quotas are
 * refused at creation, also by the `iroh-raft tenants` command.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CLI, TestCluster, eventually } from './cluster.js';

const c = new TestCluster({ nodes: 2, shards: 4, extra: ['--auth', 'on'] });
beforeAll(() => c.start(), 60_000);
afterAll(() => c.close());

const adminToken = (n: number): string => readFileSync(join(c.node(n).data, 'admin.token'), 'utf8').trim();

interface Answer {
  readonly status: number;
  readonly code: string | undefined;
  readonly body: string;
}

async function call(path: string, token: string, method = 'GET', body?: string, node = 1, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${c.node(node).url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...headers },
    ...(body === undefined ? {} : { body }),
  });
  const text = await res.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
  } catch {
    code = undefined;
  }
  return { status: res.status, code, body: text };
}

async function createTenant(name: string, quota: Record<string, unknown>): Promise<string> {
  const r = await call('/v1/tenants', adminToken(1), 'POST', JSON.stringify({ name, quota }));
  expect(r.status, r.body).toBe(201);
  return (JSON.parse(r.body) as { token: string }).token;
}

const put = (token: string, key: string, value: string, node = 1, headers: Record<string, string> = {}): Promise<Answer> =>
  call(`/v1/kv/${key}`, token, 'PUT', value, node, headers);
const get = (token: string, key: string): Promise<Answer> => call(`/v1/kv/${key}`, token);
const del = (token: string, key: string): Promise<Answer> => call(`/v1/kv/${key}`, token, 'DELETE');
const refused = (a: Answer): boolean => a.status === 403 && a.code === 'QuotaExceeded';

/** Writes until one is accepted, for up to a few seconds: usage counts lag a deletion by up to a refresh (about 1 s). */
async function putEventually(token: string, key: string, value: string): Promise<void> {
  await eventually(
    async () => {
      const r = await put(token, key, value);
      if (r.status !== 200) expect(refused(r), r.body).toBe(true);
      return r.status === 200;
    },
    5_000,
    `PUT ${key} accepted`,
  );
}

describe('byte and key quotas (--auth on)', () => {
  let capped = '';
  let small = '';
  let free = '';

  test('quotas are validated at creation: positive safe integers, else 400 BadRequest', async () => {
    for (const quota of [{ keysMax: 0 }, { keysMax: 2.5 }, { keysMax: '10' }, { bytesMax: -1 }, { bytesMax: 2 ** 53 }, { bytesMax: true }]) {
      const r = await call('/v1/tenants', adminToken(1), 'POST', JSON.stringify({ name: 'bad', quota }));
      expect([r.status, r.code], JSON.stringify(quota)).toEqual([400, 'BadRequest']);
    }
    capped = await createTenant('capped', { keysMax: 10 });
    small = await createTenant('small', { bytesMax: 100 });
    free = await createTenant('free', {});
  });

  test('keysMax 10: ten keys are written, the eleventh is 403 QuotaExceeded and not written, through either node', async () => {
    // Through one node: it charges what it lets through to its count at once, so it holds the bound
    // exactly (writes spread over nodes may overshoot by one count's lag, see the README).
    for (let i = 0; i < 10; i++) expect((await put(capped, `k${i}`, 'v'.repeat(200))).status).toBe(200);
    const r = await put(capped, 'k10', 'v');
    expect([r.status, r.code], r.body).toEqual([403, 'QuotaExceeded']);
    expect(r.body).toContain('keysMax 10');
    // A compare-and-set creating a key is a new key too; through the other node, once its count caught up.
    await eventually(async () => refused(await put(capped, 'k11', 'v', 2, { 'if-match': '0' })), 5_000, 'node 2 refuses k11');
    expect((await get(capped, 'k10')).status).toBe(404);
    expect((await get(capped, 'k11')).status).toBe(404);
  });

  test('at the quota, reads, overwrites of existing keys and deletes are served', async () => {
    expect((await get(capped, 'k3')).body).toBe('v'.repeat(200));
    expect((await put(capped, 'k3', 'w'.repeat(300))).status).toBe(200);
    expect((await get(capped, 'k3')).body).toBe('w'.repeat(300));
    const scan = await call('/v1/kv?prefix=k', capped);
    expect(scan.status).toBe(200);
    expect((JSON.parse(scan.body) as { items: unknown[] }).items).toHaveLength(10);
    expect((await del(capped, 'k0')).status).toBe(200);
    expect((await del(capped, 'k1')).status).toBe(200);
  });

  test('after deleting two keys, two new keys are accepted, and the next one is refused again', async () => {
    await putEventually(capped, 'k10', 'v');
    expect((await put(capped, 'k11', 'v')).status).toBe(200);
    expect(refused(await put(capped, 'k12', 'v'))).toBe(true);
    expect((await get(capped, 'k10')).body).toBe('v');
  });

  test('bytesMax 100: writes past it by their own size are refused; overwrites that do not grow pass', async () => {
    // Key + value bytes: 2 + 48 = 50 each.
    expect((await put(small, 'b1', 'x'.repeat(48))).status).toBe(200);
    expect((await put(small, 'b2', 'x'.repeat(48))).status).toBe(200);
    const over = await put(small, 'b3', 'x');
    expect([over.status, over.code], over.body).toEqual([403, 'QuotaExceeded']);
    expect(over.body).toContain('bytesMax 100');
    expect((await get(small, 'b3')).status).toBe(404);
    expect((await put(small, 'b1', 'y'.repeat(48))).status).toBe(200); // same size
    expect(refused(await put(small, 'b1', 'y'.repeat(49)))).toBe(true); // one byte more
    expect((await get(small, 'b1')).body).toBe('y'.repeat(48));
    expect((await put(small, 'b1', 'z'.repeat(8))).status).toBe(200); // shrinks: 40 bytes free now
    await putEventually(small, 'b3', 'x'.repeat(38)); // 2 + 38 = 40
    expect(refused(await put(small, 'b4', ''))).toBe(true);
    expect((await del(small, 'b2')).status).toBe(200);
    await putEventually(small, 'b4', 'x'.repeat(48));
  });

  test('a tenant without byte or key quotas is unaffected', async () => {
    for (let i = 0; i < 30; i++) expect((await put(free, `f${i}`, 'v'.repeat(200))).status).toBe(200);
  });

  test('GET /v1/tenants shows each quota, and the usage this node counted', async () => {
    await eventually(
      async () => {
        // Counts are refreshed while a tenant writes: these writes (refused, both tenants are full) bring one about.
        expect(refused(await put(capped, 'k12', 'v'))).toBe(true);
        expect(refused(await put(small, 'b5', 'x'))).toBe(true);
        const r = await call('/v1/tenants', adminToken(1));
        expect(r.status).toBe(200);
        type Listed = { name: string; quota: unknown; usage?: { keys: number; bytes: number; ageMs: number } };
        const byName = new Map((JSON.parse(r.body) as { tenants: Listed[] }).tenants.map((t) => [t.name, t]));
        expect(byName.get('capped')?.quota).toEqual({ keysMax: 10 });
        expect(byName.get('small')?.quota).toEqual({ bytesMax: 100 });
        expect(byName.get('free')?.quota).toEqual({});
        expect(byName.get('free')?.usage).toBeUndefined();
        const u = byName.get('capped')?.usage;
        const v = byName.get('small')?.usage;
        return u?.keys === 10 && v?.keys === 3 && v.bytes === 100;
      },
      5_000,
      'usage in the list',
    );
    const metrics = await call('/metrics', adminToken(1));
    const refusals = Number(/^iroh_raft_quota_writes_refused_total (\d+)$/m.exec(metrics.body)?.[1]);
    expect(refusals).toBeGreaterThanOrEqual(5);
    expect(metrics.body).toMatch(/^iroh_raft_quota_tenants_cached 2$/m);
  });

  test('the command line creates tenants with --bytes-max and --keys-max, and refuses bad values', () => {
    const run = (args: string[]) =>
      spawnSync(process.execPath, [CLI, 'tenants', ...args, '--via', c.node(1).url, '--token-file', join(c.node(1).data, 'admin.token')], { encoding: 'utf8' });
    const made = run(['create', 'cli-capped', '--bytes-max', '1000', '--keys-max', '5']);
    expect(made.status, made.stderr).toBe(0);
    expect(JSON.parse(made.stdout)).toMatchObject({ tenant: { name: 'cli-capped', quota: { bytesMax: 1000, keysMax: 5 } } });
    for (const bad of [
      ['create', 'x', '--keys-max', '0'],
      ['create', 'x', '--bytes-max', '1.5'],
      ['create', 'x', '--bytes-max', 'lots'],
      ['list', '--keys-max', '3'],
    ]) {
      const r = run(bad);
      expect(r.status, bad.join(' ')).toBe(2);
      expect(r.stderr).toContain('InvalidFlag');
    }
  });
});
