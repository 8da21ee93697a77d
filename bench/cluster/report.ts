/**
 * What a run prints and keeps: the report of one run (the latency table, the process table, the
 * cost per request, the counters, the verification and the problems), which problems fail it, and
 * its result file in bench/results.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LatencySummary } from '../histogram.js';
import { PRELOAD_KEYS_MAX } from '../workload.js';
import type { Config } from './flags.js';
import { fileStamp, fmtInt, fmtMBps, fmtMiB, fmtMs, fmtOpt, problemLines, table } from './format.js';
import { COUNTERS } from './measure.js';
import type { SystemResult } from './measure.js';
import { IDLE_SETTLE_MS, LOADGEN_SATURATED_PERCENT, LOAD_TIMEOUT_S, RESULTS_DIR, SIDE_CONCURRENCY } from './settings.js';

/**
 * Writes `out` to bench/results/<date>-<out.name>.json (`date`: when the run started, ISO), says
 * where, and prints it as the last line with --json.
 */
export function writeResult(out: { readonly name: string }, date: string, json: boolean): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${fileStamp(date)}-${out.name}.json`);
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\nresult: ${file}`);
  if (json) console.log(JSON.stringify(out));
  return file;
}

/** The configuration as a result file records it. */
export function configOf(cfg: Config): Record<string, unknown> {
  return { ...cfg, mix: cfg.mix.label, target: cfg.target ?? null, loadTimeoutS: LOAD_TIMEOUT_S, sideConcurrency: SIDE_CONCURRENCY };
}

function latencyRow(label: string, okPerSec: string, mbPerSec: string, l: LatencySummary, errs: string[]): string[] {
  return [label, okPerSec, mbPerSec, fmtMs(l.p50Ms), fmtMs(l.p90Ms), fmtMs(l.p99Ms), fmtMs(l.p999Ms), fmtMs(l.maxMs), ...errs];
}

/** Requests/s, value MB/s, latency percentiles and errors per system; with the ceiling, the node as a share of it. */
function latencyTable(results: readonly SystemResult[], valueSize: number): string {
  const rows: string[][] = [['system', 'ok req/s', 'MB/s', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'errors', 'non-2xx', 'timeouts']];
  for (const r of results) {
    const errs = [String(r.counts.errors), String(r.counts.non2xx), String(r.counts.timeouts)];
    rows.push(latencyRow(r.system, fmtInt(r.okPerSec), fmtMBps(r.okMBPerSec), r.latency.all, errs));
    if (r.latency.put && r.latency.get) {
      const mb = (count: number): string => fmtMBps((count * valueSize) / r.elapsedS / 1e6);
      rows.push(latencyRow('  put', fmtInt(r.latency.put.count / r.elapsedS), mb(r.latency.put.count), r.latency.put, ['', '', '']));
      rows.push(latencyRow('  get', fmtInt(r.latency.get.count / r.elapsedS), mb(r.latency.get.count), r.latency.get, ['', '', '']));
    }
  }
  const node = results.find((r) => r.system !== 'ceiling');
  const ceiling = results.find((r) => r.system === 'ceiling');
  if (node && ceiling) {
    const p = (a: number, b: number): string => (b > 0 ? `${((a / b) * 100).toFixed(1)} %` : '-');
    rows.push(['% of ceiling', p(node.okPerSec, ceiling.okPerSec), '', '', '', '', '', '', '', '', '']);
    rows.push([
      'x ceiling latency',
      '',
      '',
      ...(['p50Ms', 'p90Ms', 'p99Ms', 'p999Ms', 'maxMs'] as const).map((k) =>
        ceiling.latency.all[k] > 0 ? `${(node.latency.all[k] / ceiling.latency.all[k]).toFixed(1)}x` : '-',
      ),
      '',
      '',
      '',
    ]);
  }
  return table(rows);
}

