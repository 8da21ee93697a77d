/**
 * Randomized runs where persisting a Ready takes time: messages and ticks keep arriving while a
 * write is in flight, and a restart loses whatever was not durable yet. Checks election safety,
 * that committed entries never change, and that acknowledgements never run ahead of durability.
 */
import { describe, expect, test } from 'vitest';
import { RawNode } from '../../../../src/shards/raft/rawnode.js';
import { Prng } from '../../../../src/shards/raft/prng.js';
import { MemoryStorage } from '../../../../src/shards/raft/storage.js';
import type { LogIndex, Message, NodeId, Ready } from '../../../../src/shards/raft/types.js';
import { MessageType, nodeId } from '../../../../src/shards/raft/types.js';

interface Replica {
  id: NodeId;
  rn: RawNode;
  live: MemoryStorage;
  durable: MemoryStorage;
  pending: Ready | undefined;
}

function write(s: MemoryStorage, rd: Ready): void {
  if (rd.snapshot) s.applySnapshot(rd.snapshot);
  s.append(rd.entries);
  if (rd.hardState) s.setHardState(rd.hardState);
}

function runOne(seed: number): void {
  const p = new Prng(seed);
  const ids = [1, 2, 3, 4, 5].map(nodeId);
  const voters = ids.slice(0, p.pick([1, 3, 5]));
  const replicas = new Map<NodeId, Replica>();
  const start = (id: NodeId, durable: MemoryStorage): void => {
    const live = durable.clone();
    replicas.set(id, {
      id,
      live,
      durable,
      pending: undefined,
      rn: new RawNode({ id, storage: live, prng: p.fork(), applied: live.snapshot().metadata.index, appendBytesMax: p.pick([40, 1 << 20]) }),
    });
  };
  for (const id of voters) start(id, MemoryStorage.withMembers(voters));
  let net: Message[] = [];
  const committed = new Map<number, number>();
  const leaders = new Map<number, NodeId>();
  // An acknowledgement made in term t is backed by durable state, or overtaken by a durable
  // later term (then it is equivalent to an ack that was true, durably, just before the change).
  const checkAck = (r: Replica, m: Message): void => {
    const hs = r.durable.hardState();
    if (hs.term > m.term) return;
    if (m.type === MessageType.AppResp && !m.reject) {
      expect(r.durable.lastIndex(), `seed ${seed}: node ${r.id} acked ${m.index} with durable last ${r.durable.lastIndex()}`).toBeGreaterThanOrEqual(m.index);
    }
    if (m.type === MessageType.VoteResp && !m.reject) {
      expect(hs.vote, `seed ${seed}: vote granted before it was durable`).toBe(m.to);
      expect(hs.term).toBe(m.term);
    }
  };
  let counter = 0;
  for (let step = 0; step < 3000; step++) {
    const r = p.next();
    const alive = [...replicas.values()];
    if (r < 0.2) {
      for (const x of alive) x.rn.tick();
    } else if (r < 0.5 && net.length > 0) {
      const i = p.int(0, net.length);
      const m = net[i]!;
      net.splice(i, 1);
      if (!p.chance(0.05)) replicas.get(m.to)?.rn.step(m);
    } else if (r < 0.6) {
      for (const x of alive) {
        if (x.rn.status().role === 'leader') {
          try {
            x.rn.propose(new TextEncoder().encode(`v${counter++}`));
          } catch {
            // refused: fine
          }
        }
      }
    } else if (r < 0.85) {
      const x = p.pick(alive);
      if (!x.pending && x.rn.hasReady()) {
        const rd = x.rn.ready();
        write(x.live, rd);
        net.push(...rd.messages);
        x.pending = rd;
      } else if (x.pending) {
        const rd = x.pending;
        x.pending = undefined;
        write(x.durable, rd);
        for (const m of rd.messagesAfterPersist) checkAck(x, m);
        net.push(...rd.messagesAfterPersist);
        x.rn.advance();
      }
    } else if (r < 0.87) {
      const x = p.pick(alive);
      // Crash: the in-flight write is lost, and so are the messages still queued for it.
      net = net.filter((m) => m.to !== x.id);
      start(x.id, x.durable.clone());
    } else if (r < 0.88) {
      const x = p.pick(alive);
      const st = x.rn.status();
      if (!x.pending && st.applied > 2) {
        for (const s of [x.live, x.durable]) {
          s.createSnapshot(st.applied, x.rn.confState(), new Uint8Array(0));
          s.compact(st.applied);
        }
      }
    }
    for (const x of replicas.values()) {
      const st = x.rn.status();
      if (st.role === 'leader') {
        const prev = leaders.get(st.term);
        if (prev !== undefined && prev !== x.id) throw new Error(`seed ${seed}: two leaders in term ${st.term}`);
        leaders.set(st.term, x.id);
      }
      // Durable commit and durable entries are written together, so they agree with each other
      // (the in-memory log may be ahead of both).
      const d = x.durable;
      for (let i = Math.max(2, d.firstIndex()); i <= d.hardState().commit; i++) {
        const t = d.term(i as LogIndex);
        const prev = committed.get(i);
        if (prev !== undefined && prev !== t) throw new Error(`seed ${seed} step ${step}: committed ${i} changed term ${prev} -> ${t} on ${x.id}`);
        committed.set(i, t);
      }
    }
  }
}

describe('randomized runs with slow persistence and crashes that lose unsynced writes', () => {
  test('seeds 1..150', () => {
    for (let s = 1; s <= 150; s++) runOne(s);
  });
});
