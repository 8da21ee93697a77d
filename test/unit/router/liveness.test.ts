/**
 * Liveness bookkeeping on explicit time, no timers or network: which peer and which of its
 * workers can lead which shard; which quiet replicas here get woken when a peer or one of its
 * workers goes or comes back (only those that need it); bad payloads ignored; a flapping peer
 * costing bounded work.
 */
import { describe, expect, test } from 'vitest';
import { encodeLiveness } from '../../../src/wire/index.js';
import type { NodeId, ShardId } from '../../../src/shards/raft/index.js';
import { Liveness } from '../../../src/router/liveness.js';
import type { LivenessOptions, WakeRequest } from '../../../src/router/liveness.js';
import { localShards } from '../../../src/router/placement.js';

const TIMEOUT = 1000;
const self = 1 as NodeId;
const n = (id: number): NodeId => id as NodeId;
const alive = (...running: boolean[]): Uint8Array => encodeLiveness({ running });

/** The shards of `lead` whose local replica reports `peer` as its leader (the router asks its pool). */
const ledByOf =
  (lead: ReadonlyMap<number, number>) =>
  (peer: NodeId): ShardId[] =>
    [...lead].filter(([, l]) => l === peer).map(([s]) => s as ShardId);

/**
 * Three members, every shard on all three; `lead` says who leads each shard as the local
 * replicas last reported.
 */
function three(lead: Map<number, number>, over: Partial<LivenessOptions> = {}): Liveness {
  const shards = [...lead.keys()].map((s) => ({ shard: s as ShardId, voters: [n(1), n(2), n(3)] }));
  return new Liveness({
    self,
    peers: [n(1), n(2), n(3)],
    local: shards,
    localLead: (s) => lead.get(s),
    ledBy: ledByOf(lead),
    timeoutMs: TIMEOUT,
    wakeGapMs: TIMEOUT,
    now: 0,
    ...over,
  });
}

/** Keeps every peer in `peers` heard from `from` to `to` (every 100 ms), checking as the router does. */
function heartbeats(l: Liveness, peers: Map<number, Uint8Array>, from: number, to: number): WakeRequest[] {
  const out: WakeRequest[] = [];
  for (let t = from; t <= to; t += 100) {
    for (const [id, payload] of peers) l.onRecord(n(id), payload, t);
    l.check(t);
    out.push(...l.due(t));
  }
  return out;
}

describe('liveness: the load peers report', () => {
  test('the last load a peer reported is kept with its age, also while the peer is down; records without one keep it', () => {
    const l = three(new Map([[0, 1]]));
    const load = { requestsPerSec: 120, p99Micros: 4500, httpUrl: 'http://127.0.0.1:7071' };
    expect(l.onRecord(n(2), encodeLiveness({ running: [true], load }), 100)).toBe(true);
    l.onRecord(n(2), alive(true), 300);
    expect(l.view(400).find((p) => p.node === 2)).toEqual({ node: 2, up: true, workers: 1, workersDown: [], heardMsAgo: 100, load, loadMsAgo: 300 });
    expect(l.view(400).find((p) => p.node === 3)).toEqual({ node: 3, up: true, workers: 0, workersDown: [], heardMsAgo: 400 });
    for (const t of [1000, 1500, 2000]) l.check(t);
    expect(l.view(2000).find((p) => p.node === 2)).toMatchObject({ up: false, load, heardMsAgo: 1700 });
    // A payload that does not decode changes nothing it said before.
    expect(l.onRecord(n(2), new Uint8Array([1, 0, 1, 1, 0]), 2100)).toBe(false);
    expect(l.view(2100).find((p) => p.node === 2)).toMatchObject({ up: false, load, loadMsAgo: 2000 });
  });
});

