/**
 * A process for the write-ahead log tests: opens a store, writes logged turns (and one
 * checkpoint between them) as a shard host would, prints where each record ends in the log's
 * file, then waits to be killed with SIGKILL.
 *
 * Usage: wal-child.ts <path> [large]
 */
import { Store } from '../../../src/shards/store.js';
import { EntryType } from '../../../src/shards/raft/index.js';
import type { LogIndex, NodeId, ShardId, Term } from '../../../src/shards/raft/index.js';

const enc = new TextEncoder();
const store = Store.open({ path: process.argv[2]!, worker: 0, workers: 1, checkpointMs: 1e9 });
const ss = store.has(1 as ShardId) ? store.shard(1 as ShardId) : store.create(1 as ShardId, [1, 2, 3] as NodeId[]);
const entry = (i: number, term: number) => ({ index: i as LogIndex, term: term as Term, type: EntryType.Normal, data: enc.encode(`e${i}t${term}`) });

/** One turn: entries [lo, hi) of `term`, the vote, and applying up to `apply` (a key per entry). */
function turn(lo: number, hi: number, term: number, apply: number): void {
  store.logged(() => {
    const es = [];
    for (let i = lo; i < hi; i++) es.push(entry(i, term));
    ss.append(es);
    ss.setHardState({ term: term as Term, vote: 2 as NodeId, commit: apply as LogIndex });
    for (let i = ss.applied() + 1; i <= apply; i++) ss.txn().put(enc.encode(`k${i}`), enc.encode(`v${i}`));
    if (apply > ss.applied()) ss.setApplied(apply as LogIndex, ss.confState());
  });
}

if (process.argv[3] === 'large') {
  // One turn of six 1 MiB entries: one record larger than a step of the file's growth (4 MiB).
  const big = (i: number) => ({ index: i as LogIndex, term: 2 as Term, type: EntryType.Normal, data: new Uint8Array(1024 * 1024).fill(i) });
  store.logged(() => ss.append([2, 3, 4, 5, 6, 7].map(big)));
  store.logged(() => ss.setHardState({ term: 2 as Term, vote: 3 as NodeId, commit: 7 as LogIndex }));
  process.stdout.write(`${JSON.stringify({ ends: [store.walTotals().bytes] })}\n`);
  setInterval(() => undefined, 1000);
} else {
  runTurns();
}

function runTurns(): void {
  turn(2, 12, 2, 5); // entries 2..11 of term 2, applied 5
  store.commit(() => undefined); // a checkpoint: LMDB holds all of that
  const base = store.walTotals().bytes;
  const ends: number[] = [];
  turn(12, 20, 2, 6); // 12..19, applied 6
  ends.push(store.walTotals().bytes - base);
  turn(8, 14, 3, 7); // a new leader's entries from 8 on cut into the checkpointed part: 8..13 of term 3
  ends.push(store.walTotals().bytes - base);
  turn(14, 16, 4, 9); // 14..15 of term 4, applied 9
  ends.push(store.walTotals().bytes - base);
  process.stdout.write(`${JSON.stringify({ ends })}\n`);
  setInterval(() => undefined, 1000);
}
