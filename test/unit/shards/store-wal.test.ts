/**
 * The store's write-ahead log on real files: what logged turns wrote comes back after a SIGKILL
 * (log entries, a conflict that cut into the checkpointed log, hard state; the applied data as
 * of the last checkpoint), a torn or corrupt record ends the replay there, reads see writes that
 * wait for a checkpoint (gets, ranges with removals and limits, against a model), a dropped shard
 * leaves no record behind, and a turn that throws half way stops the store until it is reopened.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, test } from 'vitest';
import { Store } from '../../../src/shards/store.js';
import type { ShardStore } from '../../../src/shards/store.js';
import { Wal, WalRecord } from '../../../src/shards/wal.js';
import { open } from 'lmdb';
import { EntryType, Prng } from '../../../src/shards/raft/index.js';
import type { LogIndex, NodeId, ShardId, Term } from '../../../src/shards/raft/index.js';

const CHILD = new URL('./wal-child.ts', import.meta.url).pathname;
const enc = new TextEncoder();
const dec = new TextDecoder();
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function path(): string {
  const dir = mkdtempSync(join(tmpdir(), 'iroh-raft-wal-'));
  dirs.push(dir);
  return join(dir, 'lmdb');
}

/** Runs wal-child.ts on `p`, kills it with SIGKILL once it has written, returns where its records end. */
async function crashChild(p: string, mode = ''): Promise<number[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, p, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_c, signal) => resolve(signal)));
  let ends: number[] | undefined;
  for await (const line of createInterface({ input: child.stdout })) {
    ends = (JSON.parse(line) as { ends: number[] }).ends;
    break;
  }
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
  expect(ends).toHaveLength(mode === 'large' ? 1 : 3);
  return ends!;
}

const termsOf = (ss: ShardStore): number[] => ss.entries(ss.firstIndex(), (ss.lastIndex() + 1) as LogIndex, Infinity).map((e) => e.term);
const valueOf = (ss: ShardStore, k: string): string | undefined => {
  const v = ss.reader().get(enc.encode(k));
  return v === undefined ? undefined : dec.decode(v);
};

describe('after a SIGKILL', () => {
  test('the log, the cut into its checkpointed part and the hard state come back; the data as of the last checkpoint', async () => {
    const p = path();
    await crashChild(p);
    const s = Store.open({ path: p, worker: 0, workers: 1 });
    const ss = s.shard(1 as ShardId);
    // 2..7 of term 2 (checkpointed), 8..13 of term 3 (cut the checkpointed 8..11 and the logged 12..19), 14..15 of term 4.
    expect(ss.firstIndex()).toBe(2);
    expect(ss.lastIndex()).toBe(15);
    expect(termsOf(ss)).toEqual([2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 4, 4]);
    expect(dec.decode(ss.entries(9 as LogIndex, 10 as LogIndex, Infinity)[0]!.data)).toBe('e9t3');
    expect(ss.hardState()).toMatchObject({ term: 4, vote: 2 });
    // Applying is not logged: the data and the applied index are the checkpoint's, and raft applies the rest again.
    expect(ss.applied()).toBe(5);
    expect(valueOf(ss, 'k5')).toBe('v5');
    expect(valueOf(ss, 'k6')).toBeUndefined();
    expect(ss.readStored()).toMatchObject({ hard: { term: 4, vote: 2 }, applied: 5, lastIndex: 15 });
    await s.close();
    // The opening checkpointed what it replayed: a second opening finds the same.
    const again = Store.open({ path: p, worker: 0, workers: 1 });
    expect(termsOf(again.shard(1 as ShardId))).toEqual([2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 4, 4]);
    await again.close();
  });

  test('a record cut short (a torn write) ends the replay before it', async () => {
    const p = path();
    const ends = await crashChild(p);
    const file = join(p, 'wal');
    writeFileSync(file, readFileSync(file).subarray(0, ends[2]! - 3));
    const s = Store.open({ path: p, worker: 0, workers: 1 });
    const ss = s.shard(1 as ShardId);
    expect(ss.lastIndex()).toBe(13);
    expect(termsOf(ss)).toEqual([2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3]);
    expect(ss.hardState()).toMatchObject({ term: 3, vote: 2 });
    await s.close();
  });

  test('a record whose checksum fails ends the replay there, and nothing after it is read', async () => {
    const p = path();
    const ends = await crashChild(p);
    const file = join(p, 'wal');
    const bytes = readFileSync(file);
    bytes[ends[0]! + 20]! ^= 0xff; // inside the second record (the conflict)
    writeFileSync(file, bytes);
    const s = Store.open({ path: p, worker: 0, workers: 1 });
    const ss = s.shard(1 as ShardId);
    expect(ss.lastIndex()).toBe(19);
    expect(termsOf(ss).every((t) => t === 2)).toBe(true);
    expect(ss.hardState()).toMatchObject({ term: 2, vote: 2 });
    await s.close();
  });
});