describe('liveness: a worker of a peer stops', () => {
  test('its record wakes exactly the quiet followers here led by that peer on that worker; its other worker keeps its shards', () => {
    // Shards 0-7; node 2 runs 2 workers (shard s on worker s % 2) and leads 0-3; node 3 leads 4, 5; this node 6, 7.
    const lead = new Map([0, 1, 2, 3, 4, 5, 6, 7].map((s) => [s, s < 4 ? 2 : s < 6 ? 3 : 1]));
    const l = three(lead);
    expect(
      heartbeats(
        l,
        new Map([
          [2, alive(true, true)],
          [3, alive(true)],
        ]),
        0,
        500,
      ),
    ).toEqual([]);
    expect(l.reachable(n(2), 1 as ShardId)).toBe(true);

    // Worker 1 of node 2 stops: shards 1 and 3 (odd, led by node 2) lose their leader.
    const wakes = heartbeats(
      l,
      new Map([
        [2, alive(true, false)],
        [3, alive(true)],
      ]),
      600,
      600,
    );
    expect(wakes).toEqual([{ leader: 2, shards: [1, 3] }]);
    expect(l.counters.workersDown).toBe(1);
    // Routing avoids node 2 for the shards of its dead worker only.
    expect([0, 1, 2, 3].map((s) => l.reachable(n(2), s as ShardId))).toEqual([true, false, true, false]);
    expect(l.view(600).find((p) => p.node === 2)).toEqual({ node: 2, up: true, workers: 2, workersDown: [1], heardMsAgo: 0 });
    // Node 2 stays up (its other worker's shards still lead); nothing more is woken while it stays so.
    expect(
      heartbeats(
        l,
        new Map([
          [2, alive(true, false)],
          [3, alive(true)],
        ]),
        700,
        5000,
      ),
    ).toEqual([]);
    expect(l.peersUp()).toEqual([2, 3]);
  });

  test('the worker coming back wakes the quiet leaders here of the shards it hosts, once', () => {
    // This node leads shards 0-3; node 2 has 2 workers.
    const lead = new Map([0, 1, 2, 3].map((s) => [s, 1]));
    const l = three(lead);
    heartbeats(
      l,
      new Map([
        [2, alive(true, false)],
        [3, alive(true)],
      ]),
      0,
      0,
    );
    expect(l.due(0)).toEqual([]); // no follower here is led by node 2
    const wakes = heartbeats(
      l,
      new Map([
        [2, alive(true, true)],
        [3, alive(true)],
      ]),
      2000,
      4000,
    );
    expect(wakes).toEqual([{ leader: 1, shards: [1, 3] }]);
    expect(l.counters.workersUp).toBe(1);
  });

  test('a record of the previous layout (empty) counts as every worker running', () => {
    const l = three(new Map([[0, 2]]));
    expect(
      heartbeats(
        l,
        new Map([
          [2, new Uint8Array(0)],
          [3, new Uint8Array(0)],
        ]),
        0,
        3000,
      ),
    ).toEqual([]);
    expect(l.reachable(n(2), 0 as ShardId)).toBe(true);
    expect(l.counters.bad).toBe(0);
  });
});

