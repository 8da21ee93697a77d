/**
 * One worker thread of the node leading quiet shards dies for good (a crash loop), while the
 * node itself lives on and keeps talking: its healthy worker leads a shard under a steady stream
 * of writes. The node's liveness records say which worker is down, so the other nodes wake the
 * quiet followers of exactly the dead worker's shards: those elect a leader elsewhere within a
 * few election timeouts and take writes (through the crippled node too, which forwards them),
 * while the shards of the healthy worker keep their leader and term. When the worker comes back
 * it catches up. Real processes over real Iroh and LMDB; the crash loop is the test-only preload
 * crash-worker.cjs, armed by a marker file in the victim's data directory only.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { ShardHash } from '../../src/wire/shard-hash.js';
import { TestCluster, clusterHash, eventually, sleep } from './cluster.js';

const SHARDS = 12;
const WORKERS = 2;
const TICK_MS = 50;
/** The longest randomized election timeout: 2 x the default 10 ticks. */
const ELECTION_MS = 2 * 10 * TICK_MS;
const HOOK = new URL('./crash-worker.cjs', import.meta.url).pathname;

const c = new TestCluster({ nodes: 3, shards: SHARDS, workers: WORKERS, tickMs: TICK_MS, nodeArgs: ['--require', HOOK] });
/** The cluster's key -> shard function (keyed: read from the cluster). */
let hash: ShardHash;
beforeAll(async () => {
  await c.start();
  hash = await clusterHash(c.node(1).url);
}, 90_000);
afterAll(() => c.close());

interface Status {
  node: number;
  workersDown: number[];
  router: { raftOut: number };
  liveness: { workersDown: number; peers: { node: number; up: boolean; workers: number; workersDown: number[] }[] };
  shards: { shard: number; leader: number; term: number; applied: number }[];
}
const status = async (i: number): Promise<Status> => (await (await fetch(`${c.node(i).url}/v1/status`)).json()) as Status;

/** A key of the default tenant that lives in `shard`. */
function keyIn(shard: number, tag: string): string {
  for (let i = 0; ; i++) {
    const k = `${tag}-${i}`;
    if (hash.shardOf('default', new TextEncoder().encode(k), SHARDS) === shard) return k;
  }
}

async function put(i: number, key: string, value: string): Promise<number> {
  const res = await fetch(`${c.node(i).url}/v1/kv/${key}`, { method: 'PUT', body: value, signal: AbortSignal.timeout(15_000) }).catch(() => undefined);
  await res?.arrayBuffer();
  return res?.status ?? 0;
}