describe('sizes', () => {
  const MiB = 1024 * 1024;
  const big = (shard: number, i: number) => ({ index: i as LogIndex, term: 1 as Term, type: EntryType.Normal, data: new Uint8Array(MiB).fill(shard * 16 + i) });

  test('a turn of 1 MiB entries past a step of the file growth (4 MiB) comes back whole after a SIGKILL', async () => {
    const p = path();
    await crashChild(p, 'large');
    const s = Store.open({ path: p, worker: 0, workers: 1 });
    const ss = s.shard(1 as ShardId);
    expect(ss.lastIndex()).toBe(7);
    const es = ss.entries(2 as LogIndex, 8 as LogIndex, Infinity);
    expect(es.map((e) => [e.index, e.data.length, e.data[0], e.data[MiB - 1]])).toEqual([2, 3, 4, 5, 6, 7].map((i) => [i, MiB, i, i]));
    expect(ss.hardState()).toMatchObject({ term: 2, vote: 3 });
    await s.close();
  });

  test('a turn larger than a record is written as several (at and past the target), replayed in order; a cut in the second keeps the first', () => {
    const dir = path();
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'wal');
    const wal = new Wal(file, 5);
    const rec = new WalRecord();
    // Three shards of four 1 MiB entries: with a 4 MiB target each item (4 MiB and its headers) is a record of its own.
    for (const shard of [1, 2, 3]) rec.add({ shard: shard as ShardId, entries: [1, 2, 3, 4].map((i) => big(shard, i)) });
    rec.add({ shard: 3 as ShardId, hard: { term: 4 as Term, vote: 1 as NodeId } });
    const target = 4 * MiB;
    const records = rec.encode(5, target);
    // Past the target: each 4 MiB item alone; the small hard state after them starts a fourth.
    expect(records.map((r) => r.length > target)).toEqual([true, true, true, false]);
    // At the target exactly: two 2 MiB items fill one record, the third starts the next.
    const exact = new WalRecord();
    for (const shard of [1, 2, 3]) exact.add({ shard: shard as ShardId, entries: [big(shard, 1), big(shard, 2)] });
    const half = exact.encode(5, 2 * (5 + 12 + 2 * (13 + MiB)));
    expect(half).toHaveLength(2);
    wal.append(rec, target);
    expect(wal.records).toBe(4);
    wal.close();
    const again = new Wal(file, 5);
    const items = [...again.replay()];
    expect(items.map((it) => [it.shard, it.entries?.length ?? 0, it.hard?.term ?? 0])).toEqual([
      [1, 4, 0],
      [2, 4, 0],
      [3, 4, 0],
      [3, 0, 4],
    ]);
    expect(items[1]!.entries!.map((e) => [e.index, e.data.length, e.data[0], e.data[MiB - 1]])).toEqual([1, 2, 3, 4].map((i) => [i, MiB, 32 + i, 32 + i]));
    again.close();
    // A crash in the middle of the turn's second record: the first one's item is all a replay finds.
    writeFileSync(file, readFileSync(file).subarray(0, records[0]!.length + records[1]!.length - 1));
    const cut = new Wal(file, 5);
    expect([...cut.replay()].map((it) => it.shard)).toEqual([1]);
    cut.close();
    // Another generation reads nothing.
    const other = new Wal(file, 6);
    expect([...other.replay()]).toEqual([]);
    other.close();
  });
});

/** One shard's writes of a logged turn, as the host makes them. */
function entry(i: number, term: number) {
  return { index: i as LogIndex, term: term as Term, type: EntryType.Normal, data: enc.encode(`e${i}`) };
}

