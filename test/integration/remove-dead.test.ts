/**
 * `iroh-raft members remove` of a member that is gone for good, with real processes: three
 * founders and a fourth node started with `--join`, four shards of three replicas (and the meta
 * group on all four), a client writing all along. The victim is the leader of the meta group
 * once replicas have spread (so the removal itself waits for a new one); it holds replicas of
 * several shards when it is SIGKILLed for good, the client writing through the three others. The
 * nodes keep the default `--dead-node-timeout-ms` (5 minutes), so the timer cannot be what acts.
 * The operator runs `members remove <raft id>` against a survivor: the answer says `dead`, the
 * member becomes `removed`, and every shard and the meta group are back to three voters on the
 * survivors well within the test's 90 s deadline, with every acknowledged write on each
 * survivor's own replica. Its directory started again learns from the members that it was
 * removed and stops (exit 3); the next start is refused (exit 2).
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { CLI, TestCluster, eventually, sleep, staleReadsBack, statusWithMeta } from './cluster.js';

const SHARDS = 4;
/** Longer than the test takes to rebuild, far shorter than the default dead-node timeout (300 s). */
const REBUILD_DEADLINE_MS = 90_000;
const c = new TestCluster({ nodes: 3, shards: SHARDS, tickMs: 50, extra: ['--meta-poll-ms', '300', '--leader-balance-ms', '1000'] });
beforeAll(() => c.start(), 90_000);
afterAll(() => c.close());

interface Status {
  node: number;
  shards: { shard: number; role: string; voters: number[]; learners: number[] }[];
  cluster: { members: { node: number; id: string; state: string }[]; moves: unknown[] } | null;
  liveness: { peers: { node: number; up: boolean }[] };
}
const status = (n: number): Promise<Status> => statusWithMeta<Status>(c.node(n).url);

const acked = new Map<string, string>();
/** When each acknowledged write was acknowledged (Date.now()). */
const ackedAt: number[] = [];
let failed = 0;
let writing = true;
/** The nodes (indexes) the client writes through: the founders, then the victim's survivors. */
let targets = [1, 2, 3];
async function writer(): Promise<void> {
  for (let i = 0; writing; i++) {
    const key = `d${i}`;
    const res = await fetch(`${c.node(targets[i % targets.length]!).url}/v1/kv/${key}`, {
      method: 'PUT',
      body: `v${i}`,
      signal: AbortSignal.timeout(10_000),
    }).catch(() => undefined);
    if (res?.status === 200) {
      acked.set(key, `v${i}`);
      ackedAt.push(Date.now());
    } else failed++;
    await sleep(10);
  }
}

/**
 * Every shard and the meta group with exactly the voters `want` (the meta group: all of them, up
 * to five), no learners, no moves under way, as each of `nodes` sees its own replicas; undefined
 * otherwise. Per node: the replicas it hosts and the shards it leads.
 */
async function settled(nodes: number[], want: number[]): Promise<{ replicas: number[]; leads: number[][] } | undefined> {
  const replicas: number[] = [];
  const leads: number[][] = [];
  const sets = new Map<number, string>();
  for (const n of nodes) {
    const s = await status(n);
    if ((s.cluster?.moves.length ?? 1) > 0) return undefined;
    replicas.push(s.shards.length);
    leads.push(s.shards.filter((x) => x.role === 'leader').map((x) => x.shard));
    for (const sh of s.shards) {
      const size = sh.shard === SHARDS ? Math.min(5, want.length) : 3;
      if (sh.learners.length > 0 || sh.voters.length !== size || !sh.voters.every((v) => want.includes(v))) return undefined;
      const v = JSON.stringify(sh.voters);
      if ((sets.get(sh.shard) ?? v) !== v) return undefined;
      sets.set(sh.shard, v);
    }
  }
  if (sets.size !== SHARDS + 1 || replicas.reduce((a, b) => a + b, 0) !== 3 * SHARDS + Math.min(5, want.length)) return undefined;
  return { replicas, leads };
}

