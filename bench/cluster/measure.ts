/**
 * One system under load, measured: CPU of every watched process (by thread for nodes) and of the
 * machine, peak RSS, the nodes' counters over the load (from /metrics), the latency histograms of
 * the load generator, and the read-back of every acknowledged write.
 */
import os from 'node:os';
import { Histogram } from '../histogram.js';
import type { LatencySummary } from '../histogram.js';
import { call, scrape } from '../kv-client.js';
import { RssPoller, cpuSeconds, cpuSpeedKops, machineCpuSeconds, splitThreads, threadCpuSeconds, vmBytes } from '../proc.js';
import type { LoadResult, Mix, OpResult } from '../workload.js';
import type { Config } from './flags.js';
import { drive, preload } from './load.js';
import type { Target } from './load.js';
import { progress } from './progress.js';
import { verify } from './verify.js';
import type { VerifyResult } from './verify.js';

/** Node counters whose change over the load is reported per node (short name: metric). */
export const COUNTERS: Record<string, string> = {
  turns: 'iroh_raft_host_turns_total',
  commits: 'iroh_raft_host_commits_total',
  checkpoints: 'iroh_raft_host_checkpoints_total',
  entriesPersisted: 'iroh_raft_host_entries_persisted_total',
  entriesApplied: 'iroh_raft_host_entries_applied_total',
  proposals: 'iroh_raft_host_proposals_total',
  proposalsRefused: 'iroh_raft_host_proposals_refused_total',
  reads: 'iroh_raft_host_reads_total',
  raftMessagesSent: 'iroh_raft_host_messages_sent_total',
  irohRecordsSent: 'iroh_raft_transport_records_sent_total',
  irohFramesSent: 'iroh_raft_transport_frames_sent_total',
  forwarded: 'iroh_raft_router_forwarded_total',
  outRingDrops: 'iroh_raft_worker_out_ring_drops_total',
  compactions: 'iroh_raft_host_compactions_total',
};

export interface ProcessResult {
  readonly name: string;
  readonly pid: number;
  readonly cpuS: number | undefined;
  /** CPU over the load's wall time, % of one core. */
  readonly cpuPercent: number | undefined;
  /** Highest VmRSS seen while the load ran, bytes. */
  readonly peakRssBytes: number | undefined;
  /** VmHWM at the end of the load: the peak since the process started, bytes. */
  readonly hwmBytes: number | undefined;
  readonly irohBytesSent?: number | undefined;
  /** A node's CPU by thread over the load, % of one core (see splitThreads). */
  readonly threads?: { readonly mainPercent: number; readonly irohPercent: number; readonly otherPercent: number; readonly busiestOtherPercent: number };
}

export interface SystemResult {
  readonly system: string;
  readonly urls: readonly string[];
  readonly preload: { readonly keys: number; readonly seconds: number };
  readonly elapsedS: number;
  /** 2xx answers per second. */
  readonly okPerSec: number;
  /**
   * Value bytes those answers carried, in MB (10^6 bytes) per second: `okPerSec` x `--value-size`
   * (a write stores one value, a read returns one).
   */
  readonly okMBPerSec: number;
  readonly latency: { readonly all: LatencySummary; readonly put?: LatencySummary; readonly get?: LatencySummary };
  readonly counts: {
    readonly ok: number;
    readonly non2xx: number;
    /** Connection errors and timeouts (autocannon's `errors`). */
    readonly errors: number;
    readonly timeouts: number;
    readonly readMismatches: number;
    readonly byStatus: { readonly put: Record<string, number>; readonly get: Record<string, number> };
    readonly non2xxByCode: Record<string, number>;
    readonly connErrors: Record<string, number>;
  };
  readonly readMismatchSamples: readonly string[];
  readonly autocannon: LoadResult['autocannon'];
  readonly processes: readonly ProcessResult[];
  readonly loadGenerator: ProcessResult;
  /**
   * The whole machine's CPU over the load, % of one core (all cores: cpus x 100): busy in all,
   * used by the processes above, and by everything else (other people's work on a shared machine).
   */
  readonly machineCpu?: { readonly cores: number; readonly busyPercent: number; readonly oursPercent: number; readonly othersPercent: number };
  /** cpuSpeedKops() just before the load generator starts and just after it ends (machine speed). */
  readonly cpuSpeedKops: { readonly before: number; readonly after: number };
  /** CPU of the server processes (all nodes) per 2xx answer, µs: the cost of one request. */
  readonly serverCpuUsPerOk: number | undefined;
  /** From the nodes' /metrics (deltas over the load); undefined for the ceiling. */
  readonly iroh?: {
    readonly bytesSent: number;
    readonly bytesPerAckedWrite: number | undefined;
    readonly bytesPerRequest: number | undefined;
    readonly leaderChanges: number;
    readonly forwarded: number;
    readonly retries: number;
    readonly workerRestarts: number;
  };
  /** Change of each COUNTERS entry over the load, per node (null: the node's /metrics did not answer). */
  readonly counters?: Record<string, readonly (number | null)[]>;
  /** Shards led by each node after the load (from /v1/status; null: no answer). */
  readonly leadersPerNode?: readonly (number | null)[] | undefined;
  /** Nodes whose /metrics did not answer before or after the load: their counters are missing. */
  readonly metricsMissing: readonly string[];
  /** Watched processes that fell over during this measurement. */
  readonly exits: readonly string[];
  readonly verify: VerifyResult;
  /** When the load ran, CLOCK_MONOTONIC µs (the clock of `--cpu-prof` sample times). */
  readonly loadWindowUs: { readonly fromUs: number; readonly toUs: number };
}

