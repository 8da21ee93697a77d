/**
 * End-to-end load test of a cluster over HTTP: starts a fresh local cluster of real node
 * processes (or uses running ones with --target), preloads keys for reads, drives load with
 * autocannon from a separate process (bench/load-worker.ts), then reads every acknowledged write
 * back through a random node (linearizable) and reports throughput, latency percentiles to the
 * microsecond, errors, CPU and memory per process, bytes sent over Iroh per write and leader
 * changes. With --ceiling, the same workload also runs against a do-nothing in-memory KV on
 * node:http (bench/ceiling.ts), and the node's throughput is shown as a share of it.
 *
 *   npm run bench -- [--nodes 3] [--shards 16] [--workers 1] [--connections 64] [--duration 15]
 *     [--value-size 256] [--keys 100000] [--mix put|get|mixed:R/W] [--consistency linearizable]
 *     [--target http://h:p,...] [--ceiling] [--idle-seconds 0] [--json] [--name NAME]
 *     [--sweep shards|connections|value-size|nodes=V1,V2,...] [--idle]
 *
 * With --sweep, one full run per value (a fresh cluster each), then a summary table, and
 * bench/results/<date>-<name>-sweep.json and -sweep.svg (requests/s and p99 against the value).
 * With --idle, no load at all: a fresh cluster is measured for --duration seconds while idle
 * (CPU, RSS, Iroh bytes and records sent per second, per node) into <date>-idle-<name>.json.
 * The result (config, versions, machine) goes to bench/results/<date>-<name>.json; --json also
 * prints it as the last line. Exit code 2 for bad flags, 1 when a node fell over, an
 * acknowledged write could not be read back with its value, a read returned a wrong value or
 * the load generator failed; errors, non-2xx answers and timeouts are reported, never hidden,
 * but do not fail the run on their own.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { basename, join } from 'node:path';
import { sweepSvg } from './chart.js';
import { median } from './stats.js';
import type { LatencySummary } from './histogram.js';
import { scrape, sleep, waitHealthy } from './kv-client.js';
import { etcdVersion, startEtcd } from './etcd-local.js';
import { LocalServers } from './local-cluster.js';
import { formatProfiles, summarizeDir } from './profile.js';
import { RssPoller, cpuSeconds, pidListeningOn, vmBytes } from './proc.js';
import { PRELOAD_KEYS_MAX } from './workload.js';
import { parseFlags } from './cluster/flags.js';
import type { Config, Sweep, SweepKey } from './cluster/flags.js';
import { fmtInt, fmtMiB, fmtMs, fmtOpt, table } from './cluster/format.js';
import type { Target } from './cluster/load.js';
import { COUNTERS, measure, metric } from './cluster/measure.js';
import type { SystemResult } from './cluster/measure.js';
import { progress } from './cluster/progress.js';
import { IDLE_SETTLE_MS, LOADGEN_SATURATED_PERCENT, LOAD_TIMEOUT_S, RESULTS_DIR, ROOT, SIDE_CONCURRENCY } from './cluster/settings.js';

// ---------------------------------------------------------------------------------------------
// Facts

function packageVersion(name: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return undefined;
  }
}

function versions(): Record<string, string | undefined> {
  const git = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' });
  // Read-only (no index refresh): were the sources that dist was built from edited since the commit?
  const dirty = spawnSync('git', ['--no-optional-locks', 'status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' });
  return {
    node: process.version,
    irohRaft: (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version,
    commit: git.status === 0 ? git.stdout.trim() : undefined,
    srcEditedSinceCommit: dirty.status === 0 ? (dirty.stdout.trim() === '' ? 'no' : 'yes') : undefined,
    iroh: packageVersion('@number0/iroh'),
    lmdb: packageVersion('lmdb'),
    autocannon: packageVersion('autocannon'),
  };
}

function machine(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    model: cpus[0]?.model,
    memoryBytes: os.totalmem(),
    kernel: os.release(),
    platform: `${os.platform()} ${os.arch()}`,
    loadAverageAtStart: os.loadavg(),
    date: new Date().toISOString(),
  };
}

function exitsOf(servers: LocalServers | undefined): () => string[] {
  return () => (servers?.unexpectedExits() ?? []).map((g) => `${g.name} fell over: code ${g.exit.code}, signal ${g.exit.signal}, ${g.exit.afterS.toFixed(1)} s after it started; its last output:\n${g.tail}`);
}

/** Throws when a process fell over (while starting, before there is anything to measure). */
function assertRunning(servers: LocalServers): () => void {
  return () => {
    const e = exitsOf(servers)();
    if (e.length > 0) throw new Error(e.join('\n'));
  };
}

function liveUrlsOf(servers: LocalServers | undefined, urls: readonly string[]): () => string[] {
  return () => (servers ? servers.servers.filter((s) => !s.exit).map((s) => s.url) : [...urls]);
}

// ---------------------------------------------------------------------------------------------
// Report

function latencyRow(label: string, okPerSec: string, l: LatencySummary, errs: string[]): string[] {
  return [label, okPerSec, fmtMs(l.p50Ms), fmtMs(l.p90Ms), fmtMs(l.p99Ms), fmtMs(l.p999Ms), fmtMs(l.maxMs), ...errs];
}

