/**
 * Store.drop on real LMDB files: a dropped shard's log, meta and data are gone (also after a
 * reopen), a shard created again under its id starts empty, its neighbours keep their data, and
 * the freed database names make room for new shards beyond what maxDbs would allow otherwise.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { Store } from '../../../src/shards/store.js';
import { EntryType } from '../../../src/shards/raft/index.js';
import type { LogIndex, NodeId, ShardId, Term } from '../../../src/shards/raft/index.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function path(): string {
  const dir = mkdtempSync(join(tmpdir(), 'iroh-raft-drop-'));
  dirs.push(dir);
  return join(dir, 'lmdb');
}

const voters = [1, 2, 3] as NodeId[];
const enc = new TextEncoder();

/** Appends three entries, applies them with a data key each, and votes, as a host's turn would. */
function fill(store: Store, id: ShardId): void {
  const ss = store.shard(id);
  store.commit(() => {
    const entries = [2, 3, 4].map((i) => ({ index: i as LogIndex, term: 1 as Term, type: EntryType.Normal, data: enc.encode(`e${i}`) }));
    ss.append(entries);
    ss.setHardState({ term: 3 as Term, vote: 2 as NodeId, commit: 4 as LogIndex });
    for (const e of entries) ss.txn().put(enc.encode(`k${e.index}`), e.data);
    ss.setApplied(4 as LogIndex, { voters: [1, 2], learners: [3] } as never);
  });
}

test('a dropped shard leaves nothing behind; created again under its id it starts empty; its neighbour keeps its data', async () => {
  const p = path();
  const s = Store.open({ path: p, worker: 0, workers: 1 });
  s.create(1 as ShardId, voters);
  s.create(2 as ShardId, voters);
  fill(s, 1 as ShardId);
  fill(s, 2 as ShardId);
  expect(s.drop(1 as ShardId)).toBe(true);
  expect(s.shardIds()).toEqual([2]);
  expect(s.has(1 as ShardId)).toBe(false);
  expect(() => s.shard(1 as ShardId)).toThrow(/not in/);
  expect(s.drop(1 as ShardId)).toBe(false);
  expect(s.drop(9 as ShardId)).toBe(false);

  // A replica joining later: empty voters, nothing from the dropped incarnation.
  const again = s.create(1 as ShardId, []);
  expect(again.applied()).toBe(0);
  expect(again.lastIndex()).toBe(0);
  expect(again.hardState()).toEqual({ term: 0, vote: 0, commit: 0 });
  expect(again.confState()).toEqual({ voters: [], learners: [] });
  expect(again.reader().get(enc.encode('k3'))).toBeUndefined();
  const neighbour = s.shard(2 as ShardId);
  expect(neighbour.applied()).toBe(4);
  expect(Buffer.from(neighbour.reader().get(enc.encode('k3'))!).toString()).toBe('e3');
  await s.close();

  const reopened = Store.open({ path: p, worker: 0, workers: 1 });
  expect(reopened.shardIds().sort()).toEqual([1, 2]);
  expect(reopened.shard(1 as ShardId).applied()).toBe(0);
  expect(reopened.shard(1 as ShardId).lastIndex()).toBe(0);
  expect(reopened.drop(1 as ShardId)).toBe(true);
  await reopened.close();
  const last = Store.open({ path: p, worker: 0, workers: 1 });
  expect(last.shardIds()).toEqual([2]);
  expect(
    last
      .shard(2 as ShardId)
      .entries(2 as LogIndex, 5 as LogIndex, Infinity)
      .map((e) => e.index),
  ).toEqual([2, 3, 4]);
  await last.close();
});

test('dropping frees the database names: shards created and dropped far beyond maxDbs keep working', async () => {
  // shardsMax 4 gives the environment 4 * 3 + 4 named databases; 40 rounds of create and drop
  // would run out after a few if a drop kept its names.
  const s = Store.open({ path: path(), worker: 0, workers: 1, shardsMax: 4 });
  for (let round = 0; round < 40; round++) {
    const id = (100 + round) as ShardId;
    s.create(id, voters);
    fill(s, id);
    expect(s.drop(id)).toBe(true);
  }
  expect(s.shardIds()).toEqual([]);
  await s.close();
});

test('drop refuses a closed store with StoreClosed', async () => {
  const s = Store.open({ path: path(), worker: 0, workers: 1 });
  s.create(1 as ShardId, voters);
  await s.close();
  expect(() => s.drop(1 as ShardId)).toThrow(expect.objectContaining({ code: 'StoreClosed' }));
});
