/**
 * Scans across shards page through every key exactly once. Each shard is the real KV state
 * machine over a sorted in-memory store, with byte budgets small enough that shards stop early at
 * different keys; the router is real and only the pool between them is a stand-in that answers
 * reads in-process. Paging with the last key of each merged page must return the reference
 * model's keys, in order, each once, whatever the shard count, limits and budgets (fast-check).
 * The old merge (every shard's items sorted, cut at the limit only) fails here: a shard that stops
 * early on its byte budget holds keys below the last key of the merged page, and the next page
 * starts after them.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { KvStateMachine, encodePut } from '../../../src/shards/kv/index.js';
import type { KvLimits } from '../../../src/shards/kv/index.js';
import { logIndex, term } from '../../../src/shards/raft/index.js';
import type { NodeId, ShardId } from '../../../src/shards/raft/index.js';
import type { DataTxn } from '../../../src/shards/state-machine.js';
import type { Outcome } from '../../../src/shards/host.js';
import { Router } from '../../../src/router/router.js';
import { mergeScanPages } from '../../../src/router/scan-merge.js';
import { shardOf } from '../../../src/router/placement.js';
import type { WorkerPool } from '../../../src/workers/pool.js';
import type { ScanItem } from '../../../src/api/index.js';

/** A sorted in-memory data database (keys compared bytewise). */
class SortedData implements DataTxn {
  private readonly rows: { key: Uint8Array; value: Uint8Array }[] = [];

