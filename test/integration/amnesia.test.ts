/**
 * The amnesia guard with real processes: a node of a three-node cluster loses its stores (its
 * worker directories deleted, as with a lost disk) but keeps the rest of its data directory, its
 * node key among it. Started again, it refuses (exit 2, StoresLost) instead of running as a
 * founding replica with an empty log that could help elect a leader lacking committed writes; the
 * other two serve on, and every acknowledged write is still there.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { TestCluster } from './cluster.js';

const c = new TestCluster({ nodes: 3, shards: 4 });
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

describe('amnesia guard', () => {
  test('a node whose stores are gone but whose key is kept refuses to start; the others serve on', async () => {
    for (let i = 0; i < 20; i++) await putUntilOk(c.node(1).url, `before/${i}`, String(i));
    const n3 = c.node(3);
    const layout = JSON.parse(readFileSync(join(n3.data, 'cluster.json'), 'utf8')) as { workers?: number };
    expect(layout.workers).toBe(1);

    // A restart with its stores intact is fine.
    expect(await c.stop(3)).toBe(0);
    await c.startNode(3);
    expect(await c.stop(3)).toBe(0);

    const stores = readdirSync(n3.data).filter((f) => f.startsWith('worker-'));
    expect(stores.length).toBe(1);
    for (const s of stores) rmSync(join(n3.data, s), { recursive: true });
    expect(existsSync(join(n3.data, 'node.key'))).toBe(true);

    const r = spawnSync(process.execPath, c.args(n3), { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(2);
    const err = (JSON.parse(r.stderr.trim().split('\n')[0] ?? '{}') as { error: { code: string; message: string } }).error;
    expect(err.code).toBe('StoresLost');
    expect(err.message).toContain('worker-0');
    // It created nothing in place of the lost store.
    expect(readdirSync(n3.data).filter((f) => f.startsWith('worker-'))).toEqual([]);

    // The two others still make a quorum of every shard: writes go on, nothing acknowledged is lost.
    for (let i = 0; i < 5; i++) await putUntilOk(c.node(2).url, `after/${i}`, String(i));
    for (let i = 0; i < 20; i++) expect(await (await fetch(`${c.node(2).url}/v1/kv/before/${i}`)).text()).toBe(String(i));
  }, 120_000);
});
