/**
 * A cluster that grows while it serves, with real node processes over real Iroh on 127.0.0.1:
 * one node started alone, a client writing all along, then a second and a third node started
 * with `--join <ticket of node 1>` as a user adds machines. Every shard (and the meta group)
 * reaches three voters, one on each node; every acknowledged write reads back from every node's
 * own replica (stale reads, no forwarding); the longest stretch without a successful write is
 * reported. Then a member is removed with `iroh-raft members remove`: its replicas move away,
 * it stops with exit code 3 and says why, and nothing acknowledged is lost.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { CLI, TestCluster, eventually, sleep, staleReadsBack, statusWithMeta } from './cluster.js';

const SHARDS = 4;
const c = new TestCluster({
  nodes: 1,
  shards: SHARDS,
  tickMs: 50,
  extra: ['--meta-poll-ms', '300', '--compact-every-entries', '300', '--compact-keep-entries', '50'],
});
beforeAll(() => c.start(), 60_000);
afterAll(() => c.close());

interface ShardStatus {
  shard: number;
  role: string;
  leader: number;
  applied: number;
  voters: number[];
  learners: number[];
}
interface Status {
  node: number;
  shards: ShardStatus[];
  cluster: { members: { node: number; id: string; state: string }[]; moves: unknown[]; targets: number[][] } | null;
}
const status = (n: number): Promise<Status> => statusWithMeta<Status>(c.node(n).url);

/** What each node says of its shards and the cluster, for failure messages. */
async function dump(nodes: number[]): Promise<string> {
  const out: string[] = [];
  for (const n of nodes) {
    const s = await status(n).catch((e: unknown) => String(e));
    out.push(
      typeof s === 'string'
        ? `node ${n}: ${s}`
        : `node ${n}: ${JSON.stringify(s.shards.map((x) => [x.shard, x.role, x.voters, x.learners]))} ${JSON.stringify(s.cluster)}`,
    );
  }
  return out.join('\n');
}

/** Acknowledged writes: key -> value. */
const acked = new Map<string, string>();
let writing = true;
/**
 * Longest time (ms) between two successful writes while the writer ran; failed attempts, why, and
 * the longest stretch from a first failure to the next success.
 */
const gaps = { longestMs: 0, failures: 0, why: new Map<string, number>(), failingMs: 0 };

