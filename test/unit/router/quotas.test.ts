/**
 * The router's quota check (src/router/quotas.ts) over real KV state machines, one per shard, read
 * the way the router reads them (the Usage and Get queries), with a clock the test moves: the
 * bounds hold exactly for writes through one node, writes let through are charged before any
 * count shows them, overwrites that do not grow pass at the bound, a count older than maxAgeMs is
 * waited for and one older than refreshMs is refreshed without waiting, the cache is bounded, and
 * shards that do not answer let writes through unchecked.
 */
import { describe, expect, test } from 'vitest';
import type { Consistency, Result, TenantQuota } from '../../../src/api/index.js';
import { QuotaGuard } from '../../../src/router/quotas.js';
import { shardOf } from '../../../src/router/placement.js';
import type { Outcome } from '../../../src/shards/host.js';
import { KvStateMachine, encodeDelete, encodePut } from '../../../src/shards/kv/index.js';
import { logIndex, term } from '../../../src/shards/raft/index.js';
import type { ShardId } from '../../../src/shards/raft/index.js';
import type { DataTxn } from '../../../src/shards/state-machine.js';

const te = new TextEncoder();
const SHARDS = 4;

/** A shard's data database as a Map (the KV's Get and Usage read single keys only). */
class MapData implements DataTxn {
  private readonly m = new Map<string, Uint8Array>();
  private static id = (k: Uint8Array): string => Buffer.from(k).toString('hex');
  get(key: Uint8Array): Uint8Array | undefined {
    return this.m.get(MapData.id(key))?.slice();
  }
  put(key: Uint8Array, value: Uint8Array): void {
    this.m.set(MapData.id(key), value.slice());
  }
  remove(key: Uint8Array): void {
    this.m.delete(MapData.id(key));
  }
  range(): Iterable<{ key: Uint8Array; value: Uint8Array }> {
    throw new Error('not used by Get and Usage');
  }
}

interface Harness {
  readonly guard: QuotaGuard;
  /** Applies a write to its shard, as the router's proposal would. */
  apply(cmd: Uint8Array, tenant: string, key: string): void;
  /** Milliseconds of the guard's clock. */
  clock: { ms: number };
  /** Queries the guard made, by kind. */
  readonly asked: { usage: number; get: number };
  /** While set, shard reads wait for it (or fail, when `failing`). */
  hold: Promise<void> | undefined;
  failing: boolean;
}

function harness(quotas: Record<string, TenantQuota>, opts: { tenantsMax?: number } = {}): Harness {
  const sm = new KvStateMachine();
  const shards = Array.from({ length: SHARDS }, () => new MapData());
  let index = 0;
  const h: Harness = {
    clock: { ms: 0 },
    asked: { usage: 0, get: 0 },
    hold: undefined,
    failing: false,
    apply: (cmd, tenant, key) => {
      sm.apply(shards[shardOf(tenant, te.encode(key), SHARDS)]!, { index: logIndex(++index), term: term(1), command: cmd });
    },
    guard: undefined as unknown as QuotaGuard,
  };
  const query = async (shard: ShardId, q: Uint8Array, consistency: Consistency): Promise<Outcome> => {
    expect(consistency).toBe('lease');
    if (q[0] === 7) h.asked.usage++;
    else h.asked.get++;
    if (h.hold !== undefined) await h.hold;
    if (h.failing) return { ok: false, code: 'Timeout', message: 'no answer', leaderHint: 0 };
    return { ok: true, body: sm.query(shards[shard]!, q) };
  };
  const quotaOf = (t: string): Promise<Result<TenantQuota | undefined>> => Promise.resolve({ ok: true, value: quotas[t] });
  (h as { guard: QuotaGuard }).guard = new QuotaGuard({ shards: SHARDS, quotaOf, query, now: () => h.clock.ms, ...opts });
  return h;
}

/** Checks a put and, when it may go, applies it; returns the refusal's code or 'ok'. */
async function write(h: Harness, tenant: string, key: string, value: string): Promise<string> {
  const r = await h.guard.check({ tenant, key: te.encode(key), value: te.encode(value) });
  if (r !== undefined) return r.code;
  h.apply(encodePut(tenant, te.encode(key), te.encode(value)), tenant, key);
  return 'ok';
}