function report(cfg: Config, results: SystemResult[], extra: Record<string, unknown>, problems: string[]): string {
  const out: string[] = [];
  const where = cfg.target ? `target ${cfg.target.join(',')}` : `${cfg.nodes} node(s), ${cfg.shards} shards, ${cfg.workers} worker(s) per node`;
  out.push(`\n${where}; ${cfg.connections} connections, ${cfg.durationS} s, mix ${cfg.mix.label}, ${cfg.valueSize} B values${cfg.mix.readPercent > 0 ? `, reads ${cfg.consistency} over ${Math.min(cfg.keys, PRELOAD_KEYS_MAX)} keys` : ''}`);
  if (results.length === 0) {
    if (problems.length > 0) out.push('', 'PROBLEMS:', ...problems.map((p) => `  - ${p}`));
    return out.join('\n');
  }
  const rows: string[][] = [['system', 'ok req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'errors', 'non-2xx', 'timeouts']];
  for (const r of results) {
    const errs = [String(r.counts.errors), String(r.counts.non2xx), String(r.counts.timeouts)];
    rows.push(latencyRow(r.system, fmtInt(r.okPerSec), r.latency.all, errs));
    if (r.latency.put && r.latency.get) {
      rows.push(latencyRow('  put', fmtInt(r.latency.put.count / r.elapsedS), r.latency.put, ['', '', '']));
      rows.push(latencyRow('  get', fmtInt(r.latency.get.count / r.elapsedS), r.latency.get, ['', '', '']));
    }
  }
  const node = results.find((r) => r.system !== 'ceiling');
  const ceiling = results.find((r) => r.system === 'ceiling');
  if (node && ceiling) {
    const p = (a: number, b: number): string => (b > 0 ? `${((a / b) * 100).toFixed(1)} %` : '-');
    rows.push(['% of ceiling', p(node.okPerSec, ceiling.okPerSec), '', '', '', '', '', '', '', '']);
    rows.push(['x ceiling latency', '', ...(['p50Ms', 'p90Ms', 'p99Ms', 'p999Ms', 'maxMs'] as const).map((k) => (ceiling.latency.all[k] > 0 ? `${(node.latency.all[k] / ceiling.latency.all[k]).toFixed(1)}x` : '-')), '', '', '']);
  }
  out.push(table(rows));

  const prow: string[][] = [['process', 'system', 'pid', 'CPU s', 'CPU %', 'main %', 'iroh %', 'other %', 'busiest other %', 'peak RSS MiB', 'VmHWM MiB', 'Iroh MB sent']];
  for (const r of results) {
    for (const p of [...r.processes, r.loadGenerator]) {
      const th = p.threads;
      prow.push([
        p.name, r.system, String(p.pid), fmtOpt(p.cpuS, 2), fmtOpt(p.cpuPercent, 0),
        fmtOpt(th?.mainPercent, 0), fmtOpt(th?.irohPercent, 0), fmtOpt(th?.otherPercent, 0), fmtOpt(th?.busiestOtherPercent, 0),
        fmtMiB(p.peakRssBytes), fmtMiB(p.hwmBytes), p.irohBytesSent === undefined ? '-' : (p.irohBytesSent / 1e6).toFixed(2),
      ]);
    }
  }
  out.push('', table(prow, 2));
  out.push('(CPU % is of one core over the load: main = main thread (HTTP, router, transport), iroh = tokio threads, other = shard workers, GC, libuv,');
  out.push(' busiest other = the busiest of those alone (with --workers 1 nearly always the shard worker);');
  out.push(' peak RSS is the highest VmRSS polled during the load, VmHWM the peak since the process started)');
  for (const r of results) {
    const m = r.machineCpu;
    if (m && r.processes.length > 0) out.push(`machine CPU during the ${r.system} load: ${m.busyPercent.toFixed(0)} % busy of ${m.cores * 100} % (these processes ${m.oursPercent.toFixed(0)} %, everything else ${m.othersPercent.toFixed(0)} %)`);
    if (m && r.processes.length === 0) out.push(`machine CPU during the ${r.system} load: ${m.busyPercent.toFixed(0)} % busy of ${m.cores * 100} % (the load generator ${m.oursPercent.toFixed(0)} %; the rest includes the --target nodes if they run on this machine)`);
    out.push(`machine speed (JSON round trips on one thread) around the ${r.system} load: ${r.cpuSpeedKops.before.toFixed(0)}k/s before, ${r.cpuSpeedKops.after.toFixed(0)}k/s after`);
    if (r.serverCpuUsPerOk !== undefined) out.push(`server CPU per ok request (${r.system}, all its processes): ${fmtInt(r.serverCpuUsPerOk)} µs`);
  }

  for (const r of results) {
    const lines: string[] = [];
    if (r.iroh) {
      lines.push(`Iroh bytes sent per acknowledged write: ${r.iroh.bytesPerAckedWrite === undefined ? '- (no writes)' : fmtInt(r.iroh.bytesPerAckedWrite)}; per request: ${r.iroh.bytesPerRequest === undefined ? '-' : fmtInt(r.iroh.bytesPerRequest)} (${(r.iroh.bytesSent / 1e6).toFixed(2)} MB in all)`);
      lines.push(`leader changes during the load: ${r.iroh.leaderChanges} (role and leader changes seen by replicas, summed over nodes); forwarded requests: ${fmtInt(r.iroh.forwarded)}; retries: ${r.iroh.retries}; worker restarts: ${r.iroh.workerRestarts}`);
      if (r.leadersPerNode) lines.push(`shards led per node after the load: ${r.leadersPerNode.map((n) => n ?? '?').join(' / ')}`);
      if (r.counters) {
        const sum = (k: string): number => (r.counters![k] ?? []).reduce<number>((a, b) => a + (b ?? 0), 0);
        const per = (a: number, b: number): string => (b > 0 ? (a / b).toFixed(2) : '-');
        const crow: string[][] = [['counter (per node, over the load)', ...r.urls.map((_, i) => `node ${i + 1}`), 'sum', 'per s']];
        for (const k of Object.keys(COUNTERS)) crow.push([k, ...r.counters[k]!.map((v) => (v === null ? '-' : fmtInt(v))), fmtInt(sum(k)), fmtInt(sum(k) / r.elapsedS)]);
        lines.push(...table(crow).split('\n'));
        lines.push(
          `per ok request: ${per(sum('commits'), r.counts.ok)} LMDB commits, ${per(sum('raftMessagesSent'), r.counts.ok)} raft messages, ${per(sum('irohFramesSent'), r.counts.ok)} Iroh frames; ` +
            `${per(sum('entriesPersisted'), sum('commits'))} entries per commit, ${per(sum('irohRecordsSent'), sum('irohFramesSent'))} records per frame, ${per(sum('entriesPersisted'), sum('turns'))} entries per turn`,
        );
      }
    }
    const v = r.verify;
    if (v.ackedWrites > 0) {
      if (cfg.mix.cas === true) {
        lines.push(`verification: ${fmtInt(v.ok)} of ${fmtInt(v.checked)} keys changed by ${fmtInt(v.ackedWrites)} acknowledged compare-and-sets read back at or past their highest acknowledged version, with that version's value (${v.seconds.toFixed(1)} s); missing ${v.missing}, wrong ${v.wrong}, unreadable ${v.unreadable}`);
      } else lines.push(
        `verification: ${fmtInt(v.ok)} of ${fmtInt(v.checked)} ${v.sampled ? `sampled (uniformly, of ${fmtInt(v.ackedWrites)}) ` : ''}acknowledged writes read back with their value (linearizable, random node, ${v.seconds.toFixed(1)} s); missing ${v.missing}, wrong ${v.wrong}, unreadable ${v.unreadable}`,
      );
    } else {
      lines.push('verification: no acknowledged writes to read back');
    }
    if (r.counts.readMismatches > 0) lines.push(`reads with a wrong value during the load: ${r.counts.readMismatches}`);
    if (Object.keys(r.counts.non2xxByCode).length > 0) lines.push(`non-2xx answers: ${Object.entries(r.counts.non2xxByCode).map(([k, n]) => `${k} x${n}`).join(', ')}`);
    if (Object.keys(r.counts.connErrors).length > 0) lines.push(`connection errors: ${Object.entries(r.counts.connErrors).map(([k, n]) => `${k} x${n}`).join(', ')}`);
    lines.push(`preload: ${r.preload.keys} keys in ${r.preload.seconds.toFixed(1)} s; load wall time ${r.elapsedS.toFixed(2)} s; autocannon counted ${fmtInt(r.autocannon.requests)} responses, ${r.autocannon.errors} errors, ${r.autocannon.timeouts} timeouts, ${r.autocannon.non2xx} non-2xx`);
    out.push('', `${r.system}:`, ...lines.map((l) => `  ${l}`));
  }
  const startup = extra.startup as { listeningS: number[]; healthyS: number } | undefined;
  if (startup) out.push('', `startup: listening after ${startup.listeningS.map((s) => s.toFixed(2)).join(' / ')} s; every node healthy after ${startup.healthyS.toFixed(2)} s`);
  const idle = extra.idle as { seconds: number; cpuPercent: (number | undefined)[]; irohBytesPerSec: number[] } | undefined;
  if (idle) out.push(`idle (${idle.seconds} s, after ${IDLE_SETTLE_MS / 1000} s settling): CPU ${idle.cpuPercent.map((c) => fmtOpt(c, 1)).join(' / ')} % of a core; Iroh ${idle.irohBytesPerSec.map((b) => fmtInt(b)).join(' / ')} B/s sent`);
  if (problems.length > 0) out.push('', 'PROBLEMS:', ...problems.map((p) => `  - ${p}`));
  return out.join('\n');
}

function problemsOf(r: SystemResult): string[] {
  const p: string[] = [...r.exits.map((e) => `${r.system}: ${e}`)];
  if (r.metricsMissing.length > 0) p.push(`${r.system}: /metrics did not answer on ${r.metricsMissing.join(', ')}: their counters are missing from the sums`);
  const v = r.verify;
  if (v.missing > 0 || v.wrong > 0) p.push(`${r.system}: ${v.missing} acknowledged writes missing and ${v.wrong} with a wrong value (${v.samples.slice(0, 3).join('; ')})`);
  if (v.unreadable > 0) p.push(`${r.system}: ${v.unreadable} acknowledged writes could not be read back: ${JSON.stringify(v.unreadableCodes)}`);
  if (r.counts.readMismatches > 0) p.push(`${r.system}: ${r.counts.readMismatches} reads returned a wrong value (${r.readMismatchSamples.slice(0, 3).join('; ')})`);
  if (r.counts.errors > 0) p.push(`${r.system}: ${r.counts.errors} request errors (${r.counts.timeouts} timeouts)`);
  const conflicts = Object.entries(r.counts.non2xxByCode).reduce((n, [k, v]) => n + (k.endsWith('412 VersionMismatch') ? v : 0), 0);
  if (r.counts.non2xx > 0) p.push(`${r.system}: ${r.counts.non2xx} non-2xx answers${conflicts > 0 ? ` (${conflicts} of them 412 VersionMismatch: compare-and-set conflicts, expected under --mix cas)` : ''}`);
  if (r.iroh && r.iroh.workerRestarts > 0) p.push(`${r.system}: ${r.iroh.workerRestarts} worker restarts during the load`);
  const drops = (r.counters?.outRingDrops ?? []).reduce<number>((a, b) => a + (b ?? 0), 0);
  if (drops > 0) p.push(`${r.system}: workers dropped ${drops} raft messages because their out-ring and outbox were full`);
  // A process that fell over is missing from "ours", so its CPU would show as someone else's.
  if (r.machineCpu && r.processes.length > 0 && r.exits.length === 0 && r.machineCpu.othersPercent > 20) {
    p.push(`${r.system}: other work on the machine used ${r.machineCpu.othersPercent.toFixed(0)} % of a core during the load: numbers are disturbed`);
  }
  if ((r.loadGenerator.cpuPercent ?? 0) > LOADGEN_SATURATED_PERCENT) {
    p.push(`${r.system}: the load generator used ${r.loadGenerator.cpuPercent!.toFixed(0)} % of a core: it may be the bottleneck (numbers are a lower bound)`);
  }
  return p;
}

/** Problems that make the run fail (exit 1), as opposed to numbers worth a look. */
function fatal(r: SystemResult): boolean {
  return r.verify.missing > 0 || r.verify.wrong > 0 || r.counts.readMismatches > 0;
}

// ---------------------------------------------------------------------------------------------

/** Server processes running now, for an interrupted run to clean up. */
const running = new Set<LocalServers>();

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    progress(`bench: ${sig}, stopping the servers`);
    void Promise.all([...running].map((s) => s.destroy())).finally(() => process.exit(130));
  });
}

