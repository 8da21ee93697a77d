/**
 * A member that falls silent while it leaves, with real processes: three founders, two shards,
 * `--dead-node-timeout-ms 3000`. Node 3 is frozen (SIGSTOP) and at once asked to leave (`DELETE
 * /v1/members/3`, while node 1 still counts it up), so it is `leaving` but cannot finish: it never drops its replicas, so it could never record
 * itself removed. Past the timeout the meta group's leader declares it dead, and it becomes
 * `removed`; the shards end on nodes 1 and 2. Woken (SIGCONT), node 3 finds every member refusing
 * it, asks them what they say of it (`members.self`), stops with exit 3 and `Removed`, and its
 * directory is refused from then on.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { TestCluster, eventually, sleep, statusWithMeta } from './cluster.js';

const SHARDS = 2;
const c = new TestCluster({ nodes: 3, shards: SHARDS, tickMs: 50, extra: ['--meta-poll-ms', '300', '--dead-node-timeout-ms', '3000'] });
beforeAll(() => c.start(), 90_000);
afterAll(async () => {
  c.node(3).proc?.kill('SIGCONT');
  await c.close();
});

interface Status {
  node: number;
  shards: { shard: number; voters: number[]; learners: number[] }[];
  cluster: { members: { node: number; state: string }[] } | null;
}
const status = (n: number): Promise<Status> => statusWithMeta<Status>(c.node(n).url);

/** Every shard and the meta group with voters exactly `voters` and no learners, on nodes 1 and 2. */
async function onTwo(voters: number[]): Promise<boolean> {
  for (const n of [1, 2]) {
    const s = await status(n);
    if (s.shards.length !== SHARDS + 1) return false;
    if (!s.shards.every((x) => x.learners.length === 0 && JSON.stringify(x.voters) === JSON.stringify(voters))) return false;
  }
  return true;
}

test('a member that dies while it leaves is declared dead after the timeout and removed; woken, it learns it and stops', async () => {
  await eventually(async () => (await Promise.all([1, 2, 3].map((n) => fetch(`${c.node(n).url}/healthz`)))).every((r) => r.status === 200), 60_000, 'healthy');
  const ids = await Promise.all([1, 2, 3].map(async (n) => (await status(n)).node));
  const victim = ids[2]!;
  // Frozen first, then asked to leave at once, while node 1 still counts it up (a liveness timeout,
  // 10 ticks): frozen after the request instead, it could finish leaving before the signal.
  const proc = c.node(3).proc!;
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  proc.kill('SIGSTOP');
  const frozenAt = Date.now();
  const rm = await fetch(`${c.node(1).url}/v1/members/${victim}`, { method: 'DELETE' });
  expect(rm.status).toBe(200);
  expect(await rm.json(), 'asked within the liveness timeout: still heard from, so leaving').toEqual({ node: victim, state: 'leaving' });
  expect(proc.exitCode).toBeNull();

  const stateOf = async (): Promise<string | undefined> => (await status(1)).cluster?.members.find((m) => m.node === victim)?.state;
  await eventually(async () => (await stateOf()) === 'removed', 60_000, 'the silent leaving member removed').catch(async (e: unknown) => {
    throw new Error(`${String(e)}: still ${await stateOf()}`);
  });
  const survivors = ids.slice(0, 2).sort((a, b) => a - b);
  await eventually(() => onTwo(survivors), 60_000, 'every shard on nodes 1 and 2');
  console.log(`leaving-dies: the frozen leaving member removed, every shard on two nodes, ${Date.now() - frozenAt} ms after it froze`);

  // Woken, it is refused by all; the members tell it that it was removed.
  proc.kill('SIGCONT');
  const code = await Promise.race([exited, sleep(60_000).then(() => 'still running')]);
  expect(code, c.node(3).output.slice(-3000)).toBe(3);
  expect(c.node(3).output).toMatch(/"code":"Removed"/);
  c.node(3).proc = undefined;
  await expect(c.startNode(3)).rejects.toThrow(/exited \(2\)[\s\S]*Removed/);
}, 240_000);
