/**
 * Five real nodes and back to three, with writes all along: three founders, a fourth and a fifth
 * started with `--join`; replicas spread over the five (counts reported, within one of each other).
 * Then node 5 is removed gracefully (`members remove`: it moves away and exits 3) and node 4 is
 * SIGKILLed for good: after `--dead-node-timeout-ms` (3 s here) the meta group's leader declares
 * it dead and its replicas are rebuilt from the survivors. Every shard ends with three voters on nodes 1-3, and every acknowledged write
 * reads back from each of them.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { CLI, TestCluster, eventually, sleep, staleReadsBack, statusWithMeta } from './cluster.js';

const SHARDS = 8;
const c = new TestCluster({
  nodes: 3,
  shards: SHARDS,
  tickMs: 50,
  extra: ['--meta-poll-ms', '300', '--dead-node-timeout-ms', '3000', '--leader-balance-ms', '1000'],
});
beforeAll(() => c.start(), 90_000);
afterAll(() => c.close());

interface Status {
  node: number;
  shards: { shard: number; role: string; voters: number[]; learners: number[] }[];
  cluster: { members: { node: number; state: string }[]; moves: unknown[] } | null;
}
const status = (n: number): Promise<Status> => statusWithMeta<Status>(c.node(n).url);

const acked = new Map<string, string>();
let writing = true;
const targets = [1, 2, 3];
async function writer(): Promise<void> {
  for (let i = 0; writing; i++) {
    const n = targets[i % targets.length]!;
    const key = `c${i}`;
    const res = await fetch(`${c.node(n).url}/v1/kv/${key}`, { method: 'PUT', body: `v${i}`, signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
    if (res?.status === 200) acked.set(key, `v${i}`);
    await sleep(10);
  }
}

/** Per node: replicas hosted and leaderships, from every node's own status; undefined while a move is under way. */
async function layout(nodes: number[]): Promise<{ replicas: number[]; leaders: number[] } | undefined> {
  const replicas: number[] = [];
  const leaders: number[] = [];
  const sets = new Map<number, string>();
  for (const n of nodes) {
    const s = await status(n);
    if ((s.cluster?.moves.length ?? 1) > 0) return undefined;
    replicas.push(s.shards.length);
    leaders.push(s.shards.filter((x) => x.role === 'leader').length);
    for (const sh of s.shards) {
      // Raft ids are not the cluster's indexes: founders are numbered in endpoint id order.
      // Three replicas per shard; the meta group's up to five.
      const want = sh.shard === SHARDS ? Math.min(5, nodes.length) : 3;
      if (sh.learners.length > 0 || sh.voters.length !== want || !sh.voters.includes(s.node)) return undefined;
      const v = JSON.stringify(sh.voters);
      if ((sets.get(sh.shard) ?? v) !== v) return undefined;
      sets.set(sh.shard, v);
    }
  }
  // Every shard (three replicas) and the meta group, all on these nodes.
  if (sets.size !== SHARDS + 1 || replicas.reduce((a, b) => a + b, 0) !== 3 * SHARDS + Math.min(5, nodes.length)) return undefined;
  return { replicas, leaders };
}

const readsBack = (n: number): Promise<string | undefined> => staleReadsBack(c.node(n).url, acked);

test('three nodes grow to five and spread their replicas; one leaves, one dies for good; back on three with every write', async () => {
  await eventually(async () => (await Promise.all([1, 2, 3].map((n) => fetch(`${c.node(n).url}/healthz`)))).every((r) => r.status === 200), 60_000, 'healthy');
  const w = writer();
  const n4 = await c.join(1);
  const n5 = await c.join(2);
  let spread: Awaited<ReturnType<typeof layout>>;
  await eventually(async () => (spread = await layout([1, 2, 3, n4, n5])) !== undefined, 120_000, 'replicas spread over five nodes').catch(
    async (e: unknown) => {
      const views = await Promise.all(
        [1, 2, 3, n4, n5].map(async (n) => {
          // A node that stopped answering says how it ended and what it printed last.
          const s = await status(n).catch(() => undefined);
          if (s === undefined) {
            const p = c.node(n).proc;
            return `node ${n}: not answering (exit ${p?.exitCode ?? '-'}, signal ${p?.signalCode ?? '-'}); its output ends:\n${c.node(n).output.slice(-3000)}`;
          }
          return `node ${n}: ${JSON.stringify(s.shards.map((x) => [x.shard, x.role, x.voters, x.learners]))} moves ${JSON.stringify(s.cluster?.moves)}\nFULL ${n}: ${JSON.stringify(s)}\nLOG ${n}: ${c.node(n).output.slice(-6000)}`;
        }),
      );
      throw new Error(`${String(e)}\n${views.join('\n')}`);
    },
  );
  // Leaders spread too: nodes that host only some shards balance by the counts the others report.
  await eventually(
    async () => {
      spread = await layout([1, 2, 3, n4, n5]);
      return spread !== undefined && Math.max(...spread.leaders) - Math.min(...spread.leaders) <= 2 && spread.leaders.reduce((a, b) => a + b, 0) === SHARDS + 1;
    },
    60_000,
    'leaders spread over five nodes',
  );
  console.log(`churn: five nodes, replicas per node ${spread!.replicas.join('/')}, leaders per node ${spread!.leaders.join('/')}`);
  expect(Math.max(...spread!.replicas) - Math.min(...spread!.replicas)).toBeLessThanOrEqual(1);
  expect(Math.min(...spread!.replicas)).toBeGreaterThan(0);

  // Node 5 leaves gracefully.
  const exited = new Promise<number | null>((r) => c.node(n5).proc!.once('exit', (code) => r(code)));
  const rm = spawnSync(process.execPath, [CLI, 'members', 'remove', String(n5), '--via', c.node(1).url], { encoding: 'utf8' });
  expect(rm.status, rm.stderr).toBe(0);
  expect(await exited).toBe(3);
  c.node(n5).proc = undefined;
  // Node 4 dies for good: past --dead-node-timeout-ms the meta group's leader declares it dead and
  // its replicas are rebuilt from the others, with nobody asking.
  await c.kill(n4);
  let back: Awaited<ReturnType<typeof layout>>;
  await eventually(async () => (back = await layout([1, 2, 3])) !== undefined, 120_000, 'every shard back on nodes 1-3');
  console.log(`churn: back on three, replicas per node ${back!.replicas.join('/')}, leaders per node ${back!.leaders.join('/')}`);
  writing = false;
  await w;
  expect(acked.size).toBeGreaterThan(100);
  for (const n of [1, 2, 3]) {
    let bad: string | undefined = 'not checked';
    await eventually(async () => (bad = await readsBack(n)) === undefined, 30_000, `writes on node ${n}`).catch(() => undefined);
    expect(bad).toBeUndefined();
  }
  const members = (await status(1)).cluster?.members.map((m) => `${m.node}:${m.state}`);
  expect(members).toEqual(['1:up', '2:up', '3:up', `${n4}:removed`, `${n5}:removed`]);
}, 400_000);