async function dump(nodes: number[]): Promise<string> {
  const views = await Promise.all(
    nodes.map(async (n) => {
      const s = await status(n);
      return `node ${n}: ${JSON.stringify(s.shards.map((x) => [x.shard, x.role, x.voters, x.learners]))} members ${JSON.stringify(s.cluster?.members.map((m) => `${m.node}:${m.state}`))} moves ${JSON.stringify(s.cluster?.moves)}`;
    }),
  );
  return views.join('\n');
}

const readsBack = (n: number): Promise<string | undefined> => staleReadsBack(c.node(n).url, acked);

/** `iroh-raft members ...` through node `via`, as an operator types it. */
function members(via: number, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [CLI, 'members', ...args, '--via', c.node(via).url], { encoding: 'utf8' });
}

/** The victim's state in `members --json` through node `via`. */
function stateOf(via: number, node: number): string | undefined {
  const r = members(via, '--json');
  if (r.status !== 0) return undefined;
  return (JSON.parse(r.stdout) as { members: { node: number; state: string }[] }).members.find((m) => m.node === node)?.state;
}

test('members remove of a SIGKILLed member: declared dead, its replicas rebuilt on the survivors long before the dead-node timeout; every write kept; its directory refused', async () => {
  await eventually(async () => (await Promise.all([1, 2, 3].map((n) => fetch(`${c.node(n).url}/healthz`)))).every((r) => r.status === 200), 60_000, 'healthy');
  const w = writer();
  const all = [1, 2, 3, await c.join(1)];
  const raftIds = await Promise.all(all.map(async (n) => (await status(n)).node));
  let spread: Awaited<ReturnType<typeof settled>>;
  await eventually(async () => (spread = await settled(all, raftIds)) !== undefined, 120_000, 'replicas spread over four nodes').catch(async (e: unknown) => {
    throw new Error(`${String(e)}\n${await dump(all)}`);
  });
  // The victim: the meta group's leader.
  const victim = all[spread!.leads.findIndex((l) => l.includes(SHARDS))]!;
  const raftId = raftIds[all.indexOf(victim)]!;
  const survivors = all.filter((n) => n !== victim);
  const [via, other] = [survivors[0]!, survivors[2]!];
  targets = survivors;
  const victimShards = (await status(victim)).shards.map((x) => x.shard);
  console.log(
    `remove-dead: four nodes, replicas per node ${spread!.replicas.join('/')}; victim: node ${victim} (raft id ${raftId}), hosts shards ${victimShards.join(',')} (${SHARDS} is the meta group), leads ${spread!.leads[all.indexOf(victim)]!.join(',')}`,
  );
  expect(victimShards).toContain(SHARDS);
  expect(victimShards.filter((s) => s < SHARDS).length).toBeGreaterThanOrEqual(2);
  const victimId = (await status(via)).cluster!.members.find((m) => m.node === raftId)!.id;

  await eventually(() => Promise.resolve(acked.size >= 100), 60_000, '100 writes acknowledged before the kill');
  await c.kill(victim);
  const killedAt = Date.now();
  // The operator removes a machine the cluster no longer hears from (as `members` shows it).
  await eventually(
    async () => (await status(via)).liveness.peers.find((p) => p.node === raftId)?.up === false,
    30_000,
    'the survivor notices the victim is gone',
  );
  const removedAt = Date.now();
  const rm = members(via, 'remove', String(raftId));
  expect(rm.status, rm.stderr).toBe(0);
  expect(JSON.parse(rm.stdout)).toEqual({ node: raftId, state: 'dead' });
  // The node that made the change lists it at once, without waiting for its next read of the record.
  const listed = (await (await fetch(`${c.node(via).url}/v1/members`)).json()) as { members: { node: number; state: string }[] };
  // Dead, or already removed: the targets the removal replanned name it nowhere, so the meta group's
  // leader may record it removed within one round, before this request.
  const listedState = listed.members.find((m) => m.node === raftId)?.state;
  expect(['dead', 'removed']).toContain(listedState);

  // Dead, then removed once no target names it; never leaving, never up again. Asked of the node
  // that made the change (another shows it at its next read of the record).
  const seen: string[] = ['dead', ...(listedState === 'removed' ? ['removed'] : [])];
  await eventually(
    () => {
      const s = stateOf(via, raftId);
      if (s !== undefined && s !== seen.at(-1)) seen.push(s);
      return Promise.resolve(s === 'removed');
    },
    REBUILD_DEADLINE_MS,
    'the victim removed',
  );
  expect(seen).toEqual(['dead', 'removed']);
  // The same removal asked again, by endpoint id: nothing left to do, the answer says so.
  await eventually(() => Promise.resolve(stateOf(other, raftId) === 'removed'), 10_000, 'another survivor reads the removal');
  const again = members(other, 'remove', victimId);
  expect(again.status, again.stderr).toBe(0);
  expect(JSON.parse(again.stdout)).toEqual({ node: raftId, state: 'removed' });

  let back: Awaited<ReturnType<typeof settled>>;
  const survivorIds = raftIds.filter((x) => x !== raftId).sort((a, b) => a - b);
  await eventually(
    async () => (back = await settled(survivors, survivorIds)) !== undefined,
    REBUILD_DEADLINE_MS - (Date.now() - removedAt),
    'three voters of every shard on the survivors',
  ).catch(async (e: unknown) => {
    throw new Error(`${String(e)}\n${await dump(survivors)}`);
  });
  const rebuiltMs = Date.now() - removedAt;
  const duringRebuild = ackedAt.filter((t) => t >= killedAt).length;
  writing = false;
  await w;
  console.log(
    `remove-dead: victim noticed gone ${removedAt - killedAt} ms after SIGKILL; every shard back to three voters on the survivors ${rebuiltMs} ms after members remove (replicas per node ${back!.replicas.join('/')}); writes acknowledged ${acked.size} (${duringRebuild} between the SIGKILL and the rebuild), failed ${failed}`,
  );
  // The survivors kept taking writes while the victim's replicas were rebuilt.
  expect(duringRebuild).toBeGreaterThan(0);
  for (const n of survivors) {
    let bad: string | undefined = 'not checked';
    await eventually(async () => (bad = await readsBack(n)) === undefined, 30_000, `writes on node ${n}`).catch(() => undefined);
    expect(bad).toBeUndefined();
  }
  const list = members(via);
  expect(list.status, list.stderr).toBe(0);
  expect(list.stdout).toMatch(new RegExp(`^${raftId}\\s+removed\\s+${victimId}`, 'm'));
  expect(list.stdout).toMatch(/no replica moves under way/);
  const final = (await status(via)).cluster?.members.map((m) => `${m.node}:${m.state}`).sort();
  expect(final).toEqual([...survivorIds.map((x) => `${x}:up`), `${raftId}:removed`].sort());

  // The victim's directory comes back: refused by every member, it asks them, learns it was
  // removed and stops.
  let listening: number | undefined;
  const started = c.startNode(victim).then(
    () => ((listening = performance.now()), 'listening'),
    (e: unknown) => String(e),
  );
  const exit = new Promise<number | null>((r) => c.node(victim).proc!.once('exit', (code) => r(code)));
  const code = await Promise.race([exit, sleep(60_000).then(() => 'still running')]);
  const servedMs = listening === undefined ? 0 : Math.round(performance.now() - listening);
  console.log(
    `remove-dead: the victim's directory started again: ${await Promise.race([started, sleep(0).then(() => 'pending')])}, exit ${String(code)}, ${servedMs} ms from listening to its exit`,
  );
  expect(code, c.node(victim).output.slice(-3000)).toBe(3);
  expect(c.node(victim).output).toMatch(/"code":"Removed"/);
  c.node(victim).proc = undefined;
  // From then on its directory is refused at once.
  await expect(c.startNode(victim)).rejects.toThrow(/exited \(2\)[\s\S]*Removed/);
}, 400_000);