/** Value of metric `name` on node `i` of a scrape (0 when absent). */
export const metric = (m: Map<string, number>[] | undefined, i: number, name: string): number => m?.[i]?.get(name) ?? 0;

function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** Every node's metrics; a node that does not answer is added to `missing` (its changes are then unknown). */
async function scrapeAll(t: Target, missing: Set<string>): Promise<Map<string, number>[] | undefined> {
  if (!t.isNode) return undefined;
  return Promise.all(
    t.urls.map((u) =>
      scrape(u).catch((e: unknown) => {
        progress(`[${t.system}] ${u}/metrics: ${e instanceof Error ? e.message : String(e)}`);
        missing.add(u);
        return new Map<string, number>();
      }),
    ),
  );
}

/** Shards led by each node (from /v1/status; null: no answer). */
async function leadersPerNode(t: Target): Promise<(number | null)[]> {
  return Promise.all(
    t.urls.map(async (u) => {
      try {
        const a = await call(`${u}/v1/status`);
        const s = JSON.parse(a.body.toString('utf8')) as { shards: { role: string }[] };
        return s.shards.filter((x) => x.role === 'leader').length;
      } catch {
        return null;
      }
    }),
  );
}

/** The change of the nodes' metrics between a scrape before the load and one after it. */
class MetricDeltas {
  constructor(
    private readonly urls: readonly string[],
    private readonly before: Map<string, number>[] | undefined,
    private readonly after: Map<string, number>[] | undefined,
    /** Nodes that did not answer one of the scrapes. */
    private readonly unscraped: ReadonlySet<string>,
  ) {}

  /** Change of a node's metric over the load; undefined when the node did not answer before or after. */
  of(i: number, name: string): number | undefined {
    return this.unscraped.has(this.urls[i]!) ? undefined : metric(this.after, i, name) - metric(this.before, i, name);
  }

  /** The change summed over the nodes that answered. */
  sum(name: string): number {
    return this.urls.reduce((a, _, i) => a + (this.of(i, name) ?? 0), 0);
  }
}

/** CPU seconds of the watched processes, of their threads and of the whole machine, read at one moment. */
interface CpuSample {
  readonly cpu: readonly (number | undefined)[];
  readonly threads: readonly ReturnType<typeof threadCpuSeconds>[];
  readonly machine: ReturnType<typeof machineCpuSeconds>;
}

function sampleCpu(t: Target): CpuSample {
  return { cpu: t.procs.map((p) => cpuSeconds(p.pid)), threads: t.procs.map((p) => threadCpuSeconds(p.pid)), machine: machineCpuSeconds() };
}

/** Everything read during and right after one load, before it is summarized. */
interface Readings {
  readonly preload: { readonly keys: number; readonly seconds: number };
  readonly run: Awaited<ReturnType<typeof drive>>;
  readonly start: CpuSample;
  readonly end: CpuSample;
  readonly rss: RssPoller;
  readonly hwm: readonly (number | undefined)[];
  readonly cpuSpeedKops: { readonly before: number; readonly after: number };
  readonly deltas: MetricDeltas;
  readonly unscraped: ReadonlySet<string>;
  readonly leadersPerNode: (number | null)[] | undefined;
  readonly verified: VerifyResult;
  readonly loadWindowUs: { readonly fromUs: number; readonly toUs: number };
}