interface IdleNode {
  readonly name: string;
  readonly pid: number;
  /** CPU over the window, % of one core. */
  readonly cpuPercent: number | undefined;
  /** VmRSS at the end of the window and the highest seen during it, bytes. */
  readonly rssBytes: number | undefined;
  readonly peakRssBytes: number | undefined;
  readonly irohBytesPerSec: number;
  readonly irohRecordsPerSec: number;
}

/** Each node's CPU, memory and Iroh traffic over `seconds` with no load, after IDLE_SETTLE_MS of quiet. */
async function measureIdle(servers: LocalServers, seconds: number, check: () => void) {
  await sleep(IDLE_SETTLE_MS);
  check();
  const pids = servers.servers.map((s) => s.pid);
  const urls = servers.urls;
  const rss = new RssPoller([...pids], 500);
  const c0 = pids.map(cpuSeconds);
  const m0 = await Promise.all(urls.map((u) => scrape(u)));
  rss.start();
  const i0 = performance.now();
  progress(`[iroh-raft] measuring the idle cluster for ${seconds} s`);
  await sleep(seconds * 1000);
  const secs = (performance.now() - i0) / 1000;
  const c1 = pids.map(cpuSeconds);
  const m1 = await Promise.all(urls.map((u) => scrape(u)));
  rss.stop();
  check();
  const rate = (i: number, name: string): number => (metric(m1, i, name) - metric(m0, i, name)) / secs;
  const nodes: IdleNode[] = servers.servers.map((s, i) => ({
    name: s.name,
    pid: s.pid,
    cpuPercent: c1[i] !== undefined && c0[i] !== undefined ? ((c1[i] - c0[i]) / secs) * 100 : undefined,
    rssBytes: vmBytes(s.pid, 'VmRSS'),
    peakRssBytes: rss.peak.get(s.pid),
    irohBytesPerSec: rate(i, 'iroh_raft_transport_bytes_sent_total'),
    irohRecordsPerSec: rate(i, 'iroh_raft_transport_records_sent_total'),
  }));
  return {
    seconds,
    measuredS: secs,
    cpuPercent: nodes.map((n) => n.cpuPercent),
    irohBytesPerSec: nodes.map((n) => n.irohBytesPerSec),
    leaderChanges: urls.reduce((a, _, i) => a + metric(m1, i, 'iroh_raft_shard_leader_changes_total') - metric(m0, i, 'iroh_raft_shard_leader_changes_total'), 0),
    nodes,
  };
}

