/**
 * The host's latency reports (HostOptions.latency), on three hosts with real LMDB stores and a
 * shared virtual clock: commit latency is told once per client proposal, by its leader only;
 * apply latency once per committed entry, on every replica; and both measure by the host's clock.
 */
import { afterEach, expect, test } from 'vitest';
import { HostCluster } from './host-cluster.js';
import type { HostLatency } from '../../../src/shards/host.js';

let cluster: HostCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

test('commit latency once per proposal on its leader; apply latency once per applied entry on every replica', () => {
  const commits: number[] = [];
  const applies: number[] = [];
  const latency: HostLatency = {
    commit: (s) => commits.push(s),
    apply: (s, n) => {
      for (let i = 0; i < n; i++) applies.push(s);
    },
  };
  const TICK_MS = 10;
  cluster = new HostCluster({ nodes: 3, shards: 2, clock: { tickMs: TICK_MS }, host: { latency } });
  const c = cluster;
  c.elect();
  const appliedBefore = c.nodes.reduce((a, n) => a + n.host.counters.entriesApplied, 0);
  expect(applies.length).toBe(appliedBefore);
  expect(commits).toEqual([]); // elections commit entries, but no client proposal

  const reqs: { leader: (typeof c.nodes)[number]; id: number }[] = [];
  for (let i = 0; i < 5; i++) {
    for (const shard of [0, 1]) {
      const leader = c.leaderOf(shard)!;
      reqs.push({ leader, id: c.propose(leader, shard, `k${i}`) });
    }
  }
  c.until(() => reqs.every((r) => r.leader.replies.has(r.id)));
  for (let i = 0; i < 5; i++) c.round();
  expect(commits.length).toBe(10);
  // Rounds move the virtual clock a tick at a time: a commit takes whole ticks, at least one round trip.
  for (const s of commits) {
    expect(s).toBeGreaterThanOrEqual(0);
    expect(Math.round((s * 1000) / TICK_MS) * TICK_MS).toBeCloseTo(s * 1000, 6);
  }
  expect(Math.max(...commits)).toBeGreaterThan(0);
  const applied = c.nodes.reduce((a, n) => a + n.host.counters.entriesApplied, 0);
  expect(applied - appliedBefore).toBeGreaterThanOrEqual(30); // 10 entries on 3 replicas, and what elections appended
  expect(applies.length).toBe(applied);
  // The clock does not move within a turn here: applying takes no virtual time.
  for (const s of applies) expect(s).toBe(0);
});

test('without a clock nothing is measured', () => {
  const told: number[] = [];
  cluster = new HostCluster({ nodes: 1, shards: 1, host: { latency: { commit: (s) => told.push(s), apply: (s) => told.push(s) } } });
  const c = cluster;
  c.elect();
  const n = c.nodes[0]!;
  const id = c.propose(n, 0, 'k');
  c.until(() => n.replies.has(id));
  expect(told).toEqual([]);
});
