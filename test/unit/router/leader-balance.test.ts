/** Leader balancing: which leaderships a node hands over, and that the cluster settles even. */
import { describe, expect, test } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/main/config.js';
import { LeaderBalancer, TRANSFERS_SHARE_PER_ROUND, handOffLeaders, planTransfers } from '../../../src/router/leader-balance.js';
import type { NodeId, ShardId } from '../../../src/shards/raft/index.js';

const n = (x: number): NodeId => x as NodeId;

/** `shards` shards over `members` nodes, `replicas` each from `s % members` on, all led by their first replica unless `leaders` says. */
function cluster(shards: number, members: number, replicas: number, leaders?: number[]) {
  const voters = Array.from({ length: shards }, (_, s) => Array.from({ length: replicas }, (_, i) => n(((s + i) % members) + 1)));
  const lead = leaders ?? voters.map((v) => v[0]!);
  const down = new Set<number>();
  /** Shards whose snapshot the leader is streaming to a replica. */
  const streaming = new Set<number>();
  const partsOf = (self: number) => ({
    self: n(self),
    shardCount: shards,
    shards: () => voters.map((v, s) => ({ shard: s as ShardId, voters: v })).filter((x) => x.voters.includes(n(self))),
    leaderOf: (s: ShardId) => lead[s],
    canLead: (node: NodeId) => !down.has(node),
    streaming: (s: ShardId) => streaming.has(s),
    // What the other nodes report on their liveness records (here: exact and instant).
    leadsOf: (node: NodeId) => lead.filter((l) => l === node).length,
  });
  const counts = (): number[] => Array.from({ length: members }, (_, i) => lead.filter((l) => l === i + 1).length);
  return { voters, lead, down, streaming, partsOf, counts };
}

describe('planTransfers', () => {
  test('a node leading everything hands shards to the voters that lead fewest, a few per round', () => {
    const c = cluster(12, 3, 3, Array(12).fill(1));
    const moves = planTransfers(c.partsOf(1), 2);
    expect(moves).toEqual([
      { shard: 0, to: 2 },
      { shard: 1, to: 3 },
    ]);
    // Other nodes lead nothing: they plan nothing.
    expect(planTransfers(c.partsOf(2), 2)).toEqual([]);
  });

  test('a node hosting only some shards uses the counts the others report; a voter not heard from is passed over', () => {
    // 5 nodes, 3 replicas: node 1 leads every shard it hosts.
    const c = cluster(10, 5, 3);
    for (let s = 0; s < 10; s++) if (c.voters[s]!.includes(n(1))) c.lead[s] = n(1);
    const parts = c.partsOf(1);
    expect(planTransfers(parts, 8).length).toBeGreaterThan(0);
    // Without the reports it does nothing: it cannot see the others' leads.
    expect(planTransfers((({ leadsOf: _reports, ...rest }) => rest)(parts), 8)).toEqual([]);
    // A node whose count is unknown is never a target.
    const moves = planTransfers({ ...parts, leadsOf: (node) => (node === 2 ? undefined : parts.leadsOf(node)) }, 8);
    expect(moves.length).toBeGreaterThan(0);
    expect(moves.every((m) => m.to !== 2)).toBe(true);
  });

  test('counts within one of each other: nothing to do', () => {
    const c = cluster(7, 3, 3, [1, 2, 3, 1, 2, 3, 1]);
    for (const self of [1, 2, 3]) expect(planTransfers(c.partsOf(self), 8)).toEqual([]);
  });

  test('a node that cannot lead (down, or its worker for the shard is gone) is never a target', () => {
    const c = cluster(6, 3, 3, Array(6).fill(1));
    c.down.add(2);
    const moves = planTransfers(c.partsOf(1), 8);
    expect(moves.every((m) => m.to === 3)).toBe(true);
    expect(moves.length).toBe(3); // 6 -> 3 and 0 -> 3, then 3 vs 3
  });

  test('a shard whose snapshot the leader is streaming to a replica keeps its leader until the stream ends', () => {
    const c = cluster(6, 3, 3, Array(6).fill(1));
    c.streaming.add(0);
    c.streaming.add(2);
    expect(planTransfers(c.partsOf(1), 2)).toEqual([
      { shard: 1, to: 2 },
      { shard: 3, to: 3 },
    ]);
    c.streaming.clear();
    expect(planTransfers(c.partsOf(1), 2)).toEqual([
      { shard: 0, to: 2 },
      { shard: 1, to: 3 },
    ]);
  });

  test('rounds on every node settle within one, from any start, with as few moves as it takes', () => {
    for (const [shards, members, replicas] of [
      [16, 3, 3],
      [16, 5, 3],
      [30, 4, 2],
      [7, 3, 3],
    ] as const) {
      for (let seed = 1; seed <= 20; seed++) {
        // A deterministic "random" start: leaders where campaigns happened to win.
        const c = cluster(shards, members, replicas);
        for (let s = 0; s < shards; s++) c.lead[s] = c.voters[s]![(s * 7 + seed * 13) % replicas]!;
        if (seed % 4 === 0) for (let s = 0; s < shards; s++) c.lead[s] = c.voters[s]!.includes(n(1)) ? n(1) : c.lead[s]!;
        let moves = 0;
        for (let round = 0; round < 100; round++) {
          let moved = 0;
          for (let self = 1; self <= members; self++) {
            for (const m of planTransfers(c.partsOf(self), 2)) {
              c.lead[m.shard] = m.to;
              moved++;
            }
          }
          moves += moved;
          if (moved === 0) break;
        }
        const counts = c.counts();
        // With every shard on every node, leaders end within one of each other. With more members
        // than replicas a node moves only to its co-replicas, using the counts they report.
        const spread = Math.max(...counts) - Math.min(...counts);
        expect(spread, `${shards}/${members}/${replicas} seed ${seed}: ${counts.join(',')}`).toBeLessThanOrEqual(replicas === members ? 1 : 2);
        // Each node ends within one of every co-replica in what it sees: no move is left to make.
        for (let self = 1; self <= members; self++) expect(planTransfers(c.partsOf(self), 100)).toEqual([]);
        expect(moves).toBeLessThanOrEqual(shards);
      }
    }
  });
});