/** --idle: a fresh cluster, healthy, then measured with no load; prints a table and writes the result. */
async function runIdle(cfg: Config): Promise<boolean> {
  const facts = { versions: versions(), machine: machine() };
  const problems: string[] = [];
  progress(`[iroh-raft] starting ${cfg.nodes} node(s), ${cfg.shards} shards, ${cfg.workers} worker(s) each`);
  const t0 = performance.now();
  const servers = await LocalServers.cluster({ nodes: cfg.nodes, shards: cfg.shards, workers: cfg.workers, nodeFlags: () => cfg.nodeFlags });
  running.add(servers);
  let idle: Awaited<ReturnType<typeof measureIdle>> | undefined;
  let keep = false;
  try {
    const check = assertRunning(servers);
    await waitHealthy(servers.urls, 60_000 + cfg.shards * 50, check);
    progress(`[iroh-raft] healthy after ${((performance.now() - t0) / 1000).toFixed(2)} s`);
    idle = await measureIdle(servers, cfg.durationS, check);
    await servers.stop();
  } catch (e) {
    keep = true;
    problems.push(e instanceof Error ? e.message : String(e));
  } finally {
    for (const g of servers.unexpectedExits()) problems.push(`${g.name} fell over: code ${g.exit.code}, signal ${g.exit.signal}`);
    keep ||= problems.length > 0;
    await servers.destroy(keep);
    running.delete(servers);
    if (keep) problems.push(`logs and data kept in ${servers.root}`);
  }
  const lines = [`\nidle: ${cfg.nodes} node(s), ${cfg.shards} shards, ${cfg.workers} worker(s) per node; ${cfg.durationS} s after ${IDLE_SETTLE_MS / 1000} s settling, no load`];
  if (idle) {
    const rows = [['node', 'pid', 'CPU %', 'RSS MiB', 'peak RSS MiB', 'Iroh B/s', 'Iroh records/s']];
    for (const n of idle.nodes) rows.push([n.name, String(n.pid), fmtOpt(n.cpuPercent, 1), fmtMiB(n.rssBytes), fmtMiB(n.peakRssBytes), fmtInt(n.irohBytesPerSec), n.irohRecordsPerSec.toFixed(1)]);
    lines.push(table(rows), `(CPU % is of one core; leader changes during the window: ${idle.leaderChanges})`);
  }
  if (problems.length > 0) lines.push('', 'PROBLEMS:', ...problems.map((p) => `  - ${p}`));
  console.log(lines.join('\n'));
  const out = { name: `idle-${cfg.name}`, ...facts, config: { nodes: cfg.nodes, shards: cfg.shards, workers: cfg.workers, durationS: cfg.durationS, settleS: IDLE_SETTLE_MS / 1000 }, idle, problems, failed: problems.length > 0 };
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${facts.machine.date as string}`.slice(0, 19).replace(/:/g, '') + `-idle-${cfg.name}.json`);
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\nresult: ${file}`);
  if (cfg.json) console.log(JSON.stringify(out));
  return out.failed;
}

