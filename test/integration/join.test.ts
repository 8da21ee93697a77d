/**
 * A cluster that grows while it serves, with real node processes over real Iroh on 127.0.0.1:
 * one node started alone with enough data that its logs are compacted, a client writing all
 * along, then nodes started one by one with `--join <ticket of a member>` as a user adds
 * machines, up to six. At three nodes every shard (and the meta group) has a voter on each node,
 * and the second node's replicas started from streamed snapshots; at five and six, replicas and
 * leaders spread, data shards keep three voters and the meta group stops at five. Every
 * acknowledged write reads back from every node (stale reads); the longest stretch without a
 * successful write is reported. Then a member is removed with `iroh-raft members remove`: its
 * replicas move away, it stops with exit code 3 and says why, and nothing acknowledged is lost.
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

/**
 * Every replica set at its target on `nodes` (and nowhere else): each node hosts exactly the
 * shards whose target names it, with the target's voters and no learners; a data shard has
 * min(3, nodes) voters, the meta group (the last) min(5, nodes).
 */
async function replicated(nodes: number[]): Promise<boolean> {
  const targets = (await status(nodes[0]!)).cluster?.targets;
  if (targets?.length !== SHARDS + 1) return false;
  for (const [shard, t] of targets.entries())
    if (t.length !== Math.min(shard === SHARDS ? 5 : 3, nodes.length) || t.some((n) => !nodes.includes(n))) return false;
  for (const n of nodes) {
    const s = await status(n);
    const want = targets.flatMap((t, shard) => (t.includes(n) ? [shard] : []));
    if (JSON.stringify(s.shards.map((x) => x.shard).sort((a, b) => a - b)) !== JSON.stringify(want)) return false;
    for (const sh of s.shards)
      if (JSON.stringify([...sh.voters].sort()) !== JSON.stringify([...targets[sh.shard]!].sort()) || sh.learners.length > 0) return false;
  }
  return true;
}

const readsBack = (n: number): Promise<string | undefined> => staleReadsBack(c.node(n).url, acked);

