/**
 * Store.batch: many shards created in one durable transaction (a first start with thousands of
 * shards), all or nothing, on real LMDB files.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { Store } from '../../../src/shards/store.js';
import type { NodeId, ShardId } from '../../../src/shards/raft/index.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function path(): string {
  const dir = mkdtempSync(join(tmpdir(), 'iroh-raft-batch-'));
  dirs.push(dir);
  return join(dir, 'lmdb');
}

const voters = [1, 2, 3] as NodeId[];

test('shards created in one batch are all there after a reopen, each founded at index 1 with its members', async () => {
  const p = path();
  const s = Store.open({ path: p, worker: 0, workers: 1, shardsMax: 3000 });
  const ids = s.batch(() => Array.from({ length: 2000 }, (_, i) => s.create(i as ShardId, voters).id));
  expect(ids.length).toBe(2000);
  await s.close();
  const again = Store.open({ path: p, worker: 0, workers: 1, shardsMax: 3000 });
  expect(again.shardIds().length).toBe(2000);
  for (const id of [0, 999, 1999] as ShardId[]) {
    const ss = again.shard(id);
    expect(ss.applied()).toBe(1);
    expect(ss.confState()).toEqual({ voters, learners: [] });
  }
  await again.close();
});

test('a batch that throws leaves none of its shards', async () => {
  const p = path();
  const s = Store.open({ path: p, worker: 0, workers: 1 });
  s.create(7 as ShardId, voters);
  expect(() =>
    s.batch(() => {
      for (let i = 10; i < 20; i++) s.create(i as ShardId, voters);
      throw new Error('stop');
    }),
  ).toThrow('stop');
  expect(s.shardIds()).toEqual([7]);
  expect(() => s.shard(12 as ShardId)).toThrow(/not in/);
  await s.close();
  const again = Store.open({ path: p, worker: 0, workers: 1 });
  expect(again.shardIds()).toEqual([7]);
  await again.close();
});