/** Each node's profiles (written at its exit) over the load's window: a report and its data. */
function profileOf(dir: string, servers: LocalServers, window: { fromUs: number; toUs: number }, problems: string[]) {
  const nodes = servers.servers.map((s, i) => {
    const d = join(dir, `n${i + 1}`);
    try {
      return { node: s.name, dir: d, threads: summarizeDir(d, window) };
    } catch (e) {
      problems.push(`${s.name}: no profile in ${d}: ${e instanceof Error ? e.message : String(e)}`);
      return { node: s.name, dir: d, threads: [] };
    }
  });
  for (const n of nodes) {
    if (n.threads.length > 0 && n.threads.every((t) => t.totalMs === 0)) problems.push(`${n.node}: no profile sample falls inside the load window (${n.dir})`);
  }
  const text = [
    `where the time went during the load (node --cpu-prof self time, samples inside the load window; native calls count to their JavaScript caller;`,
    ` a thread blocked in a native call, an fsync or Atomics.wait counts as busy, so a worker's busy share is not its CPU):`,
    ...nodes.map((n) => formatProfiles(`${n.node} (${n.dir}):`, n.threads, 10)),
  ].join('\n');
  return { dir, window, text, nodes: nodes.map((n) => ({ node: n.node, dir: n.dir, threads: n.threads.map((t) => ({ ...t, functions: t.functions.slice(0, 40) })) })) };
}

/**
 * iroh-raft under the load once: a fresh local cluster (or the --target nodes), measured, stopped;
 * its result goes to `results`, what went wrong to `problems`, startup/stop/profile facts to `extra`.
 * True when the run failed.
 */
async function runNodes(cfg: Config, prefix: string, date: string, results: SystemResult[], problems: string[], extra: Record<string, unknown>): Promise<boolean> {
  let failed = false;
  let servers: LocalServers | undefined;
  let keep = false;
  const profileDir = cfg.profile ? join(RESULTS_DIR, `${date.slice(0, 19).replace(/:/g, '')}-${cfg.name}-profile`) : undefined;
  try {
    let urls: readonly string[];
    if (cfg.target) {
      urls = cfg.target;
      progress(`[iroh-raft] waiting for /healthz on ${urls.join(', ')}`);
      await waitHealthy(urls, 30_000);
    } else {
      progress(`[iroh-raft] starting ${cfg.nodes} node(s), ${cfg.shards} shards, ${cfg.workers} worker(s) each`);
      const t0 = performance.now();
      servers = await LocalServers.cluster({
        nodes: cfg.nodes,
        shards: cfg.shards,
        workers: cfg.workers,
        nodeFlags: (data: string) => [...cfg.nodeFlags, ...(profileDir !== undefined ? ['--cpu-prof', '--cpu-prof-dir', join(profileDir, basename(data))] : [])],
      });
      running.add(servers);
      urls = servers.urls;
      const check = assertRunning(servers);
      await waitHealthy(urls, 60_000 + cfg.shards * 50, check);
      extra.startup = { listeningS: servers.servers.map((s) => s.listeningS), healthyS: (performance.now() - t0) / 1000 };
      progress(`[iroh-raft] healthy after ${((performance.now() - t0) / 1000).toFixed(2)} s`);
      if (cfg.idleSeconds > 0) extra.idle = await measureIdle(servers, cfg.idleSeconds, check);
    }
    const r = await measure({ system: 'iroh-raft', api: 'iroh-raft', urls, procs: servers?.servers ?? [], isNode: true, exits: exitsOf(servers), liveUrls: liveUrlsOf(servers, urls) }, cfg, prefix);
    results.push(r);
    problems.push(...problemsOf(r));
    if (fatal(r)) {
      failed = true;
      keep = true;
    }
    if (servers) {
      progress('[iroh-raft] stopping the nodes (SIGTERM)');
      const fell = new Set(servers.unexpectedExits().map((g) => g.name));
      const stops = await servers.stop();
      extra.stop = stops;
      for (const s of stops.filter((x) => !fell.has(x.name))) {
        if (s.code !== 0 || s.killed) problems.push(`${s.name} did not stop cleanly on SIGTERM: code ${s.code}, signal ${s.signal}${s.killed ? ', killed after the grace period' : ''}`);
      }
      if (profileDir !== undefined) extra.profile = profileOf(profileDir, servers, r.loadWindowUs, problems);
    }
  } catch (e) {
    failed = true;
    keep = true;
    problems.push(`iroh-raft: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    if (servers) {
      const gone = servers.unexpectedExits();
      if (results.length === 0) for (const g of gone) problems.push(`${g.name} fell over: code ${g.exit.code}, signal ${g.exit.signal}, ${g.exit.afterS.toFixed(1)} s after start`);
      if (gone.length > 0) {
        failed = true;
        keep = true;
      }
      await servers.destroy(keep);
      running.delete(servers);
      if (keep) problems.push(`logs and data kept in ${servers.root}`);
    }
  }

  return failed;
}

/** The do-nothing ceiling server (bench/ceiling.ts) under the same load once. True when the run failed. */
async function runCeiling(cfg: Config, prefix: string, results: SystemResult[], problems: string[]): Promise<boolean> {
  let failed = false;
  let ceil: LocalServers | undefined;
  try {
    progress('[ceiling] starting bench/ceiling.ts');
    ceil = await LocalServers.ceiling();
    running.add(ceil);
    const url = ceil.urls[0]!;
    await waitHealthy([url], 30_000);
    // The same URL once per node: the same number of autocannon instances and connections.
    const urls = Array.from({ length: cfg.target?.length ?? cfg.nodes }, () => url);
    const r = await measure({ system: 'ceiling', api: 'iroh-raft', urls, procs: ceil.servers, isNode: false, exits: exitsOf(ceil), liveUrls: liveUrlsOf(ceil, urls) }, cfg, prefix);
    results.push(r);
    problems.push(...problemsOf(r));
    if (fatal(r)) failed = true;
    await ceil.stop();
  } catch (e) {
    failed = true;
    problems.push(`ceiling: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    await ceil?.destroy();
    if (ceil) running.delete(ceil);
  }
  return failed;
}

/** One full run: a fresh cluster (unless --target), the load, the report and its result file. */
async function runOnce(cfg: Config): Promise<{ results: SystemResult[]; failed: boolean; file: string }> {
  const facts = { versions: versions(), machine: machine() };
  const prefix = `bench-${Date.now().toString(36)}/`;
  const results: SystemResult[] = [];
  const problems: string[] = [];
  const extra: Record<string, unknown> = {};
  let failed = await runNodes(cfg, prefix, facts.machine.date as string, results, problems, extra);
  if (cfg.ceiling) failed = (await runCeiling(cfg, prefix, results, problems)) || failed;

  if (extra.profile !== undefined) console.log(`\n${(extra.profile as { text: string }).text}`);
  const out = {
    name: cfg.name,
    ...facts,
    config: { ...cfg, mix: cfg.mix.label, target: cfg.target ?? null, loadTimeoutS: LOAD_TIMEOUT_S, sideConcurrency: SIDE_CONCURRENCY, nodeArgs: `--log-level warn, defaults otherwise (tick 100 ms)${cfg.nodeFlags.length > 0 ? `; node flags ${cfg.nodeFlags.join(' ')}` : ''}${cfg.profile ? '; under --cpu-prof (slower than without)' : ''}` },
    ...extra,
    results,
    ofCeiling: (() => {
      const n = results.find((r) => r.system === 'iroh-raft');
      const c = results.find((r) => r.system === 'ceiling');
      return n && c && c.okPerSec > 0 ? { throughputPercent: (n.okPerSec / c.okPerSec) * 100 } : undefined;
    })(),
    problems,
    failed,
  };
  console.log(report(cfg, results, extra, problems));
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${facts.machine.date as string}`.slice(0, 19).replace(/:/g, '') + `-${cfg.name}.json`);
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\nresult: ${file}`);
  if (cfg.json) console.log(JSON.stringify(out));
  return { results, failed, file };
}

