/**
 * Leader balancing with real processes: three nodes, twelve shards. Whatever the elections left,
 * the nodes hand leaderships over until each leads four while writes go on; and a node stopped
 * with SIGTERM hands its leaderships over before it exits.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { TestCluster } from './cluster.js';

const c = new TestCluster({ nodes: 3, shards: 12, extra: ['--leader-balance-ms', '300'] });
beforeAll(() => c.start(), 60_000);
afterAll(() => c.close());

interface Status {
  shards: { shard: number; leader: number }[];
}

/** Leaders per node id, as node 1 sees them (it hosts every shard); undefined while a shard has none. */
async function leaderCounts(): Promise<Map<number, number> | undefined> {
  const s = (await (await fetch(`${c.node(1).url}/v1/status`)).json()) as Status;
  const counts = new Map<number, number>();
  for (const sh of s.shards) {
    if (sh.leader === 0) return undefined;
    counts.set(sh.leader, (counts.get(sh.leader) ?? 0) + 1);
  }
  return counts;
}

describe('leader balancing', () => {
  test('leaders spread to four per node while writes go on', async () => {
    let acked = 0;
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const r = await fetch(`${c.node((i % 3) + 1).url}/v1/kv/w/${i}`, { method: 'PUT', body: String(i) });
        if (r.status === 200) acked = Math.max(acked, i + 1);
        if (r.status !== 200) await new Promise((res) => setTimeout(res, 20));
      }
    })();
    let counts: Map<number, number> | undefined;
    for (let tries = 0; ; tries++) {
      counts = await leaderCounts();
      if (counts !== undefined && [1, 2, 3].every((n) => counts!.get(n) === 4)) break;
      expect(tries, `leaders per node: ${JSON.stringify([...(counts ?? [])])}`).toBeLessThan(300);
      await new Promise((res) => setTimeout(res, 100));
    }
    writing = false;
    await writer;
    expect(acked).toBeGreaterThan(0);
    const metrics = await Promise.all([1, 2, 3].map(async (n) => (await fetch(`${c.node(n).url}/metrics`)).text()));
    const started = metrics.map((m) => Number(/^iroh_raft_leader_transfers_started_total (\d+)$/m.exec(m)?.[1] ?? NaN));
    expect(started.every((x) => Number.isFinite(x))).toBe(true);
    // Stays balanced: later rounds move nothing more.
    const before = started.reduce((a, b) => a + b, 0);
    await new Promise((res) => setTimeout(res, 1500));
    const after = (await Promise.all([1, 2, 3].map(async (n) => (await fetch(`${c.node(n).url}/metrics`)).text()))).map((m) =>
      Number(/^iroh_raft_leader_transfers_started_total (\d+)$/m.exec(m)?.[1] ?? NaN),
    );
    expect(after.reduce((a, b) => a + b, 0)).toBe(before);
  }, 90_000);

  test('a node stopping gracefully hands its leaderships over first (the meta group too), spread over the others, and takes none back: no group waits for an election', async () => {
    const status = async (i: number): Promise<Status & { node: number; metaGroup: { leader: number } | null }> =>
      (await (await fetch(`${c.node(i).url}/v1/status`)).json()) as Status & { node: number; metaGroup: { leader: number } | null };
    /** Each data shard's leader as node `i` sees it, then the meta group's. */
    const led = async (i: number): Promise<number[]> => {
      const s = await status(i);
      return [...s.shards.map((x) => x.leader), s.metaGroup?.leader ?? -1];
    };
    // The raft ids follow the sorted endpoint ids, not the start order. The process stopped is the
    // one leading the meta group, so that its hand-over has the meta group's to give as well.
    const ids = await Promise.all([1, 2, 3].map(async (i) => (await status(i)).node));
    const k = ids.indexOf((await status(1)).metaGroup?.leader ?? -1) + 1;
    expect(k).toBeGreaterThan(0);
    const [a, b] = [1, 2, 3].filter((i) => i !== k) as [number, number];
    const stopping = ids[k - 1]!;
    expect((await led(a)).slice(0, 12).filter((l) => l === stopping).length).toBe(4);
    // A PUT whose body is still arriving keeps the node in its graceful stop, its leaderships
    // handed over, for 1.5 s: several balancing rounds of the others (every ~300 ms), which find it
    // leading none, two fewer than the mean. They must not give it one back: it would win the
    // election and then exit, leaving that shard to wait for another.
    const held = request(`${c.node(k).url}/v1/kv/held/1`, { method: 'PUT', headers: { 'content-length': '2' } });
    const answered = new Promise<number>((resolve, reject) => {
      held.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      held.on('error', reject);
    });
    held.write('o');
    await new Promise((res) => setTimeout(res, 200));
    const exited = c.stop(k);
    await new Promise((res) => setTimeout(res, 1500));
    held.end('k');
    expect(await answered).toBe(200);
    expect(await exited).toBe(0);
    // At once, or within 100 ms (half an election timeout of 10 ticks of 20 ms): node a names the
    // stopped node leader of no group, and every group has a leader.
    const now = await led(a);
    if (now.includes(0) || now.includes(stopping)) await new Promise((res) => setTimeout(res, 100));
    const later = await led(a);
    expect(
      later.filter((l) => l === stopping || l === 0),
      `leaders seen by node ${a} at once: ${now.join(',')}, then: ${later.join(',')} (the meta group's last); stopped ${stopping}`,
    ).toEqual([]);
    // The four data shards went two and two: each of the others leads six.
    const data = later.slice(0, 12);
    expect([data.filter((l) => l === ids[a - 1]).length, data.filter((l) => l === ids[b - 1]).length]).toEqual([6, 6]);
    expect(c.node(k).output).not.toMatch(/"level":(50|60)/);
  }, 60_000);
});