describe('liveness: a silent peer', () => {
  test('is declared gone only after the timeout; then the quiet followers it leads here are woken, on every worker', () => {
    const lead = new Map([0, 1, 2, 3, 4].map((s) => [s, s < 3 ? 2 : 3]));
    const l = three(lead);
    heartbeats(
      l,
      new Map([
        [2, alive(true, true)],
        [3, alive(true)],
      ]),
      0,
      1000,
    );
    // Node 2 goes silent after t = 1000; node 3 keeps talking.
    expect(heartbeats(l, new Map([[3, alive(true)]]), 1100, 2000)).toEqual([]);
    expect(l.peersUp()).toEqual([2, 3]);
    const wakes = heartbeats(l, new Map([[3, alive(true)]]), 2100, 2100);
    expect(wakes).toEqual([{ leader: 2, shards: [0, 1, 2] }]);
    expect(l.peersUp()).toEqual([3]);
    expect(l.reachable(n(2), 0 as ShardId)).toBe(false);
    expect(l.counters.peersDown).toBe(1);
  });

  test('a leaving peer that dies wakes the quiet followers it still leads here, though the placement already moved those shards off it', () => {
    // Shards 0-3 on nodes 1-3; node 2 leads 0 and 1. Node 2 is leaving: the targets move every
    // replica off it, but it still leads (and is a voter of) its groups until a leader removes it,
    // which needs a new leader first. Shard 3 is hosted here but moved off this node as well.
    const lead = new Map([0, 1, 2, 3].map((s) => [s, s < 2 || s === 3 ? 2 : 3]));
    const l = three(lead);
    l.setLayout(
      [n(1), n(2), n(3)],
      [0, 1, 2].map((s) => ({ shard: s as ShardId, voters: [n(1), n(3)] })),
      0,
    );
    expect(heartbeats(l, new Map([[3, alive(true)]]), 0, 1000)).toEqual([]);
    const wakes = heartbeats(l, new Map([[3, alive(true)]]), 1100, 1100);
    expect(l.peersUp()).toEqual([3]);
    expect(wakes).toEqual([{ leader: 2, shards: [0, 1, 3] }]);
    expect(l.counters.wakeShards).toBe(3);
  });

  test('a peer no longer a member wakes the quiet followers it leads here at the next round, though it was never found silent', () => {
    const lead = new Map([0, 1, 2].map((s) => [s, s === 2 ? 3 : 2]));
    const l = three(lead);
    expect(heartbeats(l, new Map([[2, alive(true)]]), 0, 300)).toEqual([]);
    // Removed from the members while still heard: its traffic is refused from now on.
    l.setLayout(
      [n(1), n(3)],
      [0, 1, 2].map((s) => ({ shard: s as ShardId, voters: [n(1), n(3)] })),
      400,
    );
    expect(l.due(400)).toEqual([{ leader: 2, shards: [0, 1] }]);
    expect(l.due(500)).toEqual([]);
    // Forgotten and admitted again before a round: a member like any other, nothing owed.
    l.setLayout([n(1), n(3)], [], 600);
    l.setLayout([n(1), n(2), n(3)], [], 600);
    expect(l.due(600)).toEqual([]);
    expect(l.counters.wakeShards).toBe(2);
  });

  test('a peer counts as up from the start or its admission, but as heard from only once it said something (a bad payload is no word)', () => {
    const l = three(new Map([[0, 2]]));
    expect([l.reachable(n(2), 0 as ShardId), l.heardFrom(n(2))]).toEqual([true, false]);
    l.onRecord(n(2), alive(true), 100);
    expect(l.heardFrom(n(2))).toBe(true);
    // A member admitted later whose node never shows up.
    const local = [{ shard: 0 as ShardId, voters: [n(1), n(2), n(3)] }];
    l.setLayout([n(1), n(2), n(3), n(4)], local, 200);
    expect([l.reachable(n(4), 0 as ShardId), l.heardFrom(n(4))]).toEqual([true, false]);
    expect(l.onRecord(n(4), new Uint8Array([1]), 300)).toBe(false);
    expect(l.heardFrom(n(4))).toBe(false);
    for (let t = 300; t <= 1300; t += 100) l.check(t);
    expect(l.peersUp()).not.toContain(4);
    // Any traffic is a word; silence later makes it down, not unheard.
    l.onTraffic(n(4), 1400);
    expect([l.reachable(n(4), 0 as ShardId), l.heardFrom(n(4))]).toEqual([true, true]);
    for (let t = 1500; t <= 2500; t += 100) l.check(t);
    expect([l.reachable(n(4), 0 as ShardId), l.heardFrom(n(4))]).toEqual([false, true]);
    // Forgotten once no longer a member.
    l.setLayout([n(1), n(2), n(3)], local, 2600);
    expect(l.heardFrom(n(4))).toBe(false);
  });

  test('malformed payloads are counted and ignored: they refresh nothing, and never throw', () => {
    const l = three(new Map([[0, 2]]));
    const garbage = [new Uint8Array([1]), alive(true, true).subarray(0, 2), new Uint8Array([0, 0, 0]), new Uint8Array([2, 0, 0xff]), new Uint8Array([9, 0, 1])];
    let t = 0;
    for (; t <= 1500; t += 100) {
      for (const g of garbage) expect(l.onRecord(n(2), g, t)).toBe(false);
      l.onRecord(n(3), alive(true), t);
      l.check(t);
    }
    expect(l.counters.bad).toBe(garbage.length * 16);
    expect(l.peersUp()).toEqual([3]);
    expect(l.due(t)).toEqual([{ leader: 2, shards: [0] }]);
    // A non-member's record is ignored too.
    expect(l.onRecord(n(9), alive(true), t)).toBe(false);
  });

  test("a stall of this node's own event loop declares nobody gone; the next check does, even after another stall", () => {
    const l = three(new Map([[0, 2]]));
    heartbeats(
      l,
      new Map([
        [2, alive(true)],
        [3, alive(true)],
      ]),
      0,
      1000,
    );
    // The timer fires 3 s late: records that arrived meanwhile are still queued behind it.
    l.check(4000);
    expect(l.peersUp()).toEqual([2, 3]);
    expect(l.counters.stalls).toBe(1);
    l.onRecord(n(3), alive(true), 4010);
    l.check(4100);
    expect(l.peersUp()).toEqual([3]);
    // Two stalls in a row: the second check declares (a loop that always lags still detects).
    l.onRecord(n(2), alive(true), 4200);
    l.check(6000);
    l.check(8000);
    expect(l.counters.stalls).toBe(2);
    expect(l.peersUp()).toEqual([]);
  });
});

