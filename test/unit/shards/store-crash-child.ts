/**
 * A process for the store's crash test: opens the store at <path> (replaying its write-ahead
 * log; the test created its shards), prints `ready`, then runs the turns of
 * store-crash-plan.ts from number <from> on, printing each turn's number once the store has
 * returned from it (a logged turn's record flushed, a checkpoint committed), until it is killed.
 *
 * Usage: store-crash-child.ts <path> <seed> <from>
 */
import { writeSync } from 'node:fs';
import { Store } from '../../../src/shards/store.js';
import type { ShardStore } from '../../../src/shards/store.js';
import type { LogIndex, ShardId, Term } from '../../../src/shards/raft/index.js';
import { encodeDataDump } from '../../../src/shards/data-dump.js';
import { SHARDS, applyEffect, entryOf, planTurn, snapshotPairs } from './store-crash-plan.js';
import type { View } from './store-crash-plan.js';

const [path, seedArg, fromArg] = process.argv.slice(2);
const seed = Number(seedArg);
const store = Store.open({ path: path!, worker: 0, workers: 1, checkpointMs: 1e9, checkpointBytes: 1e12 });
const shards = new Map<ShardId, ShardStore>(SHARDS.map((s) => [s, store.shard(s)]));
const say = (line: string): void => void writeSync(1, `${line}\n`);

function viewOf(ss: ShardStore): View {
  return { first: ss.firstIndex(), last: ss.lastIndex(), term: ss.hardState().term, applied: ss.applied() };
}

function run(t: number): void {
  const turn = planTurn(seed, t, new Map([...shards].map(([s, ss]) => [s, viewOf(ss)])));
  if (turn.kind === 'checkpoint') {
    store.commit(() => {
      if (turn.compact) shards.get(turn.compact.shard)!.compact(turn.compact.index as LogIndex);
      if (turn.snapshot) {
        const { shard, index, term, keys } = turn.snapshot;
        const pairs = snapshotPairs(index, keys).map((p) => ({ key: Buffer.from(p.key), value: Buffer.from(p.value) }));
        const ss = shards.get(shard)!;
        ss.installSnapshot({ metadata: { index: index as LogIndex, term: term as Term, confState: ss.confState() }, data: encodeDataDump(pairs) });
      }
    });
    return;
  }
  store.logged(() => {
    for (const op of turn.ops) {
      const ss = shards.get(op.shard)!;
      if (op.append) {
        const { lo, term, sizes } = op.append;
        ss.append(sizes.map((size, i) => entryOf(t, op.shard, lo + i, term, size)));
      }
      const hard = ss.hardState();
      ss.setHardState({
        term: (op.hard?.term ?? hard.term) as Term,
        vote: (op.hard?.vote ?? hard.vote) as typeof hard.vote,
        commit: Math.max(hard.commit, op.applyTo ?? 0) as LogIndex,
      });
      if (op.applyTo !== undefined) {
        for (let i = ss.applied() + 1; i <= op.applyTo; i++) {
          const { key, value } = applyEffect(ss.entries(i as LogIndex, (i + 1) as LogIndex, Infinity)[0]!.data);
          if (value === null) ss.txn().remove(Buffer.from(key));
          else ss.txn().put(Buffer.from(key), Buffer.from(value));
        }
        ss.setApplied(op.applyTo as LogIndex, ss.confState());
      }
    }
  });
}

say('ready');
for (let t = Number(fromArg); ; t++) {
  run(t);
  say(String(t));
}
