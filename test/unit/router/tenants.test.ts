/**
 * The tenant directory over a KV with the real semantics (versions, compare-and-set, sorted
 * scans) in memory, on a virtual clock: records hold no token, writes are conditional, and a
 * change made elsewhere is seen within the cache lifetime.
 */
import { Buffer } from 'node:buffer';
import { describe, expect, test } from 'vitest';
import type { KvService, Result } from '../../../src/api/index.js';
import { TenantDirectory } from '../../../src/router/tenants.js';
import { hashSecret, mintToken } from '../../../src/router/tokens.js';

/** One shared store; each directory is a node with its own cache. */
class Store {
  readonly rows = new Map<string, { value: Uint8Array; version: number }>();
  reads = 0;
  kv(): KvService {
    const k = (tenant: string, key: Uint8Array): string => `${tenant}\u0000${Buffer.from(key).toString('latin1')}`;
    const ok = <T>(value: T): Result<T> => ({ ok: true, value });
    return {
      put: ({ tenant, key, value, expectedVersion }) => {
        const cur = this.rows.get(k(tenant, key));
        if (expectedVersion !== undefined && expectedVersion !== (cur?.version ?? 0))
          return Promise.resolve(ok({ version: cur?.version ?? 0, swapped: false }));
        const version = (cur?.version ?? 0) + 1;
        this.rows.set(k(tenant, key), { value, version });
        return Promise.resolve(ok({ version, swapped: true }));
      },
      delete: ({ tenant, key }) => Promise.resolve(ok({ deleted: this.rows.delete(k(tenant, key)) })),
      get: ({ tenant, key }) => {
        this.reads++;
        const cur = this.rows.get(k(tenant, key));
        return Promise.resolve(
          ok(cur === undefined ? { found: false as const } : { found: true as const, value: cur.value, version: cur.version, createIndex: 1, modIndex: 1 }),
        );
      },
      scan: ({ tenant, prefix, limit, startAfter }) => {
        const p = k(tenant, prefix);
        const after = startAfter === undefined ? '' : k(tenant, startAfter);
        const keys = [...this.rows.keys()].filter((x) => x.startsWith(p) && x > after).sort();
        const items = keys.slice(0, limit).map((x) => ({ key: Buffer.from(x.slice(tenant.length + 1), 'latin1'), value: this.rows.get(x)!.value, version: 1 }));
        return Promise.resolve(ok({ items, more: keys.length > limit }));
      },
      status: () => Promise.resolve({}),
      metrics: () => Promise.resolve({ contentType: 'text/plain', body: '' }),
      health: () => ({ ok: true, detail: {} }),
      placement: () => {
        throw new Error('not used by the directory');
      },
    };
  }
}

function setup(): { store: Store; clock: { ms: number }; node1: TenantDirectory; node2: TenantDirectory; admin: string } {
  const store = new Store();
  const clock = { ms: 1_000_000 };
  const admin = mintToken('_admin');
  const mk = (): TenantDirectory => new TenantDirectory({ kv: store.kv(), adminSecretHash: admin.secretHash, now: () => clock.ms });
  return { store, clock, node1: mk(), node2: mk(), admin: admin.token };
}

const kind = async (d: TenantDirectory, token: string): Promise<string> => {
  const r = await d.authenticate(token);
  if (!r.ok) return r.code;
  return r.value.kind === 'refused' ? r.value.reason : r.value.kind === 'tenant' ? `tenant:${r.value.tenant}` : 'admin';
};

