/**
 * A rolling restart under load, as an operator upgrades a cluster: three real nodes, a client
 * writing through every node all along, each node in turn stopped with SIGTERM (it hands its
 * leaderships over first) and started again, the next one only once the restarted node is ready.
 * Every acknowledged write reads back from every node's own replica at the end, and the cluster's
 * members are still the same three, up.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { TestCluster, eventually, sleep } from './cluster.js';

const c = new TestCluster({ nodes: 3, shards: 8, tickMs: 50, extra: ['--meta-poll-ms', '300'] });
beforeAll(() => c.start(), 90_000);
afterAll(() => c.close());

const acked = new Map<string, string>();
const stats = { attempts: 0, failed: 0 };
let writing = true;
const down = new Set<number>();

async function writer(): Promise<void> {
  for (let i = 0; writing; i++) {
    const up = [1, 2, 3].filter((n) => !down.has(n));
    const n = up[i % up.length]!;
    const key = `r${i}`;
    stats.attempts++;
    const res = await fetch(`${c.node(n).url}/v1/kv/${key}`, { method: 'PUT', body: `v${i}`, signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
    if (res?.status === 200) acked.set(key, `v${i}`);
    else stats.failed++;
    await sleep(5);
  }
}

const ready = (n: number): Promise<void> => eventually(async () => (await fetch(`${c.node(n).url}/healthz`)).status === 200, 60_000, `node ${n} ready`);

test('a rolling restart of every node under load loses no acknowledged write', async () => {
  for (const n of [1, 2, 3]) await ready(n);
  const w = writer();
  await sleep(1000);
  for (const n of [1, 2, 3]) {
    // Taken out of the client's rotation first, as a load balancer would.
    down.add(n);
    await sleep(100);
    expect(await c.stop(n)).toBe(0);
    await sleep(500);
    await c.startNode(n);
    await ready(n);
    down.delete(n);
    await sleep(1000);
  }
  writing = false;
  await w;
  console.log(`rolling restart: ${acked.size} writes acknowledged of ${stats.attempts} attempts (${stats.failed} failed)`);
  expect(acked.size).toBeGreaterThan(200);
  for (const n of [1, 2, 3]) {
    let bad: string | undefined = 'not checked';
    await eventually(
      async () => {
        for (const [k, v] of acked) {
          const res = await fetch(`${c.node(n).url}/v1/kv/${k}?consistency=stale`);
          const got = res.status === 200 ? await res.text() : `HTTP ${res.status}`;
          if (got !== v) {
            bad = `${k} on node ${n}: ${got}`;
            return false;
          }
        }
        bad = undefined;
        return true;
      },
      30_000,
      `every acknowledged write on node ${n}`,
    ).catch(() => undefined);
    expect(bad).toBeUndefined();
  }
  const s = (await (await fetch(`${c.node(1).url}/v1/status`)).json()) as { cluster: { members: { state: string }[] } };
  expect(s.cluster.members.map((m) => m.state)).toEqual(['up', 'up', 'up']);
}, 240_000);
