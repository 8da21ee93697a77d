/**
 * The amnesia guard with real processes: a node of a three-node cluster loses its stores (its
 * worker directories deleted, as with a lost disk) but keeps the rest of its data directory, its
 * node key among it. Started again, it never runs as the replica it was (a founding replica with an
 * empty log could help elect a leader lacking committed writes): it moves what is left aside and
 * rejoins under a new raft id, its old id is declared dead and then removed, every shard gets
 * three voters again (the new id among them), and every acknowledged write reads back from its
 * own new replicas. The same when everything but the key is lost (cluster.json too): the key
 * remembers that this identity has served.
 */
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { TestCluster, eventually, statusWithMeta } from './cluster.js';

const c = new TestCluster({ nodes: 3, shards: 4, extra: ['--meta-poll-ms', '300'] });
beforeAll(() => c.start(), 60_000);
afterAll(() => c.close());

async function putUntilOk(url: string, key: string, value: string): Promise<void> {
  for (let i = 0; ; i++) {
    const r = await fetch(`${url}/v1/kv/${key}`, { method: 'PUT', body: value });
    if (r.status === 200) return;
    expect(i, `PUT ${key}: ${r.status}`).toBeLessThan(100);
    await new Promise((res) => setTimeout(res, 100));
  }
}

interface Status {
  node: number;
  shards: { shard: number; voters: number[]; learners: number[] }[];
  cluster: { members: { node: number; id: string; state: string }[] } | null;
}
const status = (n: number): Promise<Status> => statusWithMeta<Status>(c.node(n).url);

/** Waits until nodes 1-3 each see every shard (4 and the meta group) on exactly `voters` (JSON, sorted), with no learners. */
async function everyShardOn(voters: string): Promise<void> {
  await eventually(
    async () => {
      for (const n of [1, 2, 3]) {
        const s = await status(n);
        if (s.shards.length !== 5 || s.shards.some((x) => JSON.stringify(x.voters) !== voters || x.learners.length > 0)) return false;
      }
      return true;
    },
    60_000,
    `every shard on voters ${voters}`,
  );
}
describe('amnesia guard', () => {
  test('a node whose stores are gone but whose key is kept comes back as a new replica, never as its old self', async () => {
    for (let i = 0; i < 20; i++) await putUntilOk(c.node(1).url, `before/${i}`, String(i));
    const n3 = c.node(3);
    const layout = JSON.parse(readFileSync(join(n3.data, 'cluster.json'), 'utf8')) as { workers?: number };
    expect(layout.workers).toBe(1);
    const oldId = (await status(3)).node;

    // A restart with its stores intact is fine: the same raft id.
    expect(await c.stop(3)).toBe(0);
    await c.startNode(3);
    expect((await status(3)).node).toBe(oldId);
    expect(await c.stop(3)).toBe(0);

    const stores = readdirSync(n3.data).filter((f) => f.startsWith('worker-'));
    expect(stores.length).toBe(1);
    for (const s of stores) rmSync(join(n3.data, s), { recursive: true });
    expect(existsSync(join(n3.data, 'node.key'))).toBe(true);
    // Written while node 3 is down: it must get them from the others.
    for (let i = 0; i < 5; i++) await putUntilOk(c.node(2).url, `after/${i}`, String(i));

    await c.startNode(3);
    const newId = (await status(3)).node;
    expect(newId).toBeGreaterThan(3);
    expect(n3.output).toMatch(/rejoins its cluster as a new replica/);
    await eventually(
      async () => {
        const s = await status(1);
        const states = s.cluster?.members.map((m) => `${m.node}:${m.state}`) ?? [];
        return states.includes(`${oldId}:removed`) && states.includes(`${newId}:up`);
      },
      60_000,
      'the old id removed, the new one up',
    );
    const want = JSON.stringify(
      [1, 2, newId]
        .filter((n) => n !== oldId)
        .concat(oldId === 3 ? [] : [3])
        .sort((a, b) => a - b),
    );
    await everyShardOn(want);
    // Its own new replicas hold every acknowledged write.
    for (const k of [...Array.from({ length: 20 }, (_, i) => `before/${i}`), ...Array.from({ length: 5 }, (_, i) => `after/${i}`)])
      expect(await (await fetch(`${n3.url}/v1/kv/${k}?consistency=stale`)).text()).toBe(k.split('/')[1]);
    // What was left of its stores went aside, not away.
    expect(readdirSync(n3.data).filter((f) => f.startsWith('retired-'))).toHaveLength(1);

    // Everything lost but the key (its stores, cluster.json, meta.json, peers.json), restarted with
    // its original --peers: the key's mark says it has served, so it must not found again as the
    // voter of its founding layout; it asks the members who it is now and rejoins as a new replica.
    expect(readFileSync(join(n3.data, 'node.key'), 'utf8')).toMatch(/^[0-9a-f]{64}\nserved\n$/);
    expect(await c.stop(3)).toBe(0);
    for (const f of readdirSync(n3.data)) if (f !== 'node.key') rmSync(join(n3.data, f), { recursive: true });
    for (let i = 0; i < 5; i++) await putUntilOk(c.node(1).url, `wiped/${i}`, String(i));
    await c.startNode(3);
    const third = (await status(3)).node;
    expect(third).toBeGreaterThan(newId);
    await eventually(
      async () => {
        const states = (await status(1)).cluster?.members.map((m) => `${m.node}:${m.state}`) ?? [];
        return states.includes(`${newId}:removed`) && states.includes(`${third}:up`);
      },
      60_000,
      'the second id removed, the third up',
    );
    const again = JSON.stringify([...(JSON.parse(want) as number[]).filter((n) => n !== newId), third].sort((a, b) => a - b));
    await everyShardOn(again);
    const all = [
      ...Array.from({ length: 20 }, (_, i) => `before/${i}`),
      ...Array.from({ length: 5 }, (_, i) => `after/${i}`),
      ...Array.from({ length: 5 }, (_, i) => `wiped/${i}`),
    ];
    for (const k of all) expect(await (await fetch(`${n3.url}/v1/kv/${k}?consistency=stale`)).text()).toBe(k.split('/')[1]);
  }, 240_000);
});