describe('LeaderBalancer', () => {
  test('starts the planned transfers, counts the refused ones, never overlaps rounds', async () => {
    const c = cluster(6, 3, 3, Array(6).fill(1));
    const calls: [number, number][] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const b = new LeaderBalancer(
      {
        ...c.partsOf(1),
        transfer: async (shard, to) => {
          calls.push([shard, to]);
          await gate;
          return shard === 0 ? 'started' : 'not-leader';
        },
      },
      2,
    );
    const first = b.round();
    expect(await b.round()).toBe(0); // overlapping round: skipped
    release();
    expect(await first).toBe(1);
    expect(calls).toEqual([
      [0, 2],
      [1, 3],
    ]);
    expect(b.counters).toEqual({ transfersStarted: 1, transfersRefused: 1, transfersFailed: 0, rounds: 1 });
  });

  test('a transfer whose call fails is counted and told, the round goes on and resolves, and the next round runs', async () => {
    const c = cluster(6, 3, 3, Array(6).fill(1));
    const calls: number[] = [];
    const failed: [number, number, string][] = [];
    const b = new LeaderBalancer(
      {
        ...c.partsOf(1),
        transfer: (shard) => {
          calls.push(shard);
          return shard === 0 ? Promise.reject(new Error('skipTicks: the node is not idle')) : Promise.resolve('started');
        },
        failed: (shard, to, err) => failed.push([shard, to, String(err)]),
      },
      2,
    );
    expect(await b.round()).toBe(1);
    expect(failed).toEqual([[0, 2, 'Error: skipTicks: the node is not idle']]);
    expect(calls).toEqual([0, 1]);
    expect(b.counters).toEqual({ transfersStarted: 1, transfersRefused: 0, transfersFailed: 1, rounds: 1 });
    await b.round();
    expect(b.counters.rounds).toBe(2);
  });
});

describe('LeaderBalancer moves per round', () => {
  test('a node far off the mean moves a twentieth of the shards it leads per round, not two', async () => {
    // 1,500 shards on three nodes, all led by node 1: it leads 1,500, a twentieth is 75.
    const c = cluster(1500, 3, 3, Array(1500).fill(1));
    const moved: number[] = [];
    const b = new LeaderBalancer(
      {
        ...c.partsOf(1),
        transfer: (shard, to) => {
          moved.push(shard);
          c.lead[shard] = to;
          return Promise.resolve('started' as const);
        },
      },
      2,
    );
    expect(b.movesPerRound()).toBe(TRANSFERS_SHARE_PER_ROUND * 1500);
    expect(await b.round()).toBe(75);
    expect(moved.length).toBe(75);
    expect(c.counts()).toEqual([1425, 38, 37]);
  });

  test('nodes above the mean that plan on the same counts do not push the node below it past the mean', () => {
    // 9,000 shards: node 1 leads 2,900, nodes 2 and 3 lead 3,050 each (mean 3,000).
    const lead = Array.from({ length: 9000 }, (_, s) => (s < 2900 ? 1 : s < 5950 ? 2 : 3));
    const c = cluster(9000, 3, 3, lead);
    const plans = [2, 3].map((self) => {
      const b = new LeaderBalancer({ ...c.partsOf(self), transfer: () => Promise.resolve('started' as const) }, 2);
      // Both plan before either moves, as two rounds at about the same time do.
      return planTransfers(c.partsOf(self), b.movesPerRound());
    });
    expect(plans.map((p) => p.length)).toEqual([50, 50]);
    for (const p of plans) for (const t of p) c.lead[t.shard] = t.to;
    expect(c.counts()).toEqual([3000, 3000, 3000]);
  });

  test('while a shard hosted here knows no leader, a round moves transfersPerRound', () => {
    const lead: (number | undefined)[] = Array<number | undefined>(1500).fill(1);
    lead[7] = undefined;
    const c = cluster(1500, 3, 3, lead as number[]);
    const b = new LeaderBalancer({ ...c.partsOf(1), transfer: () => Promise.resolve('started' as const) }, 2);
    expect(b.movesPerRound()).toBe(2);
    c.lead[7] = 1;
    expect(b.movesPerRound()).toBe(75);
  });

  test('a node leading few shards moves transfersPerRound', async () => {
    const c = cluster(59, 3, 3, Array(59).fill(1));
    const b = new LeaderBalancer({ ...c.partsOf(1), transfer: () => Promise.resolve('started' as const) }, 2);
    expect(b.movesPerRound()).toBe(2);
    expect(await b.round()).toBe(2);
  });
});

