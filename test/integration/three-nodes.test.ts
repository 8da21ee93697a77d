/**
 * Three real node processes over real Iroh (127.0.0.1) and LMDB: writes through every node,
 * linearizable reads from every node, a leader killed with SIGKILL, catch-up by log and by
 * snapshot after a restart, and every acknowledged write readable everywhere at the end.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { TestCluster, eventually, sleep } from './cluster.js';

// Compaction every 200 entries, so a node down for a while must catch up by snapshot.
const c = new TestCluster({ nodes: 3, shards: 4, extra: ['--compact-every-entries', '200', '--compact-keep-entries', '20'] });
beforeAll(() => c.start(), 90_000);
afterAll(() => c.close());

const acked = new Map<string, string>();

async function put(node: number, key: string, value: string): Promise<boolean> {
  const res = await fetch(`${c.node(node).url}/v1/kv/${encodeURIComponent(key)}`, { method: 'PUT', body: value }).catch(() => undefined);
  if (res?.status === 200) {
    acked.set(key, value);
    return true;
  }
  return false;
}

async function get(node: number, key: string): Promise<string | undefined> {
  const res = await fetch(`${c.node(node).url}/v1/kv/${encodeURIComponent(key)}`);
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw new Error(`GET ${key} from node ${node}: ${res.status} ${await res.text()}`);
  return res.text();
}

interface Status {
  node: number;
  router: { raftOut: number };
  shards: { shard: number; role: string; leader: number; applied: number; firstIndex: number }[];
}
const status = async (node: number): Promise<Status> => (await (await fetch(`${c.node(node).url}/v1/status`)).json()) as Status;

test('writes and linearizable reads through every node; a killed leader is replaced; the restarted node catches up', async () => {
  await eventually(
    async () => (await Promise.all([1, 2, 3].map((n) => fetch(`${c.node(n).url}/healthz`)))).every((r) => r.status === 200),
    60_000,
    'every shard has a leader',
  );

  // Writes through every node, reads from every node (each read must see every earlier write).
  for (let i = 0; i < 60; i++) {
    const via = 1 + (i % 3);
    expect(await put(via, `a${i}`, `v${i}`), `put a${i} via ${via}`).toBe(true);
    expect(await get(1 + ((i + 1) % 3), `a${i}`)).toBe(`v${i}`);
  }

  // Kill the node that leads the most shards.
  const st = await status(1);
  const leads = new Map<number, number>();
  for (const s of st.shards) leads.set(s.leader, (leads.get(s.leader) ?? 0) + 1);
  const victim = [...leads.entries()].sort((a, b) => b[1] - a[1])[0]![0];
  expect(victim).toBeGreaterThan(0);
  // Raft node ids follow the sorted endpoint ids, not the process order.
  const ids = await Promise.all([1, 2, 3].map(async (n) => (await status(n)).node));
  const victimIndex = ids.indexOf(victim) + 1;
  expect(victimIndex).toBeGreaterThan(0);
  await c.kill(victimIndex);
  const alive = [1, 2, 3].filter((n) => n !== victimIndex);

  // New leaders take over; writes continue through the survivors (enough to compact the logs).
  let written = 0;
  for (let i = 0; written < 900; i++) {
    if (await put(alive[i % 2]!, `b${i}`, `w${i}`)) written++;
    else await sleep(50);
  }
  const survivor = await status(alive[0]!);
  expect(survivor.shards.every((s) => s.leader !== victim && s.leader !== 0)).toBe(true);
  expect(Math.max(...survivor.shards.map((s) => s.firstIndex))).toBeGreaterThan(100); // compacted

  // Restart: it catches up (by snapshot, the log it missed is gone).
  await c.startNode(victimIndex);
  await eventually(
    async () => {
      const [mine, theirs] = await Promise.all([status(victimIndex), status(alive[0]!)]);
      return mine.shards.every((s) => s.applied >= theirs.shards.find((t) => t.shard === s.shard)!.applied - 5);
    },
    60_000,
    'the restarted node catches up',
  );

  // More writes through the restarted node, which is now a follower: forwarded to leaders.
  for (let i = 0; i < 30; i++) expect(await put(victimIndex, `c${i}`, `x${i}`)).toBe(true);

  // Every acknowledged write is readable from every node.
  for (const n of [1, 2, 3]) {
    for (const [k, v] of acked) expect(await get(n, k), `${k} on node ${n}`).toBe(v);
  }
  // The restarted node really installed a snapshot (its metrics count it).
  const metrics = await (await fetch(`${c.node(victimIndex).url}/metrics`)).text();
  expect(metrics).toMatch(/iroh_raft_host_snapshots_installed_total\{[^}]*\} [1-9]/);

  // Idle, every shard goes quiet: no raft messages at all between nodes (only node liveness).
  await eventually(
    async () => {
      const before = await Promise.all([1, 2, 3].map(async (n) => (await status(n)).router.raftOut));
      await sleep(1000);
      const after = await Promise.all([1, 2, 3].map(async (n) => (await status(n)).router.raftOut));
      return after.every((a, i) => a === before[i]);
    },
    30_000,
    'idle shards go quiet',
  );
  // A quiet cluster fails over too: kill the node leading the most shards while all is quiet;
  // node liveness wakes the followers, they elect new leaders, writes go on.
  const quiet = await status(1);
  const counts = new Map<number, number>();
  for (const s of quiet.shards) counts.set(s.leader, (counts.get(s.leader) ?? 0) + 1);
  const second = ids.indexOf([...counts.entries()].sort((a, b) => b[1] - a[1])[0]![0]) + 1;
  await c.kill(second);
  const rest = [1, 2, 3].filter((n) => n !== second);
  for (let i = 0; i < 20; i++) expect(await put(rest[i % 2]!, `q${i}`, `quiet${i}`), `q${i}`).toBe(true);
  for (const n of rest) for (let i = 0; i < 20; i++) expect(await get(n, `q${i}`)).toBe(`quiet${i}`);

  // Back after a short outage (logs not compacted since): it catches up from the log alone.
  await c.startNode(second);
  await eventually(
    async () => {
      const [mine, theirs] = await Promise.all([status(second), status(rest[0]!)]);
      return mine.shards.every((s) => s.applied >= theirs.shards.find((t) => t.shard === s.shard)!.applied);
    },
    60_000,
    'the second restarted node catches up',
  );
  const m2 = await (await fetch(`${c.node(second).url}/metrics`)).text();
  expect(m2).not.toMatch(/iroh_raft_host_snapshots_installed_total\{[^}]*\} [1-9]/);
  for (const [k, v] of acked) expect(await get(second, k), `${k} on node ${second}`).toBe(v);
});

test('answers name the shard and the node that served them (its leader), so a client can send the next request straight there', async () => {
  // Status of every node: raft id -> URL, and who leads each shard.
  const urlOf = new Map<number, string>();
  const procOf = new Map<number, number>();
  for (const i of [1, 2, 3]) {
    const id = (await status(i)).node;
    urlOf.set(id, c.node(i).url);
    procOf.set(id, i);
  }
  // Enter through the node leading the fewest shards (earlier tests may have left one node leading
  // all four), so that some keys are served elsewhere than where they entered.
  const leads = new Map<number, number>([...procOf.values()].map((i) => [i, 0]));
  for (const sh of (await status(1)).shards) if (procOf.has(sh.leader)) leads.set(procOf.get(sh.leader)!, leads.get(procOf.get(sh.leader)!)! + 1);
  const entry = [...leads].sort((a, b) => a[1] - b[1])[0]![0];
  let direct = 0;
  for (let k = 0; k < 24; k++) {
    const key = `served-${k}`;
    const res = await fetch(`${c.node(entry).url}/v1/kv/${key}`, { method: 'PUT', body: 'v' });
    expect(res.status).toBe(200);
    const shard = Number(res.headers.get('x-shard'));
    const node = Number(res.headers.get('x-node'));
    expect(Number.isInteger(shard) && shard >= 0 && shard < 4).toBe(true);
    // The named node leads the shard (no election runs here).
    const st = await status(procOf.get(node)!);
    expect(st.shards.find((s) => s.shard === shard)?.role).toBe('leader');
    // Straight to it: a write and a linearizable read it serves itself.
    const again = await fetch(`${urlOf.get(node)!}/v1/kv/${key}`, { method: 'PUT', body: 'w' });
    expect([again.status, again.headers.get('x-node')]).toEqual([200, String(node)]);
    const read = await fetch(`${urlOf.get(node)!}/v1/kv/${key}`);
    expect([read.status, read.headers.get('x-node'), read.headers.get('x-shard')]).toEqual([200, String(node), String(shard)]);
    if (procOf.get(node) !== entry) direct++;
  }
  // Some of the keys live on shards led elsewhere than the node they entered through.
  expect(direct).toBeGreaterThan(0);
}, 60_000);
