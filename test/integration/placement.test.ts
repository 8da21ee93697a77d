/**
 * The cluster's key -> shard function on real node processes (LMDB, Iroh on 127.0.0.1, HTTP):
 *
 * - a new cluster places client keys with the keyed hash under a key it created once: the key is
 *   in cluster.json and in `GET /v1/placement` (auth off: every caller is trusted), and a restart
 *   keeps it;
 * - the proof that it matters: 200 keys chosen so that the unkeyed function puts them all on
 *   shard 0 of 16 spread over the shards of a keyed node, and all land on shard 0 of a node whose
 *   directory predates the keyed hash;
 * - such a directory (written as the version before the keyed hash wrote it: keys placed by the
 *   unkeyed function, cluster.json without `placement`) is refused at start (exit 2,
 *   `UnkeyedPlacement`) unless `--unkeyed-placement allow` is given; allowed, it keeps the
 *   unkeyed function: every key written before is found, cluster.json records the choice, the log
 *   says once that placement is unkeyed;
 * - the way off it: `iroh-raft kv scan '' --json` piped into `iroh-raft kv load` copies its keys
 *   into a new cluster, where the aimed keys spread over the shards.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { decodeTicket } from '../../src/io/ticket.js';
import { KEYED_HASH, UNKEYED_HASH, keyedHash, shardOf } from '../../src/wire/shard-hash.js';
import { CLI, TestCluster, eventually, freeLowPort } from './cluster.js';

const SHARDS = 16;
const TENANT = 'default';
const enc = new TextEncoder();
const UNKEYED_WARNING = 'placement is unkeyed for this cluster';
const MISMATCH = "cluster.json's placement differs from the cluster's record";

/** 200 keys that the unkeyed function puts on shard 0 of SHARDS: what a tenant aiming at one shard would send. */
const GROUND: readonly string[] = (() => {
  const out: string[] = [];
  for (let i = 0; out.length < 200; i++) if (shardOf(TENANT, enc.encode(`aim-${i}`), SHARDS) === 0) out.push(`aim-${i}`);
  return out;
})();

interface PlacementAnswer {
  readonly hash: string;
  readonly placementKey?: string;
  readonly shards: number;
}
const placement = async (url: string): Promise<PlacementAnswer> => (await (await fetch(`${url}/v1/placement`)).json()) as PlacementAnswer;
const healthy = (url: string): Promise<void> => eventually(async () => (await fetch(`${url}/healthz`)).status === 200, 30_000, 'healthy');
const clusterJson = (data: string): { placement?: unknown } => JSON.parse(readFileSync(join(data, 'cluster.json'), 'utf8')) as { placement?: unknown };

/** PUTs each key (value `v:<key>`) and counts the keys per shard that served them (`x-shard`). */
async function putAll(url: string, keys: readonly string[]): Promise<{ perShard: number[]; shardOfKey: Map<string, number> }> {
  const perShard = new Array<number>(SHARDS).fill(0);
  const shardOfKey = new Map<string, number>();
  for (const key of keys) {
    const res = await fetch(`${url}/v1/kv/${key}`, { method: 'PUT', body: `v:${key}` });
    expect(res.status, await res.text()).toBe(200);
    const s = Number(res.headers.get('x-shard'));
    perShard[s] = perShard[s]! + 1;
    shardOfKey.set(key, s);
  }
  return { perShard, shardOfKey };
}