  private at(key: Uint8Array): number {
    let lo = 0;
    let hi = this.rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (Buffer.compare(this.rows[mid]!.key, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  get(key: Uint8Array): Uint8Array | undefined {
    const i = this.at(key);
    const row = this.rows[i];
    return row && Buffer.compare(row.key, key) === 0 ? row.value : undefined;
  }

  put(key: Uint8Array, value: Uint8Array): void {
    const i = this.at(key);
    const row = this.rows[i];
    if (row && Buffer.compare(row.key, key) === 0) row.value = value.slice();
    else this.rows.splice(i, 0, { key: key.slice(), value: value.slice() });
  }

  remove(key: Uint8Array): void {
    const i = this.at(key);
    const row = this.rows[i];
    if (row && Buffer.compare(row.key, key) === 0) this.rows.splice(i, 1);
  }

  *range(start: Uint8Array, end: Uint8Array, limit: number): Iterable<{ readonly key: Uint8Array; readonly value: Uint8Array }> {
    for (let i = this.at(start), n = 0; i < this.rows.length && n < limit && Buffer.compare(this.rows[i]!.key, end) < 0; i++, n++) yield this.rows[i]!;
  }
}

interface Cluster {
  readonly router: Router;
  /** Reads that reached a shard. */
  readonly reads: { n: number };
}

/**
 * A one-node router over `shards` KV state machines holding `entries` (placed by the router's own
 * placement), each shard with the KV limits `limits`.
 */
function cluster(shards: number, limits: Partial<KvLimits>, entries: readonly { key: Uint8Array; value: Uint8Array }[], routerScanBytesMax?: number): Cluster {
  const machine = new KvStateMachine(limits);
  const data = Array.from({ length: shards }, () => new SortedData());
  let index = 1;
  for (const e of entries) {
    const s = shardOf('t', e.key, shards);
    const reply = machine.apply(data[s]!, { index: logIndex(index++), term: term(1), command: encodePut('t', e.key, e.value) });
    expect(reply[0]).toBe(0); // STATUS_OK
  }
  const reads = { n: 0 };
  const pool = {
    leaders: new Map(),
    workers: 1,
    workerOf: () => 0,
    isRunning: () => true,
    hosts: () => true,
    wake: () => Promise.resolve(0),
    read: (shard: ShardId, query: Uint8Array): Promise<Outcome> => {
      reads.n++;
      return Promise.resolve({ ok: true, body: machine.query(data[shard]!, query) });
    },
  } as unknown as WorkerPool;
  const router = new Router({
    self: 1 as NodeId,
    members: [{ nodeId: 1 as NodeId, peerId: 'self' }],
    shards,
    replicas: 1,
    pool,
    link: { send: () => undefined },
    ...(routerScanBytesMax === undefined ? {} : { scanBytesMax: routerScanBytesMax }),
  });
  return { router, reads };
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Pages through `prefix` with `limit`, checking each page; returns every item in the order received. */
async function pageThrough(router: Router, prefix: Uint8Array, limit: number, bytesMax: number): Promise<ScanItem[]> {
  const got: ScanItem[] = [];
  let startAfter: Uint8Array | undefined;
  for (let pages = 0; ; pages++) {
    expect(pages).toBeLessThan(10_000);
    const r = await router.scan({ tenant: 't', prefix, limit, consistency: 'linearizable', ...(startAfter ? { startAfter } : {}) });
    if (!r.ok) throw new Error(`scan failed: ${r.code} ${r.message}`);
    const { items, more } = r.value;
    expect(items.length).toBeLessThanOrEqual(limit);
    const bytes = items.reduce((n, it) => n + it.key.length + it.value.length, 0);
    if (items.length > 1) expect(bytes).toBeLessThanOrEqual(bytesMax);
    got.push(...items);
    if (!more) return got;
    // A page that says more has made progress.
    expect(items.length).toBeGreaterThan(0);
    startAfter = items.at(-1)!.key;
  }
}

/** The keys with `prefix`, in byte order, as hex. */
function expected(entries: readonly { key: Uint8Array; value: Uint8Array }[], prefix: Uint8Array): string[] {
  return entries
    .filter((e) => Buffer.from(e.key).subarray(0, prefix.length).equals(prefix))
    .map((e) => hex(e.key))
    .sort();
}

const entryArb = fc.uniqueArray(
  fc.record({
    key: fc.uint8Array({ minLength: 1, maxLength: 3 }).map((k) => k.map((b) => [0x00, 0x61, 0x62, 0x63, 0xff][b % 5]!)),
    value: fc.uint8Array({ maxLength: 12 }),
  }),
  { selector: (e) => hex(e.key), maxLength: 40 },
);

describe('scan merge across shards', () => {
  test('paging with the last key returns every key of the reference model exactly once, in order', async () => {
    await fc.assert(
      fc.asyncProperty(
        entryArb,
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 15, max: 40 }),
        fc.integer({ min: 1, max: 60 }),
        fc.constantFrom(new Uint8Array(0), new Uint8Array([0x61]), new Uint8Array([0xff]), new Uint8Array([0x61, 0x62])),
        async (entries, shards, limit, shardBytes, routerBytes, prefix) => {
          // keyBytesMax + valueBytesMax <= scanBytesMax: one item always fits a shard's page.
          const { router } = cluster(shards, { keyBytesMax: 3, valueBytesMax: 12, scanLimitMax: 10, scanBytesMax: shardBytes }, entries, routerBytes);
          const got = await pageThrough(router, prefix, limit, routerBytes);
          expect(got.map((it) => hex(it.key))).toEqual(expected(entries, prefix));
          const byKey = new Map(entries.map((e) => [hex(e.key), e.value]));
          for (const it of got) expect(hex(it.value)).toBe(hex(byKey.get(hex(it.key))!));
          router.close();
        },
      ),
      { numRuns: 300 },
    );
  });

  test('a shard that stops early on its byte budget cuts the page at its last key (the next page starts there)', async () => {
    // Two shards: one holds a large value at the first key and a small one later; the other holds
    // small values in between. The first shard stops after its large value.
    const shards = 2;
    const keys = Array.from({ length: 200 }, (_, i) => new Uint8Array([0x61 + Math.floor(i / 26), 0x61 + (i % 26)]));
    const on = (s: number): Uint8Array[] => keys.filter((k) => shardOf('t', k, shards) === s);
    const [big, later] = on(0) as [Uint8Array, Uint8Array];
    const others = on(1);
    const before = others.find((k) => Buffer.compare(k, big) > 0 && Buffer.compare(k, later) < 0);
    const after = others.find((k) => Buffer.compare(k, later) > 0);
    // Shard 1 has keys between shard 0's two keys and after them.
    expect(before).toBeDefined();
    expect(after).toBeDefined();
    const entries = [
      { key: big, value: new Uint8Array(12) },
      { key: later, value: new Uint8Array(1) },
      { key: before!, value: new Uint8Array(1) },
      { key: after!, value: new Uint8Array(1) },
    ];
    const { router } = cluster(shards, { keyBytesMax: 2, valueBytesMax: 12, scanLimitMax: 10, scanBytesMax: 16 }, entries, 1000);
    const first = await router.scan({ tenant: 't', prefix: new Uint8Array(0), limit: 10, consistency: 'linearizable' });
    expect(first.ok).toBe(true);
    if (!first.ok) return;
    // Shard 0 sent only its first key (14 bytes; the next would pass 16): the page ends there.
    expect(first.value.items.map((it) => hex(it.key))).toEqual([hex(big)]);
    expect(first.value.more).toBe(true);
    const all = await pageThrough(router, new Uint8Array(0), 10, 1000);
    expect(all.map((it) => hex(it.key))).toEqual(expected(entries, new Uint8Array(0)));
    router.close();
  });

  test('the merged page keeps to the router byte budget, first item always in', () => {
    const it = (k: number, v: number): ScanItem => ({ key: new Uint8Array([k]), value: new Uint8Array(v), version: 1 });
    const pages = [
      { items: [it(1, 10), it(3, 10)], more: false },
      { items: [it(2, 10), it(4, 10)], more: false },
    ];
    expect(mergeScanPages(pages, 10, 22).items.map((x) => x.key[0])).toEqual([1, 2]);
    expect(mergeScanPages(pages, 10, 22).more).toBe(true);
    expect(mergeScanPages(pages, 10, 5).items.map((x) => x.key[0])).toEqual([1]);
    expect(mergeScanPages(pages, 3, 1000)).toMatchObject({ more: true });
    expect(mergeScanPages(pages, 3, 1000).items.map((x) => x.key[0])).toEqual([1, 2, 3]);
    expect(mergeScanPages(pages, 4, 1000)).toMatchObject({ more: false });
    // A shard that stopped early cuts at its last key, whatever the others sent.
    const cut = mergeScanPages([{ items: [it(1, 1)], more: true }, ...pages.slice(1)], 10, 1000);
    expect(cut).toMatchObject({ more: true });
    expect(cut.items.map((x) => x.key[0])).toEqual([1]);
  });
});