describe('liveness: a returning peer, and a flapping one', () => {
  // Five members, 40 shards of 3 replicas: each peer shares only some shards with this node.
  const members = [1, 2, 3, 4, 5].map(n);
  const local = localShards(self, members, 40, 3);
  const shared = (peer: number): number[] => local.filter((s) => s.voters.includes(n(peer))).map((s) => s.shard);
  // This node leads every shard it hosts, so every shard shared with a returning peer may need a wake.
  const lead = new Map(local.map((s) => [s.shard as number, 1]));
  const make = (): Liveness =>
    new Liveness({ self, peers: members, local, localLead: (s) => lead.get(s), ledBy: ledByOf(lead), timeoutMs: TIMEOUT, wakeGapMs: TIMEOUT, now: 0 });
  const everyone = (except: number): Map<number, Uint8Array> => new Map([2, 3, 4, 5].filter((p) => p !== except).map((p) => [p, alive(true)]));

  test('a peer that comes back wakes only the shards led here that it replicates, not every quiet shard', () => {
    const l = make();
    expect(shared(2).length).toBeGreaterThan(0);
    expect(shared(2).length).toBeLessThan(local.length);
    heartbeats(l, everyone(2), 0, 2500); // node 2 silent: gone at t = 1100
    expect(l.peersUp()).not.toContain(2);
    const wakes = heartbeats(l, everyone(0), 2600, 2600);
    expect(wakes).toEqual([{ leader: 1, shards: shared(2) }]);
    expect(l.counters.wakeShards).toBe(shared(2).length);
  });

  test.each([1, 5])('a peer flapping 100 times costs at most one wake round per gap (%i timeouts), each naming at most the shards it shares', (gaps) => {
    const l = new Liveness({
      self,
      peers: members,
      local,
      localLead: (s) => lead.get(s),
      ledBy: ledByOf(lead),
      timeoutMs: TIMEOUT,
      wakeGapMs: gaps * TIMEOUT,
      now: 0,
    });
    let t = 0;
    let named = 0;
    for (let flap = 0; flap < 100; flap++) {
      // Silent for just over a timeout (gone), then heard again (back): the fastest a node flaps.
      for (const stop = t + TIMEOUT + 200; t < stop; t += 100) {
        for (const [id, p] of everyone(2)) l.onRecord(n(id), p, t);
        l.check(t);
        for (const w of l.due(t)) named += w.shards.length;
      }
      l.onRecord(n(2), alive(true), t);
    }
    // The last coming is still owed: its round runs once the gap has passed.
    t += gaps * TIMEOUT;
    for (const w of l.due(t)) named += w.shards.length;
    // 100 goings and 100 comings over 120 s; before, each of them woke every quiet shard here.
    expect(l.counters.peersDown).toBe(100);
    expect(l.counters.peersUp).toBe(100);
    expect(l.counters.wakes).toBeLessThanOrEqual(Math.ceil(t / (gaps * TIMEOUT)) + 1);
    // Each of the 200 reasons to wake had a round of its own or was folded into one.
    expect(l.counters.wakes + l.counters.wakesCoalesced).toBe(200);
    expect(named).toBe(l.counters.wakeShards);
    expect(named).toBeLessThanOrEqual(l.counters.wakes * shared(2).length);
  });

  test('a worker toggling 100 times within one gap costs two rounds; the last word is honoured after the gap', () => {
    const l = make();
    for (let i = 0; i < 200; i++) {
      const t = i * 2;
      l.onRecord(n(2), alive(i % 2 === 1), t); // down, up, down, up... every 2 ms
      l.check(t);
      l.due(t);
    }
    expect(l.counters.workersDown).toBe(100);
    expect(l.counters.workersUp).toBe(100);
    expect(l.counters.wakes).toBe(1);
    expect(l.counters.wakesCoalesced).toBeGreaterThanOrEqual(190);
    // After the gap, one more round covers what is still owed: the worker is back, shards led here get a heartbeat.
    expect(l.due(TIMEOUT)).toEqual([{ leader: 1, shards: shared(2) }]);
    expect(l.counters.wakes).toBe(2);
    expect(l.due(TIMEOUT * 3)).toEqual([]);
  });
});