async function writer(nodes: () => number[]): Promise<void> {
  let i = 0;
  let lastOk = performance.now();
  let failingSince: number | undefined;
  while (writing) {
    const targets = nodes();
    const n = targets[i % targets.length]!;
    const key = `k${i}`;
    const value = `v${i}-${'x'.repeat(100)}`;
    i++;
    const res = await fetch(`${c.node(n).url}/v1/kv/${key}`, { method: 'PUT', body: value, signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
    const now = performance.now();
    if (res?.status === 200) {
      acked.set(key, value);
      gaps.longestMs = Math.max(gaps.longestMs, now - lastOk);
      if (failingSince !== undefined) gaps.failingMs = Math.max(gaps.failingMs, now - failingSince);
      failingSince = undefined;
      lastOk = now;
    } else {
      gaps.failures++;
      failingSince ??= now;
      const why =
        res === undefined ? 'no answer' : `${res.status} ${((await res.json().catch(() => ({}))) as { error?: { code?: string } }).error?.code ?? ''}`;
      gaps.why.set(why, (gaps.why.get(why) ?? 0) + 1);
    }
    await sleep(5);
  }
}

/** Every shard and the meta group hosted on `n` has exactly the voters `want`, no learners. */
async function replicated(nodes: number[]): Promise<boolean> {
  for (const n of nodes) {
    const s = await status(n);
    if (s.shards.length !== SHARDS + 1) return false;
    for (const sh of s.shards) if (JSON.stringify([...sh.voters].sort()) !== JSON.stringify([...nodes].sort()) || sh.learners.length > 0) return false;
  }
  return true;
}

const readsBack = (n: number): Promise<string | undefined> => staleReadsBack(c.node(n).url, acked);

test('a node alone grows to three by --join while a client writes; every shard ends with three voters and nothing acknowledged is lost', async () => {
  await eventually(async () => (await fetch(`${c.node(1).url}/healthz`)).status === 200, 30_000, 'node 1 healthy');
  let members = [1];
  const w = writer(() => members);
  await sleep(1000);
  // A new node takes client requests once it says it is ready (as behind a load balancer).
  const ready = async (n: number): Promise<void> => eventually(async () => (await fetch(`${c.node(n).url}/healthz`)).status === 200, 60_000, `node ${n} ready`);
  // Node 1 leads every shard: its status shows the moves while node 2 joins.
  let movesSeen = 0;
  let watching = true;
  const watch = (async () => {
    while (watching) {
      movesSeen = Math.max(movesSeen, (await status(1).catch(() => undefined))?.cluster?.moves.length ?? 0);
      await sleep(100);
    }
  })();
  const n2 = await c.join(1);
  await ready(n2);
  members = [1, n2];
  await eventually(() => replicated([1, n2]), 60_000, 'every shard on nodes 1 and 2').catch(async (e: unknown) => {
    throw new Error(`${String(e)}\n${await dump([1, n2])}\n${c.node(n2).output.slice(-3000)}`);
  });
  watching = false;
  await watch;
  expect(movesSeen, 'shards shown moving in the status of their leader').toBeGreaterThan(0);
  const n3 = await c.join(2);
  await ready(n3);
  members = [1, n2, n3];
  await eventually(() => replicated([1, n2, n3]), 90_000, 'every shard on nodes 1, 2 and 3').catch(async (e: unknown) => {
    throw new Error(`${String(e)}\n${await dump([1, n2, n3])}`);
  });
  await sleep(1000);
  writing = false;
  await w;
  console.log(
    `join: ${acked.size} writes acknowledged, ${gaps.failures} failed attempts ${JSON.stringify([...gaps.why])}, longest failing stretch ${Math.round(gaps.failingMs)} ms, longest gap between successes ${Math.round(gaps.longestMs)} ms`,
  );
  expect(acked.size).toBeGreaterThan(100);
  // No write fails for longer than an election timeout (10 ticks of 50 ms).
  expect(gaps.failingMs).toBeLessThanOrEqual(500);
  for (const n of [1, n2, n3]) {
    let bad: string | undefined = 'not checked';
    await eventually(async () => (bad = await readsBack(n)) === undefined, 30_000, `acknowledged writes on node ${n}`).catch(() => undefined);
    expect(bad).toBeUndefined();
  }
  const s = await status(1);
  expect(s.cluster?.members.map((m) => `${m.node}:${m.state}`)).toEqual(['1:up', `${n2}:up`, `${n3}:up`]);
  // Every shard's target (the meta group's last) in one node's status: all three nodes.
  expect(s.cluster?.targets.map((t) => [...t].sort().join())).toEqual(Array.from({ length: SHARDS + 1 }, () => [1, n2, n3].sort().join()));
}, 240_000);

test('iroh-raft members lists them; members remove moves a node away, it stops with exit code 3, nothing acknowledged is lost', async () => {
  const list = spawnSync(process.execPath, [CLI, 'members', '--via', c.node(1).url], { encoding: 'utf8' });
  expect(list.status, list.stderr).toBe(0);
  expect(list.stdout).toMatch(/^NODE\s+STATE\s+ENDPOINT/);
  expect(list.stdout.split('\n').filter((l) => /^\d+\s+up\s/.test(l))).toHaveLength(3);
  // Back to a single replica set of two: node 3 leaves.
  const exited = new Promise<number | null>((r) => c.node(3).proc!.once('exit', (code) => r(code)));
  const rm = spawnSync(process.execPath, [CLI, 'members', 'remove', '3', '--via', c.node(1).url], { encoding: 'utf8' });
  expect(rm.status, rm.stderr).toBe(0);
  expect(JSON.parse(rm.stdout)).toEqual({ node: 3, state: 'leaving' });
  const code = await Promise.race([exited, sleep(60_000).then(() => 'still running')]);
  if (code !== 3) throw new Error(`node 3: ${String(code)}\n${await dump([1, 2, 3])}\n${c.node(3).output.slice(-2000)}`);
  expect(c.node(3).output).toMatch(/Removed/);
  c.node(3).proc = undefined;
  await eventually(() => replicated([1, 2]), 60_000, 'every shard on nodes 1 and 2 only');
  for (const n of [1, 2]) expect(await readsBack(n)).toBeUndefined();
  const s = await status(1);
  expect(s.cluster?.members.find((m) => m.node === 3)?.state).toBe('removed');
  // A removed node does not come back.
  await expect(c.startNode(3)).rejects.toThrow(/Removed/);
}, 180_000);
