/**
 * Exactly once across retries and node restarts, with real node processes over real Iroh and
 * LMDB: many concurrent writers write distinct keys (each once) through the client while the node
 * leading the most shards is SIGKILLed and restarted. Writes in flight when it died are retried by
 * the client on other nodes under their original session (client id, seq), so one that the dead
 * leader had already replicated (and the new leader commits) is answered from the shard's session
 * table instead of being applied again: every acknowledged key ends at version 1.
 *
 * And the server side alone: the same (x-client-id, x-client-seq) PUT sent to two different nodes
 * applies once, and the second answer is the first's.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Client, ClientError } from '../../src/client/index.js';
import { KEYED_HASH } from '../../src/wire/index.js';
import { TestCluster, eventually, sleep } from './cluster.js';

const c = new TestCluster({ nodes: 3, shards: 6 });
beforeAll(async () => {
  await c.start();
  await eventually(async () => (await Promise.all([1, 2, 3].map((n) => fetch(`${c.node(n).url}/healthz`)))).every((r) => r.status === 200), 60_000, 'leaders');
}, 90_000);
afterAll(() => c.close());

const urls = (): string[] => [1, 2, 3].map((n) => c.node(n).url);

interface Placement {
  node: number;
  shards: number;
  hash: string;
  placementKey?: string;
  leaders: (number | null)[];
}
const placement = async (n: number): Promise<Placement> => (await (await fetch(`${c.node(n).url}/v1/placement`)).json()) as Placement;

test('GET /v1/placement: each node names itself (as in /v1/status), the shard count, the keyed hash with one key (auth off), and the same leaders', async () => {
  const ps = await Promise.all([1, 2, 3].map(placement));
  for (const [i, p] of ps.entries()) {
    const st = (await (await fetch(`${c.node(i + 1).url}/v1/status`)).json()) as { node: number };
    expect(p).toMatchObject({ node: st.node, shards: 6, replicas: 3, hash: KEYED_HASH });
    expect(p.placementKey).toMatch(/^[0-9a-f]{32}$/);
    expect(p.leaders).toHaveLength(6);
  }
  // One key for the cluster, whichever node wrote it first.
  expect(new Set(ps.map((p) => p.placementKey)).size).toBe(1);
  expect(new Set(ps.map((p) => p.node)).size).toBe(3);
  // Settled: every node knows every shard's leader, and they agree.
  await eventually(
    async () => {
      const now = await Promise.all([1, 2, 3].map(placement));
      return now.every((p) => p.leaders.every((l) => l !== null) && JSON.stringify(p.leaders) === JSON.stringify(now[0]!.leaders));
    },
    20_000,
    'leaders agreed',
  );
});

test('the same client session sent to two nodes applies once; the second answer repeats the first', async () => {
  const session = { 'x-client-id': String(2 ** 52 + 4242), 'x-client-seq': '1' };
  const put = (n: number, body: string): Promise<Response> => fetch(`${c.node(n).url}/v1/kv/twice`, { method: 'PUT', body, headers: session });
  const first = await put(1, 'one');
  expect(first.status).toBe(200);
  expect(await first.json()).toEqual({ version: 1 });
  // Another node, another body even: the shard recognises the session and answers as before.
  const second = await put(2, 'two');
  expect(second.status).toBe(200);
  expect(await second.json()).toEqual({ version: 1 });
  const read = await fetch(`${c.node(3).url}/v1/kv/twice`);
  expect(read.headers.get('x-version')).toBe('1');
  expect(await read.text()).toBe('one');
  // An older sequence of the same client is refused; a new one applies.
  const next = await fetch(`${c.node(3).url}/v1/kv/twice`, { method: 'PUT', body: 'three', headers: { ...session, 'x-client-seq': '2' } });
  expect(await next.json()).toEqual({ version: 2 });
  const stale = await fetch(`${c.node(1).url}/v1/kv/twice`, { method: 'PUT', body: 'old', headers: session });
  expect(stale.status).toBe(409);
  expect(((await stale.json()) as { error: { code: string } }).error.code).toBe('SessionSeqStale');
});

test('writes retried across a SIGKILLed and restarted shard leader apply exactly once', async () => {
  const client = new Client({ endpoints: urls(), timeoutMs: 45_000 });
  // The victim: the node leading the most shards (raft ids follow the sorted endpoint ids, not the process order).
  const ps = await Promise.all([1, 2, 3].map(placement));
  const counts = new Map<number, number>();
  for (const l of ps[0]!.leaders) if (l !== null) counts.set(l, (counts.get(l) ?? 0) + 1);
  const victimId = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]![0];
  const victim = ps.findIndex((p) => p.node === victimId) + 1;
  expect(victim).toBeGreaterThan(0);

  const acked: string[] = [];
  /** Keys whose write was answered with another version than 1 (applied more than once). */
  const answeredTwice: { key: string; version: number }[] = [];
  const failed: { key: string; code: string }[] = [];
  const WRITERS = 48;
  const PER_WRITER = 50;
  let done = 0;
  const writer = async (w: number): Promise<void> => {
    for (let i = 0; i < PER_WRITER; i++) {
      const key = `eo/${w}/${i}`;
      try {
        const r = await client.put(key, `value ${w} ${i}`);
        if (r.version !== 1) answeredTwice.push({ key, version: r.version });
        acked.push(key);
      } catch (e) {
        if (!(e instanceof ClientError)) throw e;
        failed.push({ key, code: e.code });
      }
      done++;
    }
  };
  const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
  // Kill mid-run, while writes stream to the leader, then bring it back.
  await eventually(() => Promise.resolve(done >= 300), 60_000, '300 writes');
  await c.kill(victim);
  await sleep(1500);
  await c.startNode(victim);
  await Promise.all(writers);

  expect(failed).toEqual([]);
  expect(answeredTwice).toEqual([]);
  expect(acked.length).toBe(WRITERS * PER_WRITER);
  // Every acknowledged key was applied once: version 1 (a write applied twice would be at 2).
  const versions = new Map<string, number>();
  for (let i = 0; i < acked.length; i += 64) {
    await Promise.all(
      acked.slice(i, i + 64).map(async (key) => {
        const g = await client.get(key);
        versions.set(key, g?.version ?? 0);
      }),
    );
  }
  const wrong = [...versions].filter(([, v]) => v !== 1);
  expect(wrong).toEqual([]);
  await client.close();
}, 180_000);