describe('handOffLeaders', () => {
  test('hands every leadership to a caught-up voter, trying the next when one is behind, and waits for them to take over', async () => {
    const c = cluster(4, 3, 3, [1, 1, 2, 1]);
    const tried: [number, number][] = [];
    const result = await handOffLeaders(
      {
        ...c.partsOf(1),
        transfer: (shard, to) => {
          tried.push([shard, to]);
          // Node 3 is behind on shard 0: the hand-over goes to node 2 instead.
          if (shard === 0 && to === 3) return Promise.resolve('target-behind');
          setTimeout(() => (c.lead[shard] = to), 30);
          return Promise.resolve('started');
        },
      },
      2_000,
    );
    expect(result).toEqual({ handed: 3, left: 0 });
    expect(c.lead.filter((l) => l === 1)).toEqual([]);
    expect(tried).toContainEqual([0, 2]);
    expect(tried).toContainEqual([0, 3]);
  });

  test('spreads the leaderships over the other voters by how many each leads, counting those handed over before', async () => {
    // Node 1 leads 8 of 12 shards, node 2 leads 3, node 3 leads 1: after the hand-over each leads 6.
    const c = cluster(12, 3, 3, [1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 3]);
    const result = await handOffLeaders(
      {
        ...c.partsOf(1),
        transfer: (shard, to) => {
          setTimeout(() => (c.lead[shard] = to), 10);
          return Promise.resolve('started');
        },
      },
      2_000,
    );
    expect(result).toEqual({ handed: 8, left: 0 });
    expect(c.counts()).toEqual([0, 6, 6]);
  });

  test('a target that can no longer lead (stopping too) is not waited for: the hand-over resolves with the shard left', async () => {
    const c = cluster(3, 3, 3, [1, 2, 3]);
    const t0 = performance.now();
    const result = await handOffLeaders(
      {
        ...c.partsOf(1),
        transfer: (_shard, to) => {
          // The target refuses the leadership (it is stopping) and says so a moment later.
          setTimeout(() => c.down.add(to), 20);
          return Promise.resolve('started');
        },
      },
      5_000,
    );
    expect(result).toEqual({ handed: 0, left: 1 });
    expect(performance.now() - t0).toBeLessThan(2_500);
  });

  test('a shard no other voter can take stays, and nothing is waited for (a single-node cluster)', async () => {
    const c = cluster(3, 1, 1);
    const t0 = performance.now();
    const result = await handOffLeaders({ ...c.partsOf(1), transfer: () => Promise.resolve('started') }, 5_000);
    expect(result).toEqual({ handed: 0, left: 3 });
    expect(performance.now() - t0).toBeLessThan(1_000);
  });

  test('a transfer whose call fails is told and passed over: the next voter takes the shard, and the hand-over resolves', async () => {
    const c = cluster(4, 3, 3, [1, 1, 2, 1]);
    const failed: [number, number, string][] = [];
    const result = await handOffLeaders(
      {
        ...c.partsOf(1),
        transfer: (shard, to) => {
          if (shard === 0 && to === 3) return Promise.reject(new Error('worker gone'));
          setTimeout(() => (c.lead[shard] = to), 30);
          return Promise.resolve('started');
        },
        failed: (shard, to, err) => failed.push([shard, to, String(err)]),
      },
      2_000,
    );
    expect(result).toEqual({ handed: 3, left: 0 });
    expect(failed).toEqual([[0, 3, 'Error: worker gone']]);
  });
});

describe('--leader-balance-ms', () => {
  test('on by default, a round every 5000 ms; 0 turns it off; flag over environment', () => {
    expect(loadConfig([], {}).leaderBalanceMs).toBe(5000);
    expect(loadConfig(['--leader-balance-ms', '0'], {}).leaderBalanceMs).toBe(0);
    expect(loadConfig(['--leader-balance-ms=250'], { IROH_RAFT_LEADER_BALANCE_MS: '900' }).leaderBalanceMs).toBe(250);
    expect(loadConfig([], { IROH_RAFT_LEADER_BALANCE_MS: '900' }).leaderBalanceMs).toBe(900);
  });

  test.each([['-1'], ['3600001'], ['1.5'], ['soon']])('refuses %s with InvalidConfig', (v) => {
    expect(() => loadConfig(['--leader-balance-ms', v], {})).toThrow(ConfigError);
    expect(() => loadConfig(['--leader-balance-ms', v], {})).toThrow(expect.objectContaining({ code: 'InvalidConfig' }));
  });
});
