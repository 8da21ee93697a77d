/**
 * A quick randomized run on the synchronous harness (persist is immediate here; the simulator in
 * test/sim covers asynchronous persistence, crashes that lose writes, and linearizability). It
 * checks election safety and that committed entries never change, under partitions, drops,
 * restarts, compaction, membership changes and transfers, for many seeds.
 */
import { describe, expect, test } from 'vitest';
import { Prng } from '../../../../src/shards/raft/prng.js';
import { MemoryStorage } from '../../../../src/shards/raft/storage.js';
import { ConfChangeType, nodeId } from '../../../../src/shards/raft/types.js';
import type { LogIndex } from '../../../../src/shards/raft/types.js';
import { Cluster } from './harness.js';

function runOne(seed: number): void {
  const p = new Prng(seed);
  const ids = [1, 2, 3, 4, 5];
  // Without pre-vote and check-quorum a removed replica may disrupt forever, so liveness is
  // only required when at least one protection is on.
  const protect = p.chance(0.5);
  const c = new Cluster(
    [1, 2, 3],
    {
      preVote: protect || p.chance(0.5),
      checkQuorum: protect || p.chance(0.5),
      appendBytesMax: p.pick([30, 100, 1 << 20]),
      inflightMessagesMax: p.pick([1, 2, 256]),
    },
    seed,
  );
  c.add(nodeId(4), new MemoryStorage());
  c.add(nodeId(5), new MemoryStorage());
  const committedTerm = new Map<number, number>();
  const leaderOfTerm = new Map<number, number>();
  let counter = 0;
  for (let step = 0; step < 400; step++) {
    c.heal();
    if (p.chance(0.3)) c.isolate(p.pick(ids));
    if (p.chance(0.1)) c.drop(() => p.chance(0.3));
    for (const n of c.nodes.values()) if (p.chance(0.9)) n.rn.tick();
    const r = p.next();
    const leaders = [...c.nodes.values()].filter((n) => n.rn.status().role === 'leader');
    if (r < 0.5) {
      for (const n of leaders) {
        try {
          n.rn.propose(new TextEncoder().encode(`v${counter++}`));
        } catch {
          // refused (transfer, cap): fine here
        }
      }
    } else if (r < 0.55) {
      c.restart(p.pick(ids));
    } else if (r < 0.6) {
      for (const n of c.nodes.values()) {
        const st = n.rn.status();
        if (st.applied > 3 && !n.rn.hasReady()) {
          n.storage.createSnapshot(st.applied, n.rn.confState(), new Uint8Array(0));
          n.storage.compact(st.applied);
        }
      }
    } else if (r < 0.63) {
      for (const n of leaders) {
        const cs = n.rn.confState();
        const outside = ids.filter((i) => !cs.voters.includes(nodeId(i)) && !cs.learners.includes(nodeId(i)));
        try {
          if (cs.learners.length > 0) n.rn.proposeConfChange({ type: ConfChangeType.AddVoter, node: cs.learners[0]! });
          else if (outside.length > 0 && p.chance(0.5)) n.rn.proposeConfChange({ type: ConfChangeType.AddLearner, node: nodeId(p.pick(outside)) });
          else if (cs.voters.length > 3) n.rn.proposeConfChange({ type: ConfChangeType.RemoveNode, node: p.pick(cs.voters) });
        } catch {
          // one change at a time: refusals are expected
        }
      }
    } else if (r < 0.65) {
      for (const n of leaders) {
        const others = n.rn.confState().voters.filter((x) => x !== n.id);
        if (others.length > 0) n.rn.transferLeader(p.pick(others));
      }
    }
    c.deliver();
    for (const n of c.nodes.values()) {
      const st = n.rn.status();
      if (st.role === 'leader') {
        const prev = leaderOfTerm.get(st.term);
        if (prev !== undefined && prev !== n.id) throw new Error(`seed ${seed}: two leaders in term ${st.term}: ${prev} and ${n.id}`);
        leaderOfTerm.set(st.term, n.id);
      }
      for (let i = Math.max(1, st.firstIndex); i <= st.commit; i++) {
        const t = n.storage.term(i as LogIndex);
        const prev = committedTerm.get(i);
        if (prev !== undefined && prev !== t) throw new Error(`seed ${seed} step ${step}: committed entry ${i} changed term ${prev} -> ${t} on node ${n.id}`);
        committedTerm.set(i, t);
      }
    }
  }
  c.heal();
  let leader = 0;
  for (let i = 0; i < 300 && leader === 0; i++) {
    c.tickAll(1);
    leader = c.leaders()[0] ?? 0;
  }
  if (protect) expect(leader, `seed ${seed}: no leader after healing`).not.toBe(0);
}

describe('randomized cluster on the synchronous harness', () => {
  test('seeds 1..150 keep election safety and committed entries', () => {
    for (let s = 1; s <= 150; s++) runOne(s);
  });
});