/** CPU (by thread for nodes) and memory of every process, then the machine's CPU and the cost per request. */
function processLines(results: readonly SystemResult[]): string[] {
  const prow: string[][] = [
    ['process', 'system', 'pid', 'CPU s', 'CPU %', 'main %', 'iroh %', 'other %', 'busiest other %', 'peak RSS MiB', 'VmHWM MiB', 'Iroh MB sent'],
  ];
  for (const r of results) {
    for (const p of [...r.processes, r.loadGenerator]) {
      const th = p.threads;
      prow.push([
        p.name,
        r.system,
        String(p.pid),
        fmtOpt(p.cpuS, 2),
        fmtOpt(p.cpuPercent, 0),
        fmtOpt(th?.mainPercent, 0),
        fmtOpt(th?.irohPercent, 0),
        fmtOpt(th?.otherPercent, 0),
        fmtOpt(th?.busiestOtherPercent, 0),
        fmtMiB(p.peakRssBytes),
        fmtMiB(p.hwmBytes),
        p.irohBytesSent === undefined ? '-' : (p.irohBytesSent / 1e6).toFixed(2),
      ]);
    }
  }
  const out = ['', table(prow, 2)];
  out.push('(CPU % is of one core over the load: main = main thread (HTTP, router, transport), iroh = tokio threads, other = shard workers, GC, libuv,');
  out.push(' busiest other = the busiest of those alone (with --workers 1 nearly always the shard worker);');
  out.push(' peak RSS is the highest VmRSS polled during the load, VmHWM the peak since the process started)');
  for (const r of results) {
    const m = r.machineCpu;
    if (m && r.processes.length > 0)
      out.push(
        `machine CPU during the ${r.system} load: ${m.busyPercent.toFixed(0)} % busy of ${m.cores * 100} % (these processes ${m.oursPercent.toFixed(0)} %, everything else ${m.othersPercent.toFixed(0)} %)`,
      );
    if (m && r.processes.length === 0)
      out.push(
        `machine CPU during the ${r.system} load: ${m.busyPercent.toFixed(0)} % busy of ${m.cores * 100} % (the load generator ${m.oursPercent.toFixed(0)} %; the rest includes the --target nodes if they run on this machine)`,
      );
    out.push(
      `machine speed (JSON round trips on one thread) around the ${r.system} load: ${r.cpuSpeedKops.before.toFixed(0)}k/s before, ${r.cpuSpeedKops.after.toFixed(0)}k/s after`,
    );
    if (r.serverCpuUsPerOk !== undefined) out.push(`server CPU per ok request (${r.system}, all its processes): ${fmtInt(r.serverCpuUsPerOk)} µs`);
  }
  return out;
}

/** A node system's Iroh traffic, leadership and counters over the load, per node and per request. */
function nodeLines(r: SystemResult): string[] {
  const lines: string[] = [];
  if (!r.iroh) return lines;
  lines.push(
    `Iroh bytes sent per acknowledged write: ${r.iroh.bytesPerAckedWrite === undefined ? '- (no writes)' : fmtInt(r.iroh.bytesPerAckedWrite)}; per request: ${r.iroh.bytesPerRequest === undefined ? '-' : fmtInt(r.iroh.bytesPerRequest)} (${(r.iroh.bytesSent / 1e6).toFixed(2)} MB in all)`,
  );
  lines.push(
    `leader changes during the load: ${r.iroh.leaderChanges} (role and leader changes seen by replicas, summed over nodes); forwarded requests: ${fmtInt(r.iroh.forwarded)}; retries: ${r.iroh.retries}; worker restarts: ${r.iroh.workerRestarts}`,
  );
  if (r.leadersPerNode) lines.push(`shards led per node after the load: ${r.leadersPerNode.map((n) => n ?? '?').join(' / ')}`);
  const counters = r.counters;
  if (!counters) return lines;
  const sum = (k: string): number => (counters[k] ?? []).reduce<number>((a, b) => a + (b ?? 0), 0);
  const per = (a: number, b: number): string => (b > 0 ? (a / b).toFixed(2) : '-');
  const crow: string[][] = [['counter (per node, over the load)', ...r.urls.map((_, i) => `node ${i + 1}`), 'sum', 'per s']];
  for (const k of Object.keys(COUNTERS))
    crow.push([k, ...counters[k]!.map((v) => (v === null ? '-' : fmtInt(v))), fmtInt(sum(k)), fmtInt(sum(k) / r.elapsedS)]);
  lines.push(...table(crow).split('\n'));
  lines.push(
    `per ok request: ${per(sum('commits'), r.counts.ok)} durable writes (write-ahead log records), ${per(sum('checkpoints'), r.counts.ok)} checkpoints, ${per(sum('raftMessagesSent'), r.counts.ok)} raft messages, ${per(sum('irohFramesSent'), r.counts.ok)} Iroh frames; ` +
      `${per(sum('entriesPersisted'), sum('commits'))} entries per durable write, ${per(sum('entriesApplied'), sum('checkpoints'))} entries per checkpoint, ${per(sum('irohRecordsSent'), sum('irohFramesSent'))} records per frame, ${per(sum('entriesPersisted'), sum('turns'))} entries per turn`,
  );
  return lines;
}

