/**
 * A scan flood on a node of 1,024 shards (the load that once answered 16 of 80 scans `Overloaded`
 * and grew RSS from 168 to 380 MiB, since every scan took a request slot per shard): 80
 * concurrent scans of one tenant over all 1,024 shards, with the default scan budget (32 shard
 * reads in flight node-wide, half of it per tenant), while another tenant writes and reads. The
 * shard reads in flight never pass the budget (sampled from /metrics all along); scans run in
 * turn, so the first ones finish whole (sharing the slots among all 80, none did); every scan is
 * answered whole (200) or `Overloaded` with retry-after, nothing else; the other tenant is
 * served throughout; RSS and the main thread's heap before, at their peak and after are reported.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { TestCluster, eventually, sleep } from './cluster.js';

const SHARDS = 1024;
const SCANS = 80;
const c = new TestCluster({ nodes: 1, shards: SHARDS, workers: 2, tickMs: 100 });
beforeAll(async () => {
  await c.start();
  await eventually(async () => (await fetch(`${c.node(1).url}/healthz`)).status === 200, 120_000, 'every shard led');
}, 180_000);
afterAll(() => c.close());

const url = (p: string): string => `${c.node(1).url}${p}`;

async function metrics(): Promise<{ inflight: number; rss: number; heap: number; scans: number }> {
  const text = await (await fetch(url('/metrics'))).text();
  const num = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
  return {
    inflight: num('iroh_raft_scan_reads_inflight'),
    rss: num('process_resident_memory_bytes'),
    heap: num('nodejs_heap_size_used_bytes'),
    scans: num('iroh_raft_scans_running'),
  };
}

test('80 scans of 1,024 shards stay within the scan budget; each is whole or Overloaded; another tenant is served throughout', async () => {
  const keys = Array.from({ length: 200 }, (_, i) => `f/${String(i).padStart(3, '0')}`);
  for (const k of keys) expect((await fetch(url(`/v1/kv/${k}`), { method: 'PUT', body: k, headers: { 'x-tenant': 'flood' } })).status).toBe(200);
  const before = await metrics();

  let flooding = true;
  let peak = { inflight: 0, rss: before.rss, heap: before.heap, scans: 0 };
  const sampler = (async () => {
    while (flooding) {
      const m = await metrics();
      peak = {
        inflight: Math.max(peak.inflight, m.inflight),
        rss: Math.max(peak.rss, m.rss),
        heap: Math.max(peak.heap, m.heap),
        scans: Math.max(peak.scans, m.scans),
      };
      await sleep(50);
    }
  })();
  const other = { ok: 0, failed: [] as string[] };
  const steady = (async () => {
    for (let i = 0; flooding; i++) {
      const put = await fetch(url(`/v1/kv/s${i}`), { method: 'PUT', body: `v${i}`, headers: { 'x-tenant': 'steady' } });
      const get = await fetch(url(`/v1/kv/s${i}`), { headers: { 'x-tenant': 'steady' } });
      if (put.status === 200 && get.status === 200 && (await get.text()) === `v${i}`) other.ok++;
      else other.failed.push(`${put.status}/${get.status}`);
      await sleep(20);
    }
  })();

  const answers = await Promise.all(Array.from({ length: SCANS }, () => fetch(url('/v1/kv?prefix=f/&limit=1000'), { headers: { 'x-tenant': 'flood' } })));
  flooding = false;
  await Promise.all([sampler, steady]);

  const statuses = answers.map((a) => a.status);
  expect(
    statuses.every((s) => s === 200 || s === 503),
    statuses.join(','),
  ).toBe(true);
  let whole = 0;
  for (const a of answers) {
    if (a.status === 503) {
      expect(a.headers.get('retry-after')).not.toBeNull();
      expect(((await a.json()) as { error: { code: string } }).error.code).toBe('Overloaded');
      continue;
    }
    const body = (await a.json()) as { items: { key: string }[]; more: boolean };
    expect(body.items.map((it) => it.key)).toEqual(keys);
    expect(body.more).toBe(false);
    whole++;
  }
  const after = await metrics();
  console.log(
    `scan-flood: ${SHARDS} shards, ${SCANS} scans: ${whole} whole, ${SCANS - whole} Overloaded; shard reads in flight at most ${peak.inflight} (budget 32); ` +
      `scans running at most ${peak.scans}; RSS ${Math.round(before.rss / 2 ** 20)} MiB before, ${Math.round(peak.rss / 2 ** 20)} MiB at its peak, ${Math.round(after.rss / 2 ** 20)} MiB after ` +
      `(main thread heap ${Math.round(before.heap / 2 ** 20)} / ${Math.round(peak.heap / 2 ** 20)} / ${Math.round(after.heap / 2 ** 20)} MiB); ` +
      `the other tenant: ${other.ok} put+get served, ${other.failed.length} failed`,
  );
  expect(peak.inflight).toBeLessThanOrEqual(32);
  // Scans run in turn (32 read slots / 4 shards at a time, 16 of them per tenant): the first ones finish whole.
  expect(peak.scans).toBeLessThanOrEqual(8);
  expect(whole).toBeGreaterThan(0);
  expect(peak.inflight, 'the flood reached the budget').toBeGreaterThan(0);
  expect(other.failed, 'the other tenant during the flood').toEqual([]);
  expect(other.ok).toBeGreaterThan(0);
  expect(after.inflight).toBe(0);
}, 240_000);