/** What the comparison with etcd holds equal and what it does not; printed with the figures. */
function againstEtcdNotes(cfg: Config): string[] {
  const reads = cfg.mix.readPercent === 0 ? '' : cfg.consistency === 'stale' ? ', reads that may be stale (iroh-raft: stale, etcd: serializable)' : ', linearizable reads (both ReadIndex)';
  return [
    'the same: load generator (autocannon in its own process), connections split evenly over the same number of members,',
    `  a new key per write, the same value bytes, durable writes (iroh-raft: an fsynced LMDB commit before the reply;`,
    `  etcd: its write-ahead log fsynced before the entry applies)${reads}, every acknowledged write read back afterwards,`,
    '  writes to a follower forwarded to the leader (iroh-raft over Iroh, etcd inside raft); the order alternates per round',
    'different: etcd is one raft group (every write through one leader), iroh-raft --shards groups with leaders spread',
    '  over the nodes; etcd members are Go processes that run on every core, an iroh-raft node is one main thread plus',
    "  --workers shard workers; etcd peers speak plain HTTP over TCP, iroh-raft nodes QUIC (TLS) through Iroh; etcd's JSON",
    '  gateway carries keys and values base64 in JSON (4/3 the bytes) and turns them into gRPC calls inside the member;',
    '  the etcd cluster lives from round to round (never compacted), iroh-raft starts a fresh cluster every round (unless --target)',
  ];
}