test("a quiet shard whose leader's worker crash-loops gets a new leader elsewhere; the node's other worker keeps leading", async () => {
  await eventually(
    async () => (await Promise.all([1, 2, 3].map((n) => fetch(`${c.node(n).url}/healthz`)))).every((r) => r.status === 200),
    60_000,
    'every shard has a leader',
  );
  // Every shard has a replica on every node: any node's status lists them all.
  const ids = await Promise.all([1, 2, 3].map(async (i) => (await status(i)).node));
  const indexOf = (node: number): number => ids.indexOf(node) + 1;

  // Let every shard go quiet: no raft message between nodes any more.
  await eventually(
    async () => {
      const before = await Promise.all([1, 2, 3].map(async (i) => (await status(i)).router.raftOut));
      await sleep(1500);
      const after = await Promise.all([1, 2, 3].map(async (i) => (await status(i)).router.raftOut));
      return after.every((a, i) => a === before[i]);
    },
    60_000,
    'idle shards go quiet',
  );

  // The victim: a node leading shards on both of its workers; the dead worker is one of them.
  const st = await status(1);
  const leaderOf = new Map(st.shards.map((s) => [s.shard, s.leader]));
  let victim = 0;
  let dead = -1;
  for (const node of ids) {
    const led = [...leaderOf].filter(([, l]) => l === node).map(([s]) => s);
    const on = (w: number): number[] => led.filter((s) => s % WORKERS === w);
    if (on(0).length > 0 && on(1).length > 0) {
      victim = node;
      dead = on(0).length <= on(1).length ? 0 : 1;
      break;
    }
  }
  expect(victim, `a node leading shards on both workers: ${JSON.stringify(st.shards)}`).toBeGreaterThan(0);
  const v = indexOf(victim);
  const others = [1, 2, 3].filter((i) => i !== v);
  const orphaned = [...leaderOf].filter(([s, l]) => l === victim && s % WORKERS === dead).map(([s]) => s);
  const kept = st.shards.filter((s) => s.leader === victim && s.shard % WORKERS !== dead);
  expect(orphaned.length).toBeGreaterThan(0);
  expect(kept.length).toBeGreaterThan(0);

  // The victim keeps talking to its peers: a steady stream of writes to a shard of its healthy
  // worker (sent through another node, forwarded to the victim, replicated from it).
  const busy = kept[0]!.shard;
  let writing = true;
  let written = 0;
  const failed: number[] = [];
  const writer = (async () => {
    for (let i = 0; writing; i++) {
      const code = await put(others[i % 2]!, keyIn(busy, `busy${i}`), `b${i}`);
      if (code === 200) written++;
      else failed.push(code);
      await sleep(20);
    }
  })();
  await eventually(() => Promise.resolve(written >= 10), 30_000, 'writes to the busy shard');

  // Worker `dead` of the victim crashes now, and on every restart the pool attempts.
  const marker = join(c.node(v).data, `crash-worker-${dead}`);
  writeFileSync(marker, '');
  const t0 = performance.now();
  try {
    // Its orphaned quiet shards get a leader on another node, seen from both healthy nodes.
    await eventually(
      async () => {
        const views = await Promise.all(others.map(status));
        return views.every((view) => orphaned.every((s) => ![0, victim].includes(view.shards.find((x) => x.shard === s)!.leader)));
      },
      30_000,
      'the orphaned shards elect a leader elsewhere',
    );
    const failoverMs = performance.now() - t0;
    // Crash (within 20 ms), one liveness record, a wake, then an election: a few election timeouts.
    expect(failoverMs, 'ms from the crash to a leader elsewhere').toBeLessThan(5 * ELECTION_MS);
    // A crash loop, not one restart: the pool keeps trying and failing.
    await eventually(
      async () => Number(/^iroh_raft_pool_worker_restarts_total (\d+)/m.exec(await (await fetch(`${c.node(v).url}/metrics`)).text())?.[1]) >= 3,
      10_000,
      'the worker crash-loops',
    );

    // The healthy nodes know which worker of the victim is down, and say so.
    for (const i of others) {
      const view = await status(i);
      expect(view.liveness.peers.find((p) => p.node === victim)).toEqual({ node: victim, up: true, workers: WORKERS, workersDown: [dead] });
      expect(view.liveness.workersDown).toBeGreaterThanOrEqual(1);
    }
    // The orphaned shards serve writes, through every node: the victim forwards them, since its
    // own replica is down.
    for (const s of orphaned) for (const i of [1, 2, 3]) expect(await put(i, keyIn(s, `orphan${i}`), `o${i}`), `shard ${s} via node ${i}`).toBe(200);

    // The shards of the healthy worker kept their leader and term throughout, seen from every node.
    for (const i of [1, 2, 3]) {
      const view = await status(i);
      expect(view.workersDown).toEqual(i === v ? [dead] : []);
      for (const k of kept)
        expect(
          view.shards.find((s) => s.shard === k.shard),
          `shard ${k.shard} on node ${i}`,
        ).toMatchObject({ leader: victim, term: k.term });
    }
    writing = false;
    await writer;
    expect(failed, 'writes to the busy shard that failed').toEqual([]);
  } finally {
    writing = false;
    rmSync(marker, { force: true });
  }

  // Disarmed: the worker comes back (at the pool's next restart attempt), its replicas catch up.
  await eventually(async () => (await status(v)).workersDown.length === 0, 30_000, 'the worker restarts');
  await eventually(async () => (await fetch(`${c.node(v).url}/healthz`)).status === 200, 30_000, 'the victim knows every leader again');
  for (const s of orphaned) {
    const res = await fetch(`${c.node(v).url}/v1/kv/${keyIn(s, 'orphan3')}`);
    expect(await res.text()).toBe('o3');
  }
});