/** The read-back of the acknowledged writes, and every answer of the load that was not a 2xx. */
function outcomeLines(cfg: Config, r: SystemResult): string[] {
  const lines: string[] = [];
  const v = r.verify;
  if (v.ackedWrites > 0) {
    if (cfg.mix.cas === true) {
      lines.push(
        `verification: ${fmtInt(v.ok)} of ${fmtInt(v.checked)} keys changed by ${fmtInt(v.ackedWrites)} acknowledged compare-and-sets read back at or past their highest acknowledged version, with that version's value (${v.seconds.toFixed(1)} s); missing ${v.missing}, wrong ${v.wrong}, unreadable ${v.unreadable}`,
      );
    } else
      lines.push(
        `verification: ${fmtInt(v.ok)} of ${fmtInt(v.checked)} ${v.sampled ? `sampled (uniformly, of ${fmtInt(v.ackedWrites)}) ` : ''}acknowledged writes read back with their value (linearizable, random node, ${v.seconds.toFixed(1)} s); missing ${v.missing}, wrong ${v.wrong}, unreadable ${v.unreadable}`,
      );
  } else {
    lines.push('verification: no acknowledged writes to read back');
  }
  if (r.counts.readMismatches > 0) lines.push(`reads with a wrong value during the load: ${r.counts.readMismatches}`);
  if (Object.keys(r.counts.non2xxByCode).length > 0)
    lines.push(
      `non-2xx answers: ${Object.entries(r.counts.non2xxByCode)
        .map(([k, n]) => `${k} x${n}`)
        .join(', ')}`,
    );
  if (Object.keys(r.counts.connErrors).length > 0)
    lines.push(
      `connection errors: ${Object.entries(r.counts.connErrors)
        .map(([k, n]) => `${k} x${n}`)
        .join(', ')}`,
    );
  lines.push(
    `preload: ${r.preload.keys} keys in ${r.preload.seconds.toFixed(1)} s; load wall time ${r.elapsedS.toFixed(2)} s; autocannon counted ${fmtInt(r.autocannon.requests)} responses${cfg.warmupS > 0 ? ' (warm-up included)' : ''}, ${r.autocannon.errors} errors, ${r.autocannon.timeouts} timeouts, ${r.autocannon.non2xx} non-2xx`,
  );
  return lines;
}