describe('a new cluster: the keyed hash', () => {
  const c = new TestCluster({ nodes: 1, shards: SHARDS, workers: 2 });
  beforeAll(() => c.start(), 60_000);
  afterAll(() => c.close());

  test('its key is created once, recorded in cluster.json, given by /v1/placement (auth off) and kept over a restart', async () => {
    const n = c.node(1);
    await healthy(n.url);
    const p = await placement(n.url);
    expect(p.hash).toBe(KEYED_HASH);
    expect(p.placementKey).toMatch(/^[0-9a-f]{32}$/);
    expect(clusterJson(n.data).placement).toEqual({ hash: KEYED_HASH, key: p.placementKey });
    expect(n.output).not.toContain(UNKEYED_WARNING);
    expect(await c.stop(1)).toBe(0);
    await c.startNode(1);
    // Known from cluster.json at start: the placement answers the same key before any read.
    expect((await placement(n.url)).placementKey).toBe(p.placementKey);
    await healthy(n.url);
    expect(clusterJson(n.data).placement).toEqual({ hash: KEYED_HASH, key: p.placementKey });
    expect(n.output).not.toContain(MISMATCH);
  }, 60_000);

  test("a cluster.json whose placement is not the cluster's record (copied, edited) is reported as an error at start", async () => {
    const n = c.node(1);
    const path = join(n.data, 'cluster.json');
    const good = readFileSync(path, 'utf8');
    expect(await c.stop(1)).toBe(0);
    const layout = JSON.parse(good) as { placement: { key: string } };
    writeFileSync(path, JSON.stringify({ ...layout, placement: { hash: KEYED_HASH, key: 'ab'.repeat(16) } }));
    try {
      await c.startNode(1);
      await eventually(() => Promise.resolve(n.output.includes(MISMATCH)), 30_000, 'the mismatch reported');
    } finally {
      expect(await c.stop(1)).toBe(0);
      writeFileSync(path, good);
      await c.startNode(1);
    }
  }, 60_000);

  test('200 keys aimed at one shard by the unkeyed function spread over the 16 shards; each lands where the keyed hash says', async () => {
    const n = c.node(1);
    await healthy(n.url);
    const { perShard, shardOfKey } = await putAll(n.url, GROUND);
    // Uniform would be 12.5 per shard; one third of the keys on a shard would be an attack that worked.
    expect(Math.max(...perShard), JSON.stringify(perShard)).toBeLessThanOrEqual(Math.floor(GROUND.length / 3));
    expect(perShard.filter((x) => x > 0).length, JSON.stringify(perShard)).toBeGreaterThanOrEqual(12);
    const h = keyedHash(Buffer.from((await placement(n.url)).placementKey ?? '', 'hex'));
    for (const [k, s] of shardOfKey) expect(s, k).toBe(h.shardOf(TENANT, enc.encode(k), SHARDS));
  }, 60_000);
});