describe('TenantDirectory', () => {
  test('create stores the hash of the secret, never the token; a second create of the name is TenantExists', async () => {
    const { store, node1, node2 } = setup();
    const a = await node1.create('acme', { requestsPerSec: 5 });
    expect(a.ok).toBe(true);
    if (!a.ok) return;
    const token = a.value.token;
    expect(a.value.tenant).toMatchObject({ name: 'acme', quota: { requestsPerSec: 5 }, generation: 1 });
    const stored = Buffer.from([...store.rows.values()][0]!.value).toString();
    expect(stored).not.toContain(token.slice(token.lastIndexOf('.') + 1));
    expect(stored).toContain(hashSecret(token.slice(token.lastIndexOf('.') + 1)).toString('hex'));
    expect(await node2.create('acme', {})).toMatchObject({ ok: false, code: 'TenantExists' });
    expect(await kind(node2, token)).toBe('tenant:acme');
  });

  test('names: reserved `_`, bad characters and lengths are InvalidTenant; bad quotas BadRequest', async () => {
    const { node1 } = setup();
    for (const name of ['_system', '_admin', '', 'a b', 'x'.repeat(65), 'é']) {
      expect(await node1.create(name, {}), name).toMatchObject({ ok: false, code: 'InvalidTenant' });
    }
    for (const requestsPerSec of [0, -1, Infinity, NaN, 2e6]) {
      expect(await node1.create('ok', { requestsPerSec }), String(requestsPerSec)).toMatchObject({ ok: false, code: 'BadRequest' });
    }
    for (const n of [0, -1, 1.5, Infinity, NaN, 2 ** 53]) {
      expect(await node1.create('ok', { bytesMax: n }), `bytesMax ${n}`).toMatchObject({ ok: false, code: 'BadRequest' });
      expect(await node1.create('ok', { keysMax: n }), `keysMax ${n}`).toMatchObject({ ok: false, code: 'BadRequest' });
    }
  });

  test('byte and key quotas are kept in the record; quotaOf reads them through the cache, never for reserved names', async () => {
    const { store, node1, node2 } = setup();
    expect(await node1.create('capped', { bytesMax: 1_000_000, keysMax: 10 })).toMatchObject({
      ok: true,
      value: { tenant: { quota: { bytesMax: 1_000_000, keysMax: 10 } } },
    });
    expect(await node2.quotaOf('capped')).toEqual({ ok: true, value: { bytesMax: 1_000_000, keysMax: 10 } });
    expect(await node2.quotaOf('ghost')).toEqual({ ok: true, value: undefined });
    const reads = store.reads;
    expect(await node2.quotaOf('capped')).toMatchObject({ ok: true });
    expect(await node2.quotaOf('_system')).toEqual({ ok: true, value: undefined });
    expect(store.reads).toBe(reads);
    const listed = await node1.list();
    expect(listed).toMatchObject({ ok: true, value: [{ name: 'capped', quota: { bytesMax: 1_000_000, keysMax: 10 } }] });
  });

  test('setQuota replaces the quota and keeps the token; node 2 sees it within the cache lifetime; bad input changes nothing', async () => {
    const { clock, node1, node2 } = setup();
    const made = await node1.create('acme', { keysMax: 10 });
    expect(made.ok).toBe(true);
    const token = made.ok ? made.value.token : '';
    expect(await node2.quotaOf('acme')).toEqual({ ok: true, value: { keysMax: 10 } });
    expect(await node1.setQuota('acme', { bytesMax: 500 })).toMatchObject({ ok: true, value: { name: 'acme', quota: { bytesMax: 500 }, generation: 1 } });
    expect(await node1.quotaOf('acme')).toEqual({ ok: true, value: { bytesMax: 500 } });
    expect(await node2.quotaOf('acme')).toEqual({ ok: true, value: { keysMax: 10 } });
    clock.ms += 1_000;
    expect(await node2.quotaOf('acme')).toEqual({ ok: true, value: { bytesMax: 500 } });
    expect(await node2.authenticate(token)).toMatchObject({ ok: true, value: { kind: 'tenant', tenant: 'acme' } });
    expect(await node1.setQuota('ghost', {})).toMatchObject({ ok: false, code: 'TenantNotFound' });
    expect(await node1.setQuota('acme', { keysMax: 0 })).toMatchObject({ ok: false, code: 'BadRequest' });
    expect(await node1.setQuota('_system', {})).toMatchObject({ ok: false, code: 'InvalidTenant' });
    expect(await node1.quotaOf('acme')).toEqual({ ok: true, value: { bytesMax: 500 } });
  });

  test("the admin token is this node's; a token for `_system` or a bad secret is refused", async () => {
    const { node1, admin } = setup();
    expect(await kind(node1, admin)).toBe('admin');
    const other = mintToken('_admin').token;
    expect(await kind(node1, other)).toBe('WrongSecret');
    expect(await kind(node1, mintToken('_system').token)).toBe('Malformed');
    expect(await kind(node1, 'garbage')).toBe('Malformed');
    expect(await kind(node1, mintToken('ghost').token)).toBe('NoSuchTenant');
  });

  test('a rotation or delete made on node 1 reaches node 2 once its cached record is older than 1 s', async () => {
    const { clock, node1, node2, store } = setup();
    const created = await node1.create('acme', {});
    if (!created.ok) throw new Error(created.message);
    const old = created.value.token;
    expect(await kind(node2, old)).toBe('tenant:acme');
    const rotated = await node1.rotate('acme');
    if (!rotated.ok) throw new Error(rotated.message);
    expect(rotated.value.tenant.generation).toBe(2);
    // Node 1 forgot its own entry at once; node 2 uses its cached record for up to a second.
    expect(await kind(node1, old)).toBe('WrongSecret');
    expect(await kind(node2, old)).toBe('tenant:acme');
    clock.ms += 999;
    expect(await kind(node2, old)).toBe('tenant:acme');
    clock.ms += 1;
    expect(await kind(node2, old)).toBe('WrongSecret');
    expect(await kind(node2, rotated.value.token)).toBe('tenant:acme');
    // Cached: more checks within the second read nothing.
    const reads = store.reads;
    for (let i = 0; i < 10; i++) await kind(node2, rotated.value.token);
    expect(store.reads).toBe(reads);

    expect(await node1.delete('acme')).toEqual({ ok: true, value: { deleted: true } });
    expect(await node1.delete('acme')).toMatchObject({ ok: false, code: 'TenantNotFound' });
    expect(await node1.rotate('acme')).toMatchObject({ ok: false, code: 'TenantNotFound' });
    clock.ms += 1000;
    expect(await kind(node2, rotated.value.token)).toBe('NoSuchTenant');
  });

  test('concurrent checks of one tenant share one read; the cache is bounded', async () => {
    const store = new Store();
    const clock = { ms: 0 };
    const d = new TenantDirectory({ kv: store.kv(), adminSecretHash: mintToken('_admin').secretHash, now: () => clock.ms, cacheEntriesMax: 3 });
    const t = await d.create('acme', {});
    if (!t.ok) throw new Error(t.message);
    const before = store.reads;
    await Promise.all(Array.from({ length: 20 }, () => d.authenticate(t.value.token)));
    expect(store.reads - before).toBe(1);
    for (const n of ['a1', 'a2', 'a3', 'a4', 'a5']) await d.authenticate(mintToken(n).token);
    expect(d.cachedEntries).toBe(3);
  });

  test('list shows every tenant without hashes, across scan pages', async () => {
    const { node1 } = setup();
    for (let i = 0; i < 1005; i++) await node1.create(`t${String(i).padStart(4, '0')}`, {});
    const r = await node1.list();
    if (!r.ok) throw new Error(r.message);
    expect(r.value).toHaveLength(1005);
    expect(r.value[1004]!.name).toBe('t1004');
    expect(JSON.stringify(r.value)).not.toMatch(/secret|hash/i);
  });
});
