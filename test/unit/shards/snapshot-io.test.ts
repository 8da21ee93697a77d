/**
 * Snapshots as streams over real LMDB files: a reader sees one consistent view in pieces of whole
 * pairs, whatever is written meanwhile; a staged dump installs in one transaction, and a dump that
 * breaks off leaves the shard as it was.
 */
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { Store, StoreError, decodeDataDump } from '../../../src/shards/store.js';
import { checkDumpFile, readDumpFile } from '../../../src/shards/snapshot-io.js';
import { EntryType } from '../../../src/shards/raft/index.js';
import type { Entry, LogIndex, NodeId, ShardId, Term } from '../../../src/shards/raft/index.js';

const dirs: string[] = [];
const stores: Store[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function fresh(): { store: Store; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'iroh-raft-snapio-'));
  dirs.push(dir);
  const store = Store.open({ path: join(dir, 'lmdb'), worker: 0, workers: 1 });
  stores.push(store);
  return { store, dir };
}

const key = (i: number): Uint8Array => new TextEncoder().encode(`k${String(i).padStart(5, '0')}`);
const valueOf = (i: number, size: number): Uint8Array => new Uint8Array(size).fill(i & 0xff);

/** Writes keys [from, to) with values of `size` bytes and moves applied to `applied`. */
function write(store: Store, shard: ShardId, from: number, to: number, size: number, applied: number): void {
  const ss = store.shard(shard);
  store.commit(() => {
    const t = ss.txn();
    for (let i = from; i < to; i++) t.put(key(i), valueOf(i, size));
    const entries: Entry[] = [];
    for (let i = ss.lastIndex() + 1; i <= applied; i++)
      entries.push({ index: i as LogIndex, term: 1 as Term, type: EntryType.Normal, data: new Uint8Array(0) });
    ss.append(entries);
    ss.setApplied(applied as LogIndex, ss.confState());
  });
}

describe('SnapshotReader', () => {
  test('reads one view in pieces of whole pairs within the budget; writes after it opened are not in it', () => {
    const { store } = fresh();
    const ss = store.create(1 as ShardId, [1 as NodeId]);
    write(store, 1 as ShardId, 0, 300, 1000, 2);
    const reader = ss.openSnapshotReader();
    expect(reader.metadata.index).toBe(2);
    // Later writes: overwrite some, add more, move applied.
    write(store, 1 as ShardId, 100, 400, 77, 3);
    const pieces: Uint8Array[] = [];
    for (let p = reader.next(8 * 1024); p !== undefined; p = reader.next(8 * 1024)) pieces.push(p);
    reader.close();
    for (const p of pieces) expect(p.length).toBeLessThanOrEqual(8 * 1024);
    const pairs = pieces.flatMap((p) => [...decodeDataDump(p)]);
    expect(pairs).toHaveLength(300);
    pairs.forEach((pair, i) => {
      expect(Buffer.from(pair.key)).toEqual(Buffer.from(key(i)));
      expect(pair.value.length).toBe(1000);
    });
    expect(reader.bytes).toBe(pieces.reduce((n, p) => n + p.length, 0));
  });

  test('a pair larger than the budget comes alone; an empty shard has no piece', () => {
    const { store } = fresh();
    const ss = store.create(2 as ShardId, [1 as NodeId]);
    const r0 = ss.openSnapshotReader();
    expect(r0.next(1024)).toBeUndefined();
    r0.close();
    write(store, 2 as ShardId, 0, 3, 5000, 2);
    const r = ss.openSnapshotReader();
    const sizes: number[] = [];
    for (let p = r.next(1024); p !== undefined; p = r.next(1024)) sizes.push(p.length);
    r.close();
    expect(sizes).toEqual([5014, 5014, 5014]);
    expect(() => r.next(1024)).toThrow(StoreError);
  });
});

describe('staged dumps', () => {
  test('readDumpFile gives back every pair whatever the piece size; a truncated file is BadSnapshot', () => {
    const { store, dir } = fresh();
    const ss = store.create(3 as ShardId, [1 as NodeId]);
    write(store, 3 as ShardId, 0, 50, 3333, 2);
    const path = join(dir, 'a.dump');
    writeFileSync(path, new Uint8Array(0));
    const r = ss.openSnapshotReader();
    for (let p = r.next(10_000); p !== undefined; p = r.next(10_000)) appendFileSync(path, p);
    r.close();
    for (const pieceBytes of [1, 7, 4096, 1 << 20]) {
      const pairs = [...readDumpFile(path, pieceBytes)];
      expect(pairs).toHaveLength(50);
      expect(Buffer.from(pairs[49]!.value)).toEqual(Buffer.from(valueOf(49, 3333)));
    }
    expect(checkDumpFile(path)).toBe(50);
    appendFileSync(path, Uint8Array.of(5, 0, 0, 0, 1, 2));
    expect(() => checkDumpFile(path)).toThrow(expect.objectContaining({ code: 'BadSnapshot' }) as unknown);
  });

  test('a staged dump installs in one transaction; one that breaks off mid-install leaves the old state', () => {
    const { store, dir } = fresh();
    const src = store.create(4 as ShardId, [1 as NodeId]);
    write(store, 4 as ShardId, 0, 40, 2000, 9);
    const path = join(dir, 'b.dump');
    writeFileSync(path, new Uint8Array(0));
    const r = src.openSnapshotReader();
    for (let p = r.next(4096); p !== undefined; p = r.next(4096)) appendFileSync(path, p);
    r.close();
    const dst = store.create(5 as ShardId, [1 as NodeId]);
    write(store, 5 as ShardId, 1000, 1010, 10, 2);
    const snap = { metadata: { ...r.metadata, index: 9 as LogIndex }, data: new Uint8Array(0) };
    // A source that fails half way: the commit aborts, nothing of it stays.
    function* failing(): Generator<{ key: Uint8Array; value: Uint8Array }> {
      let n = 0;
      for (const p of readDumpFile(path)) {
        if (n++ === 20) throw new Error('disk gone');
        yield p;
      }
    }
    expect(() => store.commit(() => dst.installSnapshot(snap, failing()))).toThrow('disk gone');
    const old = [...dst.reader().range(new Uint8Array([0]), new Uint8Array([0xfe]), 1000)];
    expect(old.map((p) => Buffer.from(p.key).toString())).toEqual(Array.from({ length: 10 }, (_, i) => `k0${1000 + i}`));
    expect(dst.readStored().applied).toBe(2);
    // The whole file: the new state, with the snapshot's applied index, in one commit.
    store.commit(() => dst.installSnapshot(snap, readDumpFile(path)));
    const now = [...dst.reader().range(new Uint8Array([0]), new Uint8Array([0xfe]), 1000)];
    expect(now).toHaveLength(40);
    expect(dst.readStored().applied).toBe(9);
    expect(dst.compactedIndex()).toBe(9);
  });
});