test('reads see the writes that wait for a checkpoint: gets and ranges (removals, limits) against a model', async () => {
  const p = path();
  const s = Store.open({ path: p, worker: 0, workers: 1, checkpointMs: 1e9 });
  const ss = s.create(1 as ShardId, [1] as NodeId[]);
  const model = new Map<string, string>();
  const rng = new Prng(7);
  const key = (): string => `k${String(rng.int(0, 40)).padStart(2, '0')}`;
  const check = (): void => {
    const sorted = [...model.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (let i = 0; i < 10; i++) {
      const lo = key();
      const hi = key();
      const limit = rng.int(1, 15);
      const want = sorted.filter(([k]) => k >= lo && k < hi).slice(0, limit);
      const got = [...ss.reader().range(enc.encode(lo), enc.encode(hi), limit)].map(({ key: k, value: v }) => [dec.decode(k), dec.decode(v)]);
      expect(got).toEqual(want);
    }
    for (let i = 0; i < 40; i++) {
      const k = `k${String(i).padStart(2, '0')}`;
      expect(valueOf(ss, k)).toBe(model.get(k));
    }
  };
  let index = 1;
  for (let round = 0; round < 60; round++) {
    s.logged(() => {
      const t = ss.txn();
      for (let i = 0; i < 8; i++) {
        const k = key();
        if (rng.int(0, 3) === 0) {
          t.remove(enc.encode(k));
          model.delete(k);
        } else {
          const v = `v${round}.${i}`;
          t.put(enc.encode(k), enc.encode(v));
          model.set(k, v);
        }
      }
      index++;
      ss.append([entry(index, 1)]);
      ss.setApplied(index as LogIndex, ss.confState());
    });
    check();
    if (round % 7 === 6) {
      s.commit(() => undefined);
      check();
    }
  }
  await s.close();
  const again = Store.open({ path: p, worker: 0, workers: 1 });
  expect(again.shard(1 as ShardId).applied()).toBe(index);
  expect(again.shard(1 as ShardId).lastIndex()).toBe(index);
  await again.close();
});

test('a shard dropped while its writes wait for a checkpoint: created again under its id it starts empty, also after a reopen', async () => {
  const p = path();
  const s = Store.open({ path: p, worker: 0, workers: 1, checkpointMs: 1e9 });
  const ss = s.create(1 as ShardId, [1, 2, 3] as NodeId[]);
  s.logged(() => {
    ss.append([entry(2, 2), entry(3, 2)]);
    ss.setHardState({ term: 2 as Term, vote: 1 as NodeId, commit: 3 as LogIndex });
  });
  expect(s.drop(1 as ShardId)).toBe(true);
  const fresh = s.create(1 as ShardId, []);
  expect(fresh.lastIndex()).toBe(0);
  expect(fresh.hardState()).toEqual({ term: 0, vote: 0, commit: 0 });
  await s.close();
  const again = Store.open({ path: p, worker: 0, workers: 1 });
  expect(again.shard(1 as ShardId).lastIndex()).toBe(0);
  expect(again.shard(1 as ShardId).hardState()).toEqual({ term: 0, vote: 0, commit: 0 });
  await again.close();
});

test('a logged turn that throws half way stops the store (StoreFailed); reopened, the records before it are there', async () => {
  const p = path();
  const s = Store.open({ path: p, worker: 0, workers: 1, checkpointMs: 1e9 });
  const ss = s.create(1 as ShardId, [1, 2, 3] as NodeId[]);
  s.logged(() => ss.append([entry(2, 2)]));
  expect(() =>
    s.logged(() => {
      ss.append([entry(3, 2)]);
      throw new Error('apply failed');
    }),
  ).toThrow('apply failed');
  expect(() => s.logged(() => undefined)).toThrow(expect.objectContaining({ code: 'StoreFailed' }));
  expect(() => s.commit(() => undefined)).toThrow(expect.objectContaining({ code: 'StoreFailed' }));
  await s.close();
  const again = Store.open({ path: p, worker: 0, workers: 1 });
  expect(again.shard(1 as ShardId).lastIndex()).toBe(2);
  await again.close();
});

test('the generation number at the largest u32 and past it (it wraps to 1): records written and read back at both', async () => {
  const p = path();
  const first = Store.open({ path: p, worker: 0, workers: 1 });
  first.create(1 as ShardId, [1, 2, 3] as NodeId[]);
  await first.close();
  // The opening's checkpoint takes the stored generation one further: 0xfffffffe -> 0xffffffff.
  const env = open({ path: p });
  await env.openDB<number, string>({ name: 'wal' }).put('generation', 0xfffffffe);
  await env.close();
  const s = Store.open({ path: p, worker: 0, workers: 1, checkpointMs: 1e9 });
  const ss = s.shard(1 as ShardId);
  s.logged(() => ss.append([entry(2, 2)]));
  expect(s.walItems().map((it) => it.entries?.[0]?.index)).toEqual([2]);
  s.commit(() => undefined);
  s.logged(() => ss.append([entry(3, 2)]));
  expect(s.walItems().map((it) => it.entries?.[0]?.index)).toEqual([3]);
  expect(ss.readStored().lastIndex).toBe(3);
  await s.close();
  const again = Store.open({ path: p, worker: 0, workers: 1 });
  expect(again.shard(1 as ShardId).lastIndex()).toBe(3);
  await again.close();
});

test('without a write-ahead log a logged turn is one durable LMDB commit', async () => {
  const p = path();
  const s = Store.open({ path: p, worker: 0, workers: 1, wal: false });
  const ss = s.create(1 as ShardId, [1, 2, 3] as NodeId[]);
  const commits = s.commits;
  s.logged(() => ss.append([entry(2, 2)]));
  expect(s.commits).toBe(commits + 1);
  expect(s.walTotals().records).toBe(0);
  expect(ss.hasPending()).toBe(false);
  expect(ss.readStored().lastIndex).toBe(2);
  await s.close();
});