/** The report of one run of `results` (iroh-raft, and the ceiling or etcd when they ran); `extra` holds startup and idle facts. */
export function report(cfg: Config, results: SystemResult[], extra: Record<string, unknown>, problems: string[]): string {
  const out: string[] = [];
  const where = cfg.target ? `target ${cfg.target.join(',')}` : `${cfg.nodes} node(s), ${cfg.shards} shards, ${cfg.workers} worker(s) per node`;
  out.push(
    `\n${where}; ${cfg.connections} connections, ${cfg.durationS} s${cfg.warmupS > 0 ? ` (after ${cfg.warmupS} s of warm-up: its answers are read back and its non-2xx counted, not its rate, latencies, CPU or counters)` : ''}, mix ${cfg.mix.label}, ${cfg.valueSize} B values${cfg.mix.readPercent > 0 ? `, reads ${cfg.consistency} over ${Math.min(cfg.keys, PRELOAD_KEYS_MAX)} keys` : ''}`,
  );
  if (results.length === 0) return [...out, ...problemLines(problems)].join('\n');
  out.push(latencyTable(results, cfg.valueSize), ...processLines(results));
  for (const r of results) out.push('', `${r.system}:`, ...[...nodeLines(r), ...outcomeLines(cfg, r)].map((l) => `  ${l}`));
  const startup = extra.startup as { listeningS: number[]; healthyS: number } | undefined;
  if (startup)
    out.push(
      '',
      `startup: listening after ${startup.listeningS.map((s) => s.toFixed(2)).join(' / ')} s; every node healthy after ${startup.healthyS.toFixed(2)} s`,
    );
  const idle = extra.idle as { seconds: number; cpuPercent: (number | undefined)[]; irohBytesPerSec: number[] } | undefined;
  if (idle)
    out.push(
      `idle (${idle.seconds} s, after ${IDLE_SETTLE_MS / 1000} s settling): CPU ${idle.cpuPercent.map((c) => fmtOpt(c, 1)).join(' / ')} % of a core; Iroh ${idle.irohBytesPerSec.map((b) => fmtInt(b)).join(' / ')} B/s sent`,
    );
  out.push(...problemLines(problems));
  return out.join('\n');
}

/** What went wrong or looks off in one system's measurement, one line each. */
export function problemsOf(r: SystemResult): string[] {
  const p: string[] = [...r.exits.map((e) => `${r.system}: ${e}`)];
  if (r.metricsMissing.length > 0) p.push(`${r.system}: /metrics did not answer on ${r.metricsMissing.join(', ')}: their counters are missing from the sums`);
  const v = r.verify;
  if (v.missing > 0 || v.wrong > 0)
    p.push(`${r.system}: ${v.missing} acknowledged writes missing and ${v.wrong} with a wrong value (${v.samples.slice(0, 3).join('; ')})`);
  if (v.unreadable > 0) p.push(`${r.system}: ${v.unreadable} acknowledged writes could not be read back: ${JSON.stringify(v.unreadableCodes)}`);
  if (r.counts.readMismatches > 0)
    p.push(`${r.system}: ${r.counts.readMismatches} reads returned a wrong value (${r.readMismatchSamples.slice(0, 3).join('; ')})`);
  if (r.counts.errors > 0) p.push(`${r.system}: ${r.counts.errors} request errors (${r.counts.timeouts} timeouts)`);
  const conflicts = Object.entries(r.counts.non2xxByCode).reduce((n, [k, v]) => n + (k.endsWith('412 VersionMismatch') ? v : 0), 0);
  if (r.counts.non2xx > 0)
    p.push(
      `${r.system}: ${r.counts.non2xx} non-2xx answers${conflicts > 0 ? ` (${conflicts} of them 412 VersionMismatch: compare-and-set conflicts, expected under --mix cas)` : ''}`,
    );
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
export function fatal(r: SystemResult): boolean {
  return r.verify.missing > 0 || r.verify.wrong > 0 || r.counts.readMismatches > 0;
}

/** Files `r` and its problems; true when they fail the run. */
export function recorded(r: SystemResult, results: SystemResult[], problems: string[]): boolean {
  results.push(r);
  problems.push(...problemsOf(r));
  return fatal(r);
}