describe('quota check', () => {
  test('a tenant without bytesMax or keysMax is never counted', async () => {
    const h = harness({ rated: { requestsPerSec: 5 } });
    for (let i = 0; i < 20; i++) expect(await write(h, 'rated', `k${i}`, 'v')).toBe('ok');
    expect(await write(h, 'unknown', 'k', 'v')).toBe('ok');
    expect(h.asked).toEqual({ usage: 0, get: 0 });
  });

  test('keysMax: exact through one node; overwrites pass at the bound; a delete makes room once counted', async () => {
    const h = harness({ t: { keysMax: 3 } });
    for (const k of ['a', 'b', 'c']) expect(await write(h, 't', k, 'v')).toBe('ok');
    expect(await write(h, 't', 'd', 'v')).toBe('QuotaExceeded');
    expect(await write(h, 't', 'b', 'a longer value')).toBe('ok'); // an overwrite adds no key
    expect(h.guard.counters.refused).toBe(1);
    h.apply(encodeDelete('t', te.encode('a')), 't', 'a');
    // Until a count sees the delete, the charges of this node's writes stand.
    expect(await write(h, 't', 'd', 'v')).toBe('QuotaExceeded');
    h.clock.ms += 1_000;
    expect(await write(h, 't', 'd', 'v')).toBe('ok');
    expect(await write(h, 't', 'e', 'v')).toBe('QuotaExceeded');
  });

  test('bytesMax: a write past it by its own growth is refused; same-size and shrinking overwrites pass', async () => {
    const h = harness({ t: { bytesMax: 20 } });
    expect(await write(h, 't', 'k1', '12345678')).toBe('ok'); // 10 bytes
    expect(await write(h, 't', 'k2', '12345678')).toBe('ok'); // 20
    expect(await write(h, 't', 'k3', '')).toBe('QuotaExceeded');
    expect(await write(h, 't', 'k1', 'abcdefgh')).toBe('ok');
    expect(await write(h, 't', 'k1', 'abcdefghi')).toBe('QuotaExceeded');
    expect(await write(h, 't', 'k1', 'a')).toBe('ok');
    const r = await h.guard.check({ tenant: 't', key: te.encode('k9'), value: new Uint8Array(100) });
    expect(r).toMatchObject({ ok: false, code: 'QuotaExceeded' });
    expect(r?.message).toMatch(/bytesMax 20/);
  });

  test('writes let through are charged before any count shows them (in flight, not yet applied)', async () => {
    const h = harness({ t: { keysMax: 2 } });
    const check = (k: string) => h.guard.check({ tenant: 't', key: te.encode(k), value: te.encode('v') });
    expect(await check('a')).toBeUndefined();
    expect(await check('b')).toBeUndefined();
    expect(await check('c')).toMatchObject({ code: 'QuotaExceeded' });
    // Two checks at once near the bound: an overwrite that grows k1 by 5 bytes needs a lookup;
    // meanwhile a new key takes the last 10 bytes; the overwrite, counted again, no longer fits.
    const h2 = harness({ t: { bytesMax: 20 } });
    expect(await write(h2, 't', 'k1', '12345678')).toBe('ok'); // 10 bytes
    const [grow, fresh] = await Promise.all([
      h2.guard.check({ tenant: 't', key: te.encode('k1'), value: te.encode('1234567890123') }),
      h2.guard.check({ tenant: 't', key: te.encode('k2'), value: te.encode('12345678') }),
    ]);
    expect(fresh).toBeUndefined();
    expect(grow).toMatchObject({ code: 'QuotaExceeded' });
  });

  test('a count older than refreshMs is refreshed without making the write wait; older than maxAgeMs, the write waits', async () => {
    const h = harness({ t: { keysMax: 100 } });
    expect(await write(h, 't', 'a', 'v')).toBe('ok');
    expect(h.asked.usage).toBe(SHARDS);
    h.clock.ms = 100;
    expect(await write(h, 't', 'b', 'v')).toBe('ok');
    expect(h.asked.usage).toBe(SHARDS); // fresh: no read
    let release = (): void => {};
    h.hold = new Promise<void>((r) => (release = r));
    h.clock.ms = 600;
    expect(await write(h, 't', 'c', 'v')).toBe('ok'); // answered while the refresh hangs
    expect(h.asked.usage).toBe(2 * SHARDS);
    h.clock.ms = 1_700;
    let done = false;
    const waiting = write(h, 't', 'd', 'v').then(() => (done = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(done).toBe(false);
    release();
    h.hold = undefined;
    await waiting;
    expect(h.guard.cached('t')).toMatchObject({ keys: 3 });
  });

  test('shards that do not answer: writes go through unchecked (counted); the last count is kept', async () => {
    const h = harness({ t: { keysMax: 1 } });
    h.failing = true;
    expect(await write(h, 't', 'a', 'v')).toBe('ok');
    expect(h.guard.counters.unchecked).toBe(1);
    expect(h.guard.counters.refreshFailures).toBe(1);
    h.failing = false;
    h.clock.ms += 10;
    expect(await write(h, 't', 'b', 'v')).toBe('QuotaExceeded');
    h.failing = true;
    h.clock.ms += 5_000;
    expect(await write(h, 't', 'c', 'v')).toBe('QuotaExceeded'); // the last count stands
  });

  test('the cache holds at most tenantsMax tenants, the least recently used going first', async () => {
    const h = harness({ a: { keysMax: 5 }, b: { keysMax: 5 }, c: { keysMax: 5 } }, { tenantsMax: 2 });
    for (const t of ['a', 'b', 'a', 'c']) expect(await write(h, t, 'k', 'v')).toBe('ok');
    expect(h.guard.size).toBe(2);
    expect(h.guard.cached('b')).toBeUndefined();
    expect(h.guard.cached('a')).toMatchObject({ keys: 0 });
  });
});
