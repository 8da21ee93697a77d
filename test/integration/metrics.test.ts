/**
 * /metrics of a real node process (two workers, so worker registries are merged) after known
 * traffic, read with a strict parser of the Prometheus text format: types, names, units, HELP
 * lines, histogram shapes, the HTTP latency observations of that traffic, and process metrics
 * collected once per node.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseLe, parsePrometheusText } from '../support/prom-text.js';
import type { Family, Sample } from '../support/prom-text.js';
import { TestCluster } from './cluster.js';

const WORKERS = 2;
const SHARDS = 4;
const c = new TestCluster({ nodes: 1, shards: SHARDS, workers: WORKERS });
beforeAll(() => c.start(), 60_000);
afterAll(() => c.close());

const url = (p: string): string => `${c.node(1).url}${p}`;
const PUTS = 12;
const GETS = 7;
const MISSES = 3;
const DELETES = 2;

/** Sends the known traffic: every request's status is checked, so the histogram's counts are known. */
async function traffic(): Promise<void> {
  const status = async (p: string, init: RequestInit | undefined, want: number): Promise<void> => {
    const res = await fetch(url(p), init);
    await res.arrayBuffer();
    expect(res.status, `${init?.method ?? 'GET'} ${p}`).toBe(want);
  };
  for (let i = 0; i < PUTS; i++) await status(`/v1/kv/k${i}`, { method: 'PUT', body: `v${i}` }, 200);
  for (let i = 0; i < GETS; i++) await status(`/v1/kv/k${i}`, undefined, 200);
  for (let i = 0; i < MISSES; i++) await status(`/v1/kv/missing${i}`, undefined, 404);
  for (let i = 0; i < DELETES; i++) await status(`/v1/kv/k${i}`, { method: 'DELETE' }, 200);
  await status('/v1/kv?prefix=k&limit=5', undefined, 200);
  await status('/v1/nope', undefined, 404);
}

async function scrape(): Promise<Map<string, Family>> {
  const res = await fetch(url('/metrics'));
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(await res.text());
}

function family(fams: Map<string, Family>, name: string): Family {
  const f = fams.get(name);
  if (!f) throw new Error(`no family ${name}`);
  return f;
}

/** The one sample of `name` whose labels include `labels`. */
function value(f: Family, name: string, labels: Record<string, string> = {}): number {
  const hits = f.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hits.length !== 1) throw new Error(`${hits.length} samples of ${name} ${JSON.stringify(labels)}`);
  return hits[0]!.value;
}

/** Labels a series may carry, each with a bounded set of values (le only on buckets). */
const ROUTES = ['put', 'get', 'delete', 'scan', 'status', 'health', 'metrics', 'unrouted'];
const LABEL_VALUES: Record<string, (v: string) => boolean> = {
  worker: (v) => /^\d+$/.test(v) && Number(v) < WORKERS,
  route: (v) => ROUTES.includes(v),
  code: (v) => /^[1-5]\d\d$/.test(v),
  peer: (v) => /^\d+$/.test(v),
  le: (v) => !Number.isNaN(parseLe(v)),
  // prom-client's process metrics: handle and resource types, heap spaces, GC kinds, the version.
  type: (v) => /^[A-Za-z]+$/.test(v),
  space: (v) => /^[a-z_]+$/.test(v),
  kind: (v) => ['minor', 'major', 'incremental', 'weakcb'].includes(v),
  version: (v) => v === process.version,
  major: (v) => /^\d+$/.test(v),
  minor: (v) => /^\d+$/.test(v),
  patch: (v) => /^\d+$/.test(v),
};