/** A counter from node `n`'s /metrics (0 when absent). */
async function metric(n: number, name: string): Promise<number> {
  const text = await (await fetch(`${c.node(n).url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

/** Replicas and leaderships per node, as the nodes' own statuses say. */
async function spread(nodes: number[]): Promise<{ replicas: Record<number, number>; leaders: Record<number, number> }> {
  const replicas: Record<number, number> = {};
  const leaders: Record<number, number> = {};
  for (const n of nodes) {
    const s = await status(n);
    replicas[n] = s.shards.length;
    leaders[n] = s.shards.filter((x) => x.role === 'leader').length;
  }
  return { replicas, leaders };
}

test('a node alone grows to three, then five, then six by --join while a client writes; replicas and leaders spread, nothing acknowledged is lost', async () => {
  await eventually(async () => (await fetch(`${c.node(1).url}/healthz`)).status === 200, 30_000, 'node 1 healthy');
  // Enough data that every shard's log is compacted past its start: new replicas catch up from
  // streamed snapshots, not from the log.
  const preload = Array.from({ length: 16 }, async (_, lane) => {
    for (let i = lane; i < SHARDS * 400; i += 16) {
      const key = `pre${i}`;
      const value = `p${i}-${'y'.repeat(200)}`;
      const res = await fetch(`${c.node(1).url}/v1/kv/${key}`, { method: 'PUT', body: value });
      expect(res.status).toBe(200);
      acked.set(key, value);
    }
  });
  await Promise.all(preload);
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
  const grow = async (via: number): Promise<number> => {
    const n = await c.join(via);
    await ready(n);
    members = [...members, n];
    await eventually(() => replicated(members), 90_000, `every shard at its target on nodes ${members.join(', ')}`).catch(async (e: unknown) => {
      throw new Error(`${String(e)}\n${await dump(members)}\n${c.node(n).output.slice(-3000)}`);
    });
    return n;
  };
  const n2 = await grow(1);
  watching = false;
  await watch;
  expect(movesSeen, 'shards shown moving in the status of their leader').toBeGreaterThan(0);
  // Node 2's replicas of the data shards started from snapshots streamed by node 1.
  const snapshots = await metric(n2, 'iroh_raft_snapshots_received_total');
  expect(snapshots, 'snapshots node 2 installed while joining').toBeGreaterThanOrEqual(SHARDS);
  const n3 = await grow(2);
  const at3 = await spread(members);
  const s3 = await status(1);
  expect(s3.cluster?.members.map((m) => `${m.node}:${m.state}`)).toEqual(['1:up', `${n2}:up`, `${n3}:up`]);
  // Every shard's target (the meta group's last) in one node's status: all three nodes.
  expect(s3.cluster?.targets.map((t) => [...t].sort().join())).toEqual(Array.from({ length: SHARDS + 1 }, () => [1, n2, n3].sort().join()));
  const n4 = await grow(3);
  const n5 = await grow(4);
  // Replicas spread: 4 x 3 data replicas and 5 of the meta group over 5 nodes.
  await eventually(
    async () => {
      const { replicas, leaders } = await spread(members);
      return Math.max(...Object.values(replicas)) - Math.min(...Object.values(replicas)) <= 1 && Math.max(...Object.values(leaders)) <= 2;
    },
    30_000,
    'replicas and leaders spread over five nodes',
  ).catch(async (e: unknown) => {
    throw new Error(`${String(e)} ${JSON.stringify(await spread(members))}`);
  });
  const at5 = await spread(members);
  // A sixth: the meta group stays at five voters, the data shards at three.
  const n6 = await grow(5);
  await eventually(
    async () => {
      const { replicas } = await spread(members);
      return Object.values(replicas).reduce((a, b) => a + b, 0) === SHARDS * 3 + 5 && Object.values(replicas).every((r) => r >= 2);
    },
    30_000,
    'the sixth node holds its share',
  ).catch(async (e: unknown) => {
    throw new Error(`${String(e)} ${JSON.stringify(await spread(members))}`);
  });
  const at6 = await spread(members);
  await sleep(1000);
  writing = false;
  await w;
  console.log(
    `join: ${acked.size} writes acknowledged (${SHARDS * 400} before the first join), ${gaps.failures} failed attempts ${JSON.stringify([...gaps.why])}, longest failing stretch ${Math.round(gaps.failingMs)} ms, longest gap between successes ${Math.round(gaps.longestMs)} ms; node 2 installed ${snapshots} snapshots; replicas and leaders per node at 3, 5, 6 nodes: ${JSON.stringify([at3, at5, at6])}`,
  );
  expect(acked.size).toBeGreaterThan(SHARDS * 400 + 100);
  // No write fails for longer than an election timeout (10 ticks of 50 ms).
  expect(gaps.failingMs).toBeLessThanOrEqual(500);
  for (const n of [1, n2, n3, n4, n5, n6]) {
    let bad: string | undefined = 'not checked';
    await eventually(async () => (bad = await readsBack(n)) === undefined, 30_000, `acknowledged writes on node ${n}`).catch(() => undefined);
    if (bad !== undefined) throw new Error(`${bad}\n${await dump([1, n2, n3, n4, n5, n6])}\n${c.node(n).output.slice(-4000)}`);
  }
}, 400_000);

test('iroh-raft members lists them; members remove moves a node away, it stops with exit code 3, nothing acknowledged is lost', async () => {
  const list = spawnSync(process.execPath, [CLI, 'members', '--via', c.node(1).url], { encoding: 'utf8' });
  expect(list.status, list.stderr).toBe(0);
  expect(list.stdout).toMatch(/^NODE\s+STATE\s+ENDPOINT/);
  expect(
    list.stdout.split('\n').filter((l) => /^\d+\s+up\s/.test(l)),
    list.stdout,
  ).toHaveLength(6);
  // Node 3 leaves: its replicas move to the other five.
  const exited = new Promise<number | null>((r) => c.node(3).proc!.once('exit', (code) => r(code)));
  const rm = spawnSync(process.execPath, [CLI, 'members', 'remove', '3', '--via', c.node(1).url], { encoding: 'utf8' });
  expect(rm.status, rm.stderr).toBe(0);
  expect(JSON.parse(rm.stdout)).toEqual({ node: 3, state: 'leaving' });
  const code = await Promise.race([exited, sleep(60_000).then(() => 'still running')]);
  if (code !== 3) throw new Error(`node 3: ${String(code)}\n${await dump([1, 2, 3])}\n${c.node(3).output.slice(-2000)}`);
  expect(c.node(3).output).toMatch(/Removed/);
  c.node(3).proc = undefined;
  const rest = [1, 2, 4, 5, 6];
  await eventually(() => replicated(rest), 60_000, 'every shard at its target on nodes 1, 2, 4, 5 and 6');
  for (const n of rest) expect(await readsBack(n)).toBeUndefined();
  const s = await status(1);
  expect(s.cluster?.members.find((m) => m.node === 3)?.state).toBe('removed');
  // A removed node does not come back.
  await expect(c.startNode(3)).rejects.toThrow(/Removed/);
}, 180_000);