/** --against: iroh-raft and etcd alternately (ours, etcd, ours, etcd...), then both rows and the ratio with its spread. */
async function runAgainst(cfg: Config): Promise<boolean> {
  const against = cfg.against!;
  const facts = { versions: { ...versions(), etcd: etcdVersion() ?? 'unknown (not on this machine)' }, machine: machine() };
  const problems: string[] = [];
  let failed = false;
  let etcd: LocalServers | undefined;
  const rounds: { ours: SystemResult | undefined; etcd: SystemResult | undefined; extra: Record<string, unknown> }[] = [];
  try {
    let urls: readonly string[];
    let procs: { name: string; pid: number }[];
    if (against.urls === 'local') {
      const members = cfg.target?.length ?? cfg.nodes;
      progress(`[etcd] starting a local etcd cluster of ${members} member(s) (etcd ${etcdVersion() ?? ''})`);
      etcd = await startEtcd(members);
      running.add(etcd);
      urls = etcd.urls;
      procs = etcd.servers;
    } else {
      urls = against.urls;
      progress(`[etcd] waiting for /health on ${urls.join(', ')}`);
      await waitHealthy(urls, 30_000, undefined, '/health');
      // Members on this machine are watched like our nodes (CPU, RSS), but only when all of them
      // are: CPU per request summed over some members would understate etcd's.
      const local = (h: string): boolean => h === '127.0.0.1' || h === 'localhost' || h === '[::1]';
      const found = urls.map((u, i) => {
        const url = new URL(u);
        const pid = local(url.hostname) ? pidListeningOn(Number(url.port)) : undefined;
        return pid === undefined ? undefined : { name: `etcd ${i + 1}`, pid };
      });
      procs = found.every((p) => p !== undefined) && new Set(found.map((p) => p.pid)).size === found.length ? found : [];
      if (procs.length === 0) progress('[etcd] its members are not all local processes of this machine: no CPU or memory figures for etcd');
    }
    const etcdTarget: Target = { system: 'etcd', api: 'etcd', urls, procs, isNode: false, exits: exitsOf(etcd), liveUrls: liveUrlsOf(etcd, urls) };
    for (let i = 0; i < cfg.rounds; i++) {
      const prefix = `bench-${Date.now().toString(36)}-${i}/`;
      const results: SystemResult[] = [];
      const extra: Record<string, unknown> = {};
      const roundProblems: string[] = [];
      const ours = async (): Promise<void> => {
        progress(`\n[round ${i + 1} of ${cfg.rounds}] iroh-raft`);
        failed = (await runNodes(cfg, prefix, facts.machine.date as string, results, roundProblems, extra)) || failed;
      };
      const theirs = async (): Promise<void> => {
        progress(`\n[round ${i + 1} of ${cfg.rounds}] etcd at ${urls.join(', ')}`);
        try {
          const r = await measure(etcdTarget, cfg, prefix);
          results.push(r);
          roundProblems.push(...problemsOf(r));
          if (fatal(r)) failed = true;
        } catch (e) {
          failed = true;
          roundProblems.push(`etcd: ${e instanceof Error ? e.message : String(e)}`);
        }
      };
      // ours, etcd, etcd, ours, ours, etcd...: neither always runs right after the other's teardown.
      if (i % 2 === 0) {
        await ours();
        await theirs();
      } else {
        await theirs();
        await ours();
      }
      console.log(report(cfg, results, extra, roundProblems));
      problems.push(...roundProblems.map((p) => `round ${i + 1}: ${p}`));
      rounds.push({ ours: results.find((r) => r.system === 'iroh-raft'), etcd: results.find((r) => r.system === 'etcd'), extra });
    }
    if (etcd) await etcd.stop(10_000);
  } catch (e) {
    failed = true;
    problems.push(e instanceof Error ? e.message : String(e));
  } finally {
    if (etcd) {
      await etcd.destroy(failed);
      running.delete(etcd);
      if (failed) problems.push(`etcd logs and data kept in ${etcd.root}`);
    }
  }

  const rows = [['round', 'iroh-raft req/s', 'p50 ms', 'p99 ms', 'etcd req/s', 'p50 ms', 'p99 ms', 'req/s ratio', 'p99 ratio']];
  const ratio = (a: number | undefined, b: number | undefined): number | undefined => (a !== undefined && b !== undefined && b > 0 ? a / b : undefined);
  const pairs = rounds.map((r) => ({
    tput: ratio(r.ours?.okPerSec, r.etcd?.okPerSec),
    p99: ratio(r.ours?.latency.all.p99Ms, r.etcd?.latency.all.p99Ms),
    cpu: ratio(r.ours?.serverCpuUsPerOk, r.etcd?.serverCpuUsPerOk),
  }));
  const x = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '-' : `${v.toFixed(2)}x`);
  rounds.forEach((r, i) => {
    const o = r.ours;
    const e = r.etcd;
    rows.push([String(i + 1), o ? fmtInt(o.okPerSec) : '-', o ? fmtMs(o.latency.all.p50Ms) : '-', o ? fmtMs(o.latency.all.p99Ms) : '-', e ? fmtInt(e.okPerSec) : '-', e ? fmtMs(e.latency.all.p50Ms) : '-', e ? fmtMs(e.latency.all.p99Ms) : '-', x(pairs[i]!.tput), x(pairs[i]!.p99)]);
  });
  const med = (f: (r: SystemResult) => number | undefined, sys: 'ours' | 'etcd'): number => median(rounds.flatMap((r) => (r[sys] && f(r[sys]) !== undefined ? [f(r[sys])!] : [])));
  const spread = (k: 'tput' | 'p99' | 'cpu'): { median: number; min: number; max: number; n: number } => {
    const v = pairs.flatMap((p) => (p[k] === undefined ? [] : [p[k]]));
    return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
  };
  const tput = spread('tput');
  const p99 = spread('p99');
  const cpu = spread('cpu');
  rows.push(['median', fmtInt(med((r) => r.okPerSec, 'ours')), fmtMs(med((r) => r.latency.all.p50Ms, 'ours')), fmtMs(med((r) => r.latency.all.p99Ms, 'ours')), fmtInt(med((r) => r.okPerSec, 'etcd')), fmtMs(med((r) => r.latency.all.p50Ms, 'etcd')), fmtMs(med((r) => r.latency.all.p99Ms, 'etcd')), x(tput.median), x(p99.median)]);
  const where = `${cfg.target ? `iroh-raft target ${cfg.target.join(',')}` : `iroh-raft ${cfg.nodes} node(s), ${cfg.shards} shards, ${cfg.workers} worker(s) per node`}; etcd ${facts.versions.etcd} at ${against.urls === 'local' ? `a local cluster of ${cfg.nodes} member(s)` : against.urls.join(',')}`;
  const lines = [
    `\niroh-raft against etcd, alternating, ${rounds.length} round(s): ${where}`,
    `${cfg.connections} connections, ${cfg.durationS} s per run, mix ${cfg.mix.label}, ${cfg.valueSize} B values${cfg.mix.readPercent > 0 ? `, reads ${cfg.consistency}${cfg.consistency === 'stale' ? ' (etcd: serializable)' : ''}` : ''}`,
    table(rows),
    `iroh-raft / etcd requests/s: median ${x(tput.median)} (min ${x(tput.min)}, max ${x(tput.max)} over ${tput.n} pair(s)); p99: median ${x(p99.median)} (min ${x(p99.min)}, max ${x(p99.max)})`,
  ];
  if (cpu.n > 0) lines.push(`server CPU per ok request: iroh-raft median ${fmtInt(med((r) => r.serverCpuUsPerOk, 'ours'))} µs, etcd median ${fmtInt(med((r) => r.serverCpuUsPerOk, 'etcd'))} µs (ratio ${x(cpu.median)}, min ${x(cpu.min)}, max ${x(cpu.max)})`);
  else lines.push('server CPU per ok request: unknown for etcd (its processes are not on this machine or not visible)');
  lines.push(...againstEtcdNotes(cfg));
  if (problems.length > 0) lines.push('', 'PROBLEMS:', ...problems.map((p) => `  - ${p}`));
  console.log(lines.join('\n'));
  const out = {
    name: `${cfg.name}-vs-etcd`,
    ...facts,
    config: { ...cfg, mix: cfg.mix.label, target: cfg.target ?? null, loadTimeoutS: LOAD_TIMEOUT_S, sideConcurrency: SIDE_CONCURRENCY },
    summary: { throughputRatio: tput, p99Ratio: p99, cpuPerRequestRatio: cpu.n > 0 ? cpu : null },
    notes: againstEtcdNotes(cfg).join(' ').replace(/\s+/g, ' '),
    rounds,
    problems,
    failed,
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${facts.machine.date as string}`.slice(0, 19).replace(/:/g, '') + `-${out.name}.json`);
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\nresult: ${file}`);
  if (cfg.json) console.log(JSON.stringify(out));
  return failed;
}

