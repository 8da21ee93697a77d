/**
 * --sweep KEY=V1,V2,...: one full run per value, each on a fresh cluster, then a summary table,
 * and bench/results/<date>-<name>-sweep.json and -sweep.svg (requests/s and p99 against the value).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sweepSvg } from '../chart.js';
import { facts } from './facts.js';
import type { Sweep, SweepKey } from './flags.js';
import { fileStamp, fmtInt, fmtMBps, fmtMs, table } from './format.js';
import type { SystemResult } from './measure.js';
import { runOnce } from './once.js';
import { progress } from './progress.js';
import { RESULTS_DIR } from './settings.js';

/** One value's run: its result file, whether it failed, and iroh-raft's figures (none when it did not get that far). */
interface SweepRun {
  readonly value: number;
  readonly file: string | undefined;
  readonly failed: boolean;
  readonly result: SystemResult | undefined;
}

/** How the chart's x axis names each swept flag. */
const UNITS: Record<SweepKey, string> = { shards: 'shards', connections: 'HTTP connections in total', 'value-size': 'value size (bytes)', nodes: 'nodes' };

/** The settings every run of the sweep shares, in words (the swept one left out). */
function fixedSettings(sweep: Sweep): string {
  const first = sweep.configs[0]!;
  return `${first.target ? `target ${first.target.length}` : `${sweep.key === 'nodes' ? '' : `${first.nodes} node(s), `}${sweep.key === 'shards' ? '' : `${first.shards} shards, `}${first.workers} worker(s)`}; ${sweep.key === 'connections' ? '' : `${first.connections} connections, `}${first.durationS} s, ${first.mix.label}${sweep.key === 'value-size' ? '' : `, ${first.valueSize} B values`}`;
}

function sweepTable(key: SweepKey, runs: readonly SweepRun[]): string {
  const rows = [[key, 'req/s', 'MB/s', 'p50 ms', 'p99 ms', 'errors', 'non-2xx', 'failed']];
  for (const r of runs) {
    const x = r.result;
    rows.push([
      String(r.value),
      x ? fmtInt(x.okPerSec) : '-',
      x ? fmtMBps(x.okMBPerSec) : '-',
      x ? fmtMs(x.latency.all.p50Ms) : '-',
      x ? fmtMs(x.latency.all.p99Ms) : '-',
      x ? String(x.counts.errors) : '-',
      x ? String(x.counts.non2xx) : '-',
      r.failed ? 'yes' : 'no',
    ]);
  }
  return table(rows, 0);
}

/** Each run's figures as the sweep's result file holds them (null where a run has none). */
function summaryOf(runs: readonly SweepRun[]) {
  return runs.map((r) => ({
    value: r.value,
    okPerSec: r.result?.okPerSec ?? null,
    okMBPerSec: r.result?.okMBPerSec ?? null,
    p50Ms: r.result?.latency.all.p50Ms ?? null,
    p99Ms: r.result?.latency.all.p99Ms ?? null,
    errors: r.result?.counts.errors ?? null,
    non2xx: r.result?.counts.non2xx ?? null,
    failed: r.failed,
    resultFile: r.file ?? null,
  }));
}

/** Runs every value of the sweep, prints the table, writes the sweep's JSON and chart. True when a run failed. */
export async function runSweep(sweep: Sweep, json: boolean): Promise<boolean> {
  const runs: SweepRun[] = [];
  for (const [i, c] of sweep.configs.entries()) {
    const value = sweep.values[i]!;
    progress(`\n[sweep] ${sweep.key} = ${value} (${i + 1} of ${sweep.values.length})`);
    const r = await runOnce(c);
    runs.push({ value, file: r.file, failed: r.failed, result: r.results.find((x) => x.system === 'iroh-raft') });
  }
  const fixed = fixedSettings(sweep);
  console.log(`\nsweep over ${sweep.key} (${fixed}):\n${sweepTable(sweep.key, runs)}`);
  const base = join(RESULTS_DIR, `${fileStamp(new Date().toISOString())}-${sweep.name}-sweep`);
  const svg = sweepSvg({
    title: `iroh-raft: ${fixed}`,
    xLabel: `${UNITS[sweep.key]} (evenly spaced)`,
    points: runs.map((r) => ({ x: r.value, reqPerSec: r.result?.okPerSec, p99Ms: r.result?.latency.all.p99Ms })),
  });
  const out = {
    name: sweep.name,
    sweep: { key: sweep.key, values: sweep.values },
    fixed,
    ...facts(),
    runs: summaryOf(runs),
    failed: runs.some((r) => r.failed),
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(`${base}.json`, `${JSON.stringify(out, null, 2)}\n`);
  writeFileSync(`${base}.svg`, svg);
  console.log(`\nsweep result: ${base}.json\nsweep chart:  ${base}.svg`);
  if (json) console.log(JSON.stringify(out));
  return out.failed;
}