describe('a data directory of the version before the keyed hash: refused, or the unkeyed hash kept when allowed', () => {
  const c = new TestCluster({ nodes: 1, shards: SHARDS, workers: 2, extra: ['--unkeyed-placement', 'allow'] });
  /** Keys written by the old layout: the aimed ones, and others on every shard. */
  const before = [...GROUND.slice(0, 50), ...Array.from({ length: 50 }, (_, i) => `before-${i}`)];

  beforeAll(async () => {
    const data = join(c.root, 'n1');
    const httpPort = await freeLowPort('tcp');
    const listenPort = await freeLowPort('udp');
    const t = spawnSync(process.execPath, [CLI, 'ticket', '--data', data, '--listen', `127.0.0.1:${listenPort}`], { encoding: 'utf8' });
    expect(t.status, t.stderr).toBe(0);
    const ticket = t.stdout.trim();
    const script = new URL('./legacy-dir.ts', import.meta.url).pathname;
    const made = spawnSync(process.execPath, ['--import', 'tsx', script, data, decodeTicket(ticket).id, String(SHARDS), '2', JSON.stringify(before)], {
      encoding: 'utf8',
    });
    expect(made.status, made.stderr).toBe(0);
    expect(clusterJson(data).placement).toBeUndefined();
    // Without the flag: refused before anything starts, with the ways on.
    const refused = spawnSync(
      process.execPath,
      [CLI, 'start', '--data', data, '--http', `127.0.0.1:${httpPort}`, '--listen', `127.0.0.1:${listenPort}`, '--shards', String(SHARDS), '--workers', '2'],
      {
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    expect(refused.status, refused.stderr).toBe(2);
    expect(refused.stderr).toMatch(/"code":"UnkeyedPlacement"/);
    expect(refused.stderr).toMatch(/--unkeyed-placement allow/);
    expect(refused.stderr).toMatch(/kv load/);
    expect(clusterJson(data).placement).toBeUndefined();
    c.nodes.push({ index: 1, data, httpPort, listenPort, url: `http://127.0.0.1:${httpPort}`, ticket, proc: undefined, output: '' });
    await c.startNode(1);
  }, 90_000);
  afterAll(() => c.close());

  test('every key written before is found; the cluster records the unkeyed hash; the log says so once', async () => {
    const n = c.node(1);
    await healthy(n.url);
    for (const key of before) {
      const res = await fetch(`${n.url}/v1/kv/${key}`);
      expect(res.status, key).toBe(200);
      expect(await res.text()).toBe(`v:${key}`);
      expect(Number(res.headers.get('x-shard')), key).toBe(shardOf(TENANT, enc.encode(key), SHARDS));
    }
    const p = await placement(n.url);
    expect(p.hash).toBe(UNKEYED_HASH);
    expect(p).not.toHaveProperty('placementKey');
    expect(clusterJson(n.data).placement).toEqual({ hash: UNKEYED_HASH });
    // Its `_system` records (the placement record among them) stay on the data shards they were written to.
    expect(clusterJson(n.data)).not.toHaveProperty('system');
    expect(n.output.split(UNKEYED_WARNING).length - 1).toBe(1);
  }, 60_000);

  test('the aimed keys all land on shard 0 (what the keyed hash prevents); a restart keeps the unkeyed hash and the data', async () => {
    const n = c.node(1);
    const { perShard } = await putAll(n.url, GROUND);
    expect(perShard[0]).toBe(GROUND.length);
    expect(await c.stop(1)).toBe(0);
    await c.startNode(1);
    await healthy(n.url);
    expect((await placement(n.url)).hash).toBe(UNKEYED_HASH);
    expect(n.output.split(UNKEYED_WARNING).length - 1).toBe(1);
    for (const key of before.slice(50)) expect(await (await fetch(`${n.url}/v1/kv/${key}`)).text()).toBe(`v:${key}`);
  }, 60_000);

  test('kv scan --json piped into kv load copies every key into a new cluster, where the aimed keys spread', async () => {
    const fresh = new TestCluster({ nodes: 1, shards: SHARDS, workers: 2 });
    try {
      await fresh.start();
      await healthy(fresh.node(1).url);
      const dump = spawnSync(process.execPath, [CLI, 'kv', 'scan', '', '--json', '--via', c.node(1).url], { encoding: 'buffer', timeout: 60_000 });
      expect(dump.status, dump.stderr.toString()).toBe(0);
      const load = spawnSync(process.execPath, [CLI, 'kv', 'load', '--via', fresh.node(1).url], { input: dump.stdout, encoding: 'utf8', timeout: 60_000 });
      expect(load.status, load.stderr).toBe(0);
      const all = [...new Set([...before, ...GROUND])];
      expect(JSON.parse(load.stdout)).toEqual({ loaded: all.length });
      const perShard = new Array<number>(SHARDS).fill(0);
      for (const key of all) {
        const res = await fetch(`${fresh.node(1).url}/v1/kv/${key}`);
        expect(res.status, key).toBe(200);
        expect(await res.text()).toBe(`v:${key}`);
        const sh = Number(res.headers.get('x-shard'));
        perShard[sh] = perShard[sh]! + 1;
      }
      expect(Math.max(...perShard), JSON.stringify(perShard)).toBeLessThanOrEqual(Math.floor(all.length / 3));
    } finally {
      await fresh.close();
    }
  }, 120_000);
});