async function runSweep(sweep: Sweep, json: boolean): Promise<boolean> {
  const runs: { value: number; file: string | undefined; failed: boolean; result: SystemResult | undefined }[] = [];
  for (const [i, c] of sweep.configs.entries()) {
    const value = sweep.values[i]!;
    progress(`\n[sweep] ${sweep.key} = ${value} (${i + 1} of ${sweep.values.length})`);
    const r = await runOnce(c);
    runs.push({ value, file: r.file, failed: r.failed, result: r.results.find((x) => x.system === 'iroh-raft') });
  }
  const rows = [[sweep.key, 'req/s', 'p50 ms', 'p99 ms', 'errors', 'non-2xx', 'failed']];
  for (const r of runs) {
    const x = r.result;
    rows.push([String(r.value), x ? fmtInt(x.okPerSec) : '-', x ? fmtMs(x.latency.all.p50Ms) : '-', x ? fmtMs(x.latency.all.p99Ms) : '-', x ? String(x.counts.errors) : '-', x ? String(x.counts.non2xx) : '-', r.failed ? 'yes' : 'no']);
  }
  const first = sweep.configs[0]!;
  const fixed = `${first.target ? `target ${first.target.length}` : `${sweep.key === 'nodes' ? '' : `${first.nodes} node(s), `}${sweep.key === 'shards' ? '' : `${first.shards} shards, `}${first.workers} worker(s)`}; ${sweep.key === 'connections' ? '' : `${first.connections} connections, `}${first.durationS} s, ${first.mix.label}${sweep.key === 'value-size' ? '' : `, ${first.valueSize} B values`}`;
  console.log(`\nsweep over ${sweep.key} (${fixed}):\n${table(rows, 0)}`);
  const summary = runs.map((r) => ({
    value: r.value,
    okPerSec: r.result?.okPerSec ?? null,
    p50Ms: r.result?.latency.all.p50Ms ?? null,
    p99Ms: r.result?.latency.all.p99Ms ?? null,
    errors: r.result?.counts.errors ?? null,
    non2xx: r.result?.counts.non2xx ?? null,
    failed: r.failed,
    resultFile: r.file ?? null,
  }));
  const base = join(RESULTS_DIR, new Date().toISOString().slice(0, 19).replace(/:/g, '') + `-${sweep.name}-sweep`);
  const units: Record<SweepKey, string> = { shards: 'shards', connections: 'HTTP connections in total', 'value-size': 'value size (bytes)', nodes: 'nodes' };
  const svg = sweepSvg({
    title: `iroh-raft: ${fixed}`,
    xLabel: `${units[sweep.key]} (evenly spaced)`,
    points: runs.map((r) => ({ x: r.value, reqPerSec: r.result?.okPerSec, p99Ms: r.result?.latency.all.p99Ms })),
  });
  const out = { name: sweep.name, sweep: { key: sweep.key, values: sweep.values }, fixed, versions: versions(), machine: machine(), runs: summary, failed: runs.some((r) => r.failed) };
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(`${base}.json`, `${JSON.stringify(out, null, 2)}\n`);
  writeFileSync(`${base}.svg`, svg);
  console.log(`\nsweep result: ${base}.json\nsweep chart:  ${base}.svg`);
  if (json) console.log(JSON.stringify(out));
  return out.failed;
}

async function main(): Promise<void> {
  const { cfg, sweep } = parseFlags(process.argv.slice(2));
  const failed = cfg.idle ? await runIdle(cfg) : cfg.against ? await runAgainst(cfg) : sweep ? await runSweep(sweep, cfg.json) : (await runOnce(cfg)).failed;
  process.exitCode = failed ? 1 : 0;
}

await main();
