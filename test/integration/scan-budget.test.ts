/**
 * The scan fan-out budget on a real node: many concurrent scans over many shards, with a small
 * node-wide budget and a short deadline, cross the bound. The scans that find no room in time are
 * answered 503 Overloaded (counted); any that completed is whole and right; the node serves on.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { TestCluster } from './cluster.js';

const c = new TestCluster({ nodes: 1, shards: 64, extra: ['--scan-reads-max', '2', '--scan-tenant-reads-max', '2', '--request-timeout-ms', '400'] });
beforeAll(() => c.start(), 60_000);
afterAll(() => c.close());

const url = (p: string): string => `${c.node(1).url}${p}`;

describe('scan fan-out budget', () => {
  test('scans beyond --scan-reads-max wait, then get 503 Overloaded; the rest are whole; the node serves on', async () => {
    for (let tries = 0; (await fetch(url('/healthz'))).status !== 200; tries++) {
      expect(tries).toBeLessThan(100);
      await new Promise((r) => setTimeout(r, 100));
    }
    const keys = Array.from({ length: 40 }, (_, i) => `s/${String(i).padStart(2, '0')}`);
    for (const k of keys) expect((await fetch(url(`/v1/kv/${k}`), { method: 'PUT', body: k })).status).toBe(200);

    // 200 scans of 64 shards each, 2 shard reads at a time: 12,800 reads, far more than a
    // quiet machine serves within the 400 ms request deadline (50 scans were not always).
    const answers = await Promise.all(Array.from({ length: 200 }, () => fetch(url('/v1/kv?prefix=s/&limit=100'))));
    const statuses = answers.map((a) => a.status);
    const refused = answers.filter((a) => a.status === 503);
    const served = answers.filter((a) => a.status === 200);
    expect(refused.length, `statuses ${statuses.join(',')}`).toBeGreaterThan(0);
    expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
    for (const r of refused) {
      expect(r.headers.get('retry-after')).not.toBeNull();
      expect(await r.json()).toMatchObject({ error: { code: 'Overloaded', message: expect.stringContaining('scanReadsMax') as unknown } });
    }
    for (const r of served) {
      const body = (await r.json()) as { items: { key: string }[]; more: boolean };
      expect(body.items.map((it) => it.key)).toEqual(keys);
      expect(body.more).toBe(false);
    }
    const metrics = await (await fetch(url('/metrics'))).text();
    // A scan is refused either waiting for its turn (no shard asked) or for a read's slot.
    const readsRefused = Number(/^iroh_raft_scan_reads_refused_total (\d+)$/m.exec(metrics)?.[1]);
    const scansRefused = Number(/^iroh_raft_scans_refused_total (\d+)$/m.exec(metrics)?.[1]);
    expect(readsRefused + scansRefused).toBeGreaterThanOrEqual(refused.length);
    expect(scansRefused).toBeGreaterThan(0);
    expect(metrics).toMatch(/^iroh_raft_scan_reads_inflight 0$/m);
    // Alone, a scan is served whole.
    const alone = await fetch(url('/v1/kv?prefix=s/&limit=100'));
    expect(alone.status).toBe(200);
    expect(((await alone.json()) as { items: unknown[] }).items).toHaveLength(40);
  }, 60_000);
});