describe('/metrics of a running node', () => {
  let fams: Map<string, Family>;
  beforeAll(async () => {
    await traffic();
    fams = await scrape();
  });

  test('every family has one HELP that says something and one TYPE; names and label names are well formed', () => {
    expect(fams.size).toBeGreaterThan(60);
    for (const f of fams.values()) {
      expect(f.type, `${f.name} TYPE`).toBeDefined();
      expect(f.help?.length ?? 0, `${f.name} HELP`).toBeGreaterThan(10);
      expect(f.name, 'metric name').toMatch(/^[a-z_:][a-z0-9_:]*$/);
    }
    const ours = [...fams.keys()].filter((n) => !n.startsWith('process_') && !n.startsWith('nodejs_'));
    for (const n of ours) expect(n, 'own families are prefixed').toMatch(/^iroh_raft_/);
  });

  test('_total families are counters and counters end in _total; units are suffixes, in base units', () => {
    for (const f of fams.values()) {
      expect(f.name.endsWith('_total'), `${f.name} is a ${f.type}`).toBe(f.type === 'counter');
      if (/_(seconds|bytes)_/.test(f.name)) expect(f.name, 'unit is the last word before _total').toMatch(/_(seconds|bytes)_total$/);
      expect(f.name, 'base units only').not.toMatch(/_(ms|milliseconds|us|microseconds|kb|mb|kib|mib)(_|$)/);
      for (const s of f.samples) expect(s.value, `${s.name} is a number`).not.toBeNaN();
      if (f.type === 'counter') for (const s of f.samples) expect(s.value, `${s.name} >= 0`).toBeGreaterThanOrEqual(0);
    }
    // Formerly gauges named _total: now counters.
    for (const n of ['iroh_raft_host_entries_applied_total', 'iroh_raft_transport_sent_bytes_total', 'iroh_raft_snapshots_sent_total']) {
      expect(family(fams, n).type).toBe('counter');
    }
    for (const n of ['iroh_raft_pool_inflight_requests', 'iroh_raft_transport_queued_bytes', 'iroh_raft_worker_outbox_bytes']) {
      expect(family(fams, n).type).toBe('gauge');
    }
  });

  test('labels have bounded values', () => {
    for (const f of fams.values()) {
      for (const s of f.samples) {
        for (const [k, v] of Object.entries(s.labels)) {
          const ok = LABEL_VALUES[k];
          expect(ok, `${s.name}: label ${k} is one of the bounded ones`).toBeDefined();
          expect(ok!(v), `${s.name}: ${k}="${v}"`).toBe(true);
        }
      }
    }
  });

  test('histograms: buckets with le up to +Inf, cumulative, _count equal to the +Inf bucket, and a _sum', () => {
    const hists = [...fams.values()].filter((f) => f.type === 'histogram');
    expect(hists.map((h) => h.name)).toEqual(
      expect.arrayContaining([
        'iroh_raft_http_request_duration_seconds',
        'iroh_raft_shard_commit_seconds',
        'iroh_raft_shard_apply_seconds',
        'iroh_raft_wal_fsync_seconds',
        'iroh_raft_checkpoint_seconds',
      ]),
    );
    for (const h of hists) {
      const series = new Map<string, Sample[]>();
      for (const s of h.samples) {
        const { le: _le, ...rest } = s.labels;
        const key = JSON.stringify(Object.entries(rest).sort());
        series.set(key, [...(series.get(key) ?? []), s]);
      }
      for (const [key, ss] of series) {
        const where = `${h.name}${key}`;
        const buckets = ss.filter((s) => s.name === `${h.name}_bucket`).map((s) => ({ le: parseLe(s.labels.le), n: s.value }));
        expect(buckets.length, `${where} buckets`).toBeGreaterThan(1);
        expect(buckets.at(-1)!.le, `${where} ends with +Inf`).toBe(Infinity);
        for (let i = 1; i < buckets.length; i++) {
          expect(buckets[i]!.le, `${where} le ascending`).toBeGreaterThan(buckets[i - 1]!.le);
          expect(buckets[i]!.n, `${where} cumulative`).toBeGreaterThanOrEqual(buckets[i - 1]!.n);
        }
        const count = ss.filter((s) => s.name === `${h.name}_count`);
        const sum = ss.filter((s) => s.name === `${h.name}_sum`);
        expect(count.length, `${where} _count`).toBe(1);
        expect(sum.length, `${where} _sum`).toBe(1);
        expect(count[0]!.value, `${where} _count = +Inf bucket`).toBe(buckets.at(-1)!.n);
        expect(sum[0]!.value, `${where} _sum`).toBeGreaterThanOrEqual(0);
      }
    }
    // The latency buckets span 0.5 ms .. 10 s.
    const les = family(fams, 'iroh_raft_http_request_duration_seconds')
      .samples.filter((s) => s.name.endsWith('_bucket'))
      .map((s) => parseLe(s.labels.le));
    expect(Math.min(...les)).toBe(0.0005);
    expect(Math.max(...les.filter(Number.isFinite))).toBe(10);
  });

  test('the HTTP histogram counts the traffic sent, by route name and status code', () => {
    const h = family(fams, 'iroh_raft_http_request_duration_seconds');
    const n = (route: string, code: string): number => value(h, `${h.name}_count`, { route, code });
    expect(n('put', '200')).toBe(PUTS);
    expect(n('get', '200')).toBe(GETS);
    expect(n('get', '404')).toBe(MISSES);
    expect(n('delete', '200')).toBe(DELETES);
    expect(n('scan', '200')).toBe(1);
    expect(n('unrouted', '404')).toBe(1);
    // Raw paths never become label values.
    for (const s of h.samples) expect(s.labels.route).not.toMatch(/\//);
  });

  test('commit and apply latency: one commit observation per client write, applied entries observed, merged over workers', () => {
    const commit = family(fams, 'iroh_raft_shard_commit_seconds');
    // And the node's own writes at its first start: the cluster's placement key and the meta group's
    // first record (both `_system` records).
    expect(value(commit, 'iroh_raft_shard_commit_seconds_count')).toBe(PUTS + DELETES + 2);
    const apply = family(fams, 'iroh_raft_shard_apply_seconds');
    const applied = family(fams, 'iroh_raft_host_entries_applied_total').samples.reduce((a, s) => a + s.value, 0);
    expect(value(apply, 'iroh_raft_shard_apply_seconds_count')).toBe(applied);
    for (const f of [commit, apply]) for (const s of f.samples) expect(s.labels.worker, `${s.name} merged over workers`).toBeUndefined();
    // Raft events, per worker, summed over its shards: every shard elected a leader here.
    const elections = family(fams, 'iroh_raft_shard_elections_started_total');
    expect(elections.samples.length).toBe(WORKERS);
    expect(elections.samples.reduce((a, s) => a + s.value, 0)).toBeGreaterThanOrEqual(SHARDS);
    expect(family(fams, 'iroh_raft_shard_leaderships_won_total').samples.reduce((a, s) => a + s.value, 0)).toBeGreaterThanOrEqual(SHARDS);
    // Every summed raft total is there for every worker, also those that count only with followers.
    for (const name of ['iroh_raft_shard_quiesced_total', 'iroh_raft_shard_stall_probes_total', 'iroh_raft_shard_messages_folded_total']) {
      const f = family(fams, name);
      expect(f.samples.length, name).toBe(WORKERS);
      for (const s of f.samples) expect(s.value, name).toBeGreaterThanOrEqual(0);
    }
  });

  test("the store's durable writes: a write-ahead log flush per logged turn that wrote, checkpoints timed, merged over workers", () => {
    const sum = (name: string): number => family(fams, name).samples.reduce((a, s) => a + s.value, 0);
    const wal = family(fams, 'iroh_raft_wal_fsync_seconds');
    const flushes = value(wal, 'iroh_raft_wal_fsync_seconds_count');
    // Every client write went through a logged turn: at least one flush, never more than the turns that wrote.
    expect(flushes).toBeGreaterThan(0);
    expect(flushes).toBeLessThanOrEqual(sum('iroh_raft_host_commits_total'));
    const checkpoints = value(family(fams, 'iroh_raft_checkpoint_seconds'), 'iroh_raft_checkpoint_seconds_count');
    // Each store's opening is one; the host's own (time, compaction) are counted besides.
    expect(checkpoints).toBeGreaterThanOrEqual(WORKERS + sum('iroh_raft_host_checkpoints_total'));
    for (const n of ['iroh_raft_wal_fsync_seconds', 'iroh_raft_checkpoint_seconds'])
      for (const s of family(fams, n).samples) expect(s.labels.worker, `${s.name} merged over workers`).toBeUndefined();
  });

  test('process metrics appear once, for the whole process (not once per worker, added up)', () => {
    const pid = c.node(1).proc!.pid!;
    for (const n of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'process_start_time_seconds',
      'process_max_fds',
      'nodejs_eventloop_lag_p99_seconds',
    ]) {
      expect(family(fams, n).samples.length, n).toBe(1);
    }
    expect(family(fams, 'nodejs_heap_size_used_bytes').samples.length).toBe(1);
    // A value summed over the main thread and two workers would be three times the process's own.
    const limits = readFileSync(`/proc/${pid}/limits`, 'utf8');
    const maxFds = Number(/^Max open files\s+(\d+)/m.exec(limits)![1]);
    expect(value(family(fams, 'process_max_fds'), 'process_max_fds')).toBe(maxFds);
    const start = value(family(fams, 'process_start_time_seconds'), 'process_start_time_seconds');
    expect(start).toBeLessThanOrEqual(Date.now() / 1000);
    expect(start).toBeGreaterThan(Date.now() / 1000 - 600);
  });

  test('counters never go down between scrapes', async () => {
    await traffic();
    const later = await scrape();
    for (const f of fams.values()) {
      if (f.type !== 'counter') continue;
      for (const s of f.samples) {
        const again = later.get(f.name)!.samples.find((x) => x.name === s.name && JSON.stringify(x.labels) === JSON.stringify(s.labels));
        expect(again?.value, `${s.name} ${JSON.stringify(s.labels)}`).toBeGreaterThanOrEqual(s.value);
      }
    }
    const h = family(later, 'iroh_raft_http_request_duration_seconds');
    expect(value(h, `${h.name}_count`, { route: 'put', code: '200' })).toBe(2 * PUTS);
    expect(value(h, `${h.name}_count`, { route: 'metrics', code: '200' })).toBe(1);
  });
});