/** Preloads, drives the load with everything sampled around it, then reads the acknowledged writes back. */
export async function measure(t: Target, cfg: Config, prefix: string): Promise<SystemResult> {
  const pre = await preload(t, cfg, prefix);
  const unscraped = new Set<string>();
  const rss = new RssPoller(t.procs.map((p) => p.pid));
  let start: CpuSample = { cpu: [], threads: [], machine: undefined };
  // Scraped before the load generator starts: /metrics is not free, and not part of the load.
  // With a warm-up, when the measured window starts (once, while the load runs).
  let metrics0 = cfg.warmupS === 0 ? await scrapeAll(t, unscraped) : undefined;
  let metrics0AfterWarmup: ReturnType<typeof scrapeAll> | undefined;
  const speedBefore = cpuSpeedKops();
  const warmup = cfg.warmupS > 0 ? ` after ${cfg.warmupS} s of warm-up` : '';
  progress(`[${t.system}] load: ${cfg.connections} connections, ${cfg.durationS} s${warmup}, ${cfg.mix.label}, ${cfg.valueSize} B values`);
  let fromUs = 0;
  const run = await drive(t, cfg, prefix, pre.keys, rss, () => {
    fromUs = monotonicUs();
    start = sampleCpu(t);
    rss.start();
    if (cfg.warmupS > 0) metrics0AfterWarmup = scrapeAll(t, unscraped);
  });
  if (metrics0AfterWarmup !== undefined) metrics0 = await metrics0AfterWarmup;
  const loadWindowUs = { fromUs, toUs: monotonicUs() };
  const end = sampleCpu(t);
  rss.stop();
  const hwm = t.procs.map((p) => vmBytes(p.pid, 'VmHWM'));
  const speedAfter = cpuSpeedKops();
  const metrics1 = await scrapeAll(t, unscraped);
  const deltas = new MetricDeltas(t.urls, metrics1 === undefined ? undefined : metrics0, metrics1, unscraped);
  const leaders = t.isNode ? await leadersPerNode(t) : undefined;
  const verified = await verify(t, cfg, prefix, run.result);
  return summarize(t, cfg, {
    preload: pre,
    run,
    start,
    end,
    rss,
    hwm,
    cpuSpeedKops: { before: speedBefore, after: speedAfter },
    deltas,
    unscraped,
    leadersPerNode: leaders,
    verified,
    loadWindowUs,
  });
}

/** The watched processes' CPU (by thread for nodes) and memory over the load. */
function processResults(t: Target, m: Readings, pct: (cpuS: number | undefined) => number | undefined): ProcessResult[] {
  const processes: ProcessResult[] = t.procs.map((p, i) => {
    const c = m.end.cpu[i] !== undefined && m.start.cpu[i] !== undefined ? m.end.cpu[i] - m.start.cpu[i] : undefined;
    return {
      name: p.name,
      pid: p.pid,
      cpuS: c,
      cpuPercent: pct(c),
      peakRssBytes: m.rss.peak.get(p.pid),
      hwmBytes: m.hwm[i],
      ...(t.isNode ? { irohBytesSent: m.deltas.of(i, 'iroh_raft_transport_sent_bytes_total') } : {}),
    };
  });
  for (const [i, p] of t.procs.entries()) {
    if (!t.isNode || m.start.threads[i] === undefined) continue;
    const sp = splitThreads(p.pid, m.start.threads[i], m.end.threads[i]!);
    processes[i] = {
      ...processes[i]!,
      threads: { mainPercent: pct(sp.mainS)!, irohPercent: pct(sp.irohS)!, otherPercent: pct(sp.otherS)!, busiestOtherPercent: pct(sp.busiestOtherS)! },
    };
  }
  return processes;
}

/** The machine's CPU over the load, and how much of it the measured processes and the load generator used. */
function machineCpuOf(m: Readings, processes: readonly ProcessResult[]): SystemResult['machineCpu'] {
  const m0 = m.start.machine;
  const m1 = m.end.machine;
  if (!m0 || !m1 || m1.totalS <= m0.totalS) return undefined;
  const cores = os.cpus().length;
  // Wall time of the window from the machine's own clock: total CPU seconds over the cores.
  const wallS = (m1.totalS - m0.totalS) / cores;
  const busyPercent = ((m1.busyS - m0.busyS) / wallS) * 100;
  const oursS = [...processes.map((p) => p.cpuS ?? 0), m.run.cpuS ?? 0].reduce((a, b) => a + b, 0);
  const oursPercent = (oursS / wallS) * 100;
  return { cores, busyPercent, oursPercent, othersPercent: Math.max(0, busyPercent - oursPercent) };
}

