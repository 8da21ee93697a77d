/**
 * Proposals committed per second through the raft core alone: 3 replicas per group, in memory,
 * messages handed over synchronously. Measures the core's CPU cost, not I/O.
 *
 *   npm run bench:core -- [--seconds 2] [--runs 3] [--batch 64] [--value-size 128] [--groups 1,64]
 *
 * Each configuration runs `--runs` times; the median is reported with the spread.
 */
import { RawNode } from '../src/shards/raft/rawnode.js';
import { Prng } from '../src/shards/raft/prng.js';
import { MemoryStorage } from '../src/shards/raft/storage.js';
import type { LogIndex, Message } from '../src/shards/raft/types.js';
import { nodeId } from '../src/shards/raft/types.js';
import { parseArgs } from 'node:util';
import os from 'node:os';

interface Replica {
  rn: RawNode;
  storage: MemoryStorage;
  applied: number;
}

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '2' },
    runs: { type: 'string', default: '3' },
    batch: { type: 'string', default: '64' },
    'value-size': { type: 'string', default: '128' },
    groups: { type: 'string' },
  },
});
const seconds = Number(values.seconds);
const runs = Number(values.runs);
const batch = Number(values.batch);
const valueSize = Number(values['value-size']);
for (const [name, v] of [
  ['seconds', seconds],
  ['runs', runs],
  ['batch', batch],
  ['value-size', valueSize],
] as const) {
  if (!Number.isFinite(v) || v <= 0 || (name !== 'seconds' && !Number.isInteger(v))) {
    console.error(`--${name} must be a positive number`);
    process.exit(2);
  }
}

function makeGroup(prng: Prng): Replica[] {
  const ids = [1, 2, 3].map(nodeId);
  return ids.map((id) => {
    const storage = MemoryStorage.withMembers(ids);
    return { rn: new RawNode({ id, storage, prng: prng.fork(), electionTimeoutTicks: 10 }), storage, applied: 0 };
  });
}

/** One shell turn for a group: handle readies, deliver messages, until quiet. */
function pump(group: Replica[]): void {
  for (let round = 0; round < 100; round++) {
    const out: Message[] = [];
    let moved = false;
    for (const r of group) {
      if (!r.rn.hasReady()) continue;
      moved = true;
      const rd = r.rn.ready();
      if (rd.snapshot) r.storage.applySnapshot(rd.snapshot);
      r.storage.append(rd.entries);
      if (rd.hardState) r.storage.setHardState(rd.hardState);
      out.push(...rd.messages, ...rd.messagesAfterPersist);
      r.applied += rd.committedEntries.length;
      r.rn.advance();
    }
    for (const m of out) group[m.to - 1]!.rn.step(m);
    if (!moved && out.length === 0) return;
  }
}

function leaderOf(group: Replica[]): Replica {
  for (let i = 0; i < 200; i++) {
    const l = group.find((r) => r.rn.status().role === 'leader');
    if (l) return l;
    for (const r of group) r.rn.tick();
    pump(group);
  }
  throw new Error('no leader');
}

function run(groupCount: number): { proposalsPerSec: number; committed: number; seconds: number } {
  const prng = new Prng(42);
  const groups = Array.from({ length: groupCount }, () => makeGroup(prng));
  const leaders = groups.map(leaderOf);
  const payload = new Uint8Array(valueSize).fill(7);
  const start0 = leaders.map((l) => l.applied);
  const t0 = process.hrtime.bigint();
  const deadline = t0 + BigInt(Math.round(seconds * 1e9));
  let rounds = 0;
  while (process.hrtime.bigint() < deadline) {
    rounds++;
    for (let g = 0; g < groups.length; g++) {
      const l = leaders[g]!;
      for (let i = 0; i < batch; i++) l.rn.propose(payload);
      pump(groups[g]!);
      if (rounds % 50 === 0) {
        // Heartbeats and compaction keep the run realistic and the memory flat.
        for (const r of groups[g]!) r.rn.tick();
        for (const r of groups[g]!) {
          const st = r.rn.status();
          if (st.applied > 1000) {
            r.storage.createSnapshot(st.applied, r.rn.confState(), new Uint8Array(0));
            r.storage.compact((st.applied - 500) as LogIndex);
          }
        }
      }
    }
  }
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const committed = leaders.reduce((s, l, i) => s + l.applied - start0[i]!, 0);
  return { proposalsPerSec: committed / elapsed, committed, seconds: elapsed };
}

const groupsList = values.groups ? values.groups.split(',').map(Number) : [1, 64];
if (groupsList.some((g) => !Number.isInteger(g) || g <= 0)) {
  console.error('--groups must be a comma-separated list of positive integers');
  process.exit(2);
}
console.log(`raft core, in memory, 3 replicas per group, batch ${batch}, ${valueSize}-byte values, median of ${runs} runs of ${seconds}s`);
console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}, ${new Date().toISOString().slice(0, 10)}`);
console.log('groups  proposals/s (median)   min .. max');
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
for (const g of groupsList) {
  const rates = Array.from({ length: runs }, () => run(g).proposalsPerSec).sort((a, b) => a - b);
  const median = rates[Math.floor(rates.length / 2)]!;
  console.log(`${String(g).padStart(6)}  ${fmt(median).padStart(20)}   ${fmt(rates[0]!)} .. ${fmt(rates[rates.length - 1]!)}`);
}