const non2xx = (o: OpResult): number => Object.entries(o.statuses).reduce((a, [s, n]) => a + (Number(s) >= 200 && Number(s) <= 299 ? 0 : n), 0);

function mergeCounts(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
}

/** Latency of every 2xx answer, and of PUTs and GETs apart when the mix has them. */
function latencyOf(r: LoadResult, mix: Mix): { ok: number; latency: SystemResult['latency'] } {
  const put = Histogram.fromJSON(r.put.latency);
  const get = Histogram.fromJSON(r.get.latency);
  const all = new Histogram();
  all.add(put);
  all.add(get);
  return {
    ok: all.count,
    latency: {
      all: all.summary(),
      ...(mix.readPercent < 100 ? { put: put.summary() } : {}),
      ...(mix.readPercent > 0 ? { get: get.summary() } : {}),
    },
  };
}

function countsOf(r: LoadResult, ok: number): SystemResult['counts'] {
  return {
    ok,
    non2xx: non2xx(r.put) + non2xx(r.get),
    errors: r.autocannon.errors,
    timeouts: r.autocannon.timeouts,
    readMismatches: r.readMismatches,
    byStatus: { put: r.put.statuses, get: r.get.statuses },
    non2xxByCode: mergeCounts(
      Object.fromEntries(Object.entries(r.put.errorCodes).map(([k, v]) => [`PUT ${k}`, v])),
      Object.fromEntries(Object.entries(r.get.errorCodes).map(([k, v]) => [`GET ${k}`, v])),
    ),
    connErrors: r.connErrors,
  };
}

/** What only nodes tell (/metrics, /v1/status): Iroh traffic, leadership and the COUNTERS, over the load. */
function nodeFigures(t: Target, m: Readings, requests: number): Pick<SystemResult, 'iroh' | 'leadersPerNode' | 'counters'> {
  const bytesSent = m.deltas.sum('iroh_raft_transport_sent_bytes_total');
  const acked = m.run.result.ackedWritesMeasured ?? m.run.result.ackedWrites;
  return {
    iroh: {
      bytesSent,
      bytesPerAckedWrite: acked > 0 ? bytesSent / acked : undefined,
      bytesPerRequest: requests > 0 ? bytesSent / requests : undefined,
      leaderChanges: m.deltas.sum('iroh_raft_shard_leader_changes_total'),
      forwarded: m.deltas.sum('iroh_raft_router_forwarded_total'),
      retries: m.deltas.sum('iroh_raft_router_retries_total'),
      workerRestarts: m.deltas.sum('iroh_raft_pool_worker_restarts_total'),
    },
    leadersPerNode: m.leadersPerNode,
    counters: Object.fromEntries(Object.entries(COUNTERS).map(([k, name]) => [k, t.urls.map((_, i) => m.deltas.of(i, name) ?? null)])),
  };
}

function summarize(t: Target, cfg: Config, m: Readings): SystemResult {
  const r = m.run.result;
  const { ok, latency } = latencyOf(r, cfg.mix);
  const counts = countsOf(r, ok);
  const pct = (cpu: number | undefined): number | undefined => (cpu === undefined ? undefined : (cpu / r.elapsedS) * 100);
  const processes = processResults(t, m, pct);
  const machineCpu = machineCpuOf(m, processes);
  return {
    system: t.system,
    urls: t.urls,
    preload: m.preload,
    elapsedS: r.elapsedS,
    okPerSec: ok / r.elapsedS,
    okMBPerSec: (ok * cfg.valueSize) / r.elapsedS / 1e6,
    latency,
    counts,
    readMismatchSamples: r.readMismatchSamples,
    autocannon: r.autocannon,
    processes,
    loadGenerator: {
      name: 'load generator',
      pid: m.run.pid,
      cpuS: m.run.cpuS,
      cpuPercent: pct(m.run.cpuS),
      peakRssBytes: m.rss.peak.get(m.run.pid),
      hwmBytes: undefined,
    },
    ...(machineCpu ? { machineCpu } : {}),
    cpuSpeedKops: m.cpuSpeedKops,
    serverCpuUsPerOk:
      ok > 0 && processes.every((p) => p.cpuS !== undefined) && processes.length > 0 ? (processes.reduce((a, p) => a + p.cpuS!, 0) / ok) * 1e6 : undefined,
    ...(t.isNode ? nodeFigures(t, m, ok + counts.non2xx) : {}),
    verify: m.verified,
    metricsMissing: [...m.unscraped],
    exits: t.exits(),
    loadWindowUs: m.loadWindowUs,
  };
}
