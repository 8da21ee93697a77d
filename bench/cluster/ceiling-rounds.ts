/**
 * --ceiling --rounds N: N full runs of iroh-raft and the do-nothing ceiling under the same load,
 * the order flipping every round (ours first, then the ceiling first, ...), then both rows per
 * round, the share of the ceiling (the ratio of the two median rates, the median per round with its
 * spread, and the median per order). One pair says little on a shared
 * machine: the ceiling's rate moves with the machine's speed more than iroh-raft's does, since its
 * load generator, not the server, is what it measures near its limit.
 */
import { median } from '../stats.js';
import { machine, versions } from './facts.js';
import type { Config } from './flags.js';
import { fmtInt, fmtMs, problemLines, rateCells, table } from './format.js';
import type { SystemResult } from './measure.js';
import { runOnce } from './once.js';
import { progress } from './progress.js';
import { configOf, writeResult } from './report.js';

interface Round {
  readonly ours: SystemResult | undefined;
  readonly ceiling: SystemResult | undefined;
  /** iroh-raft's requests/s as a percentage of the ceiling's in this round. */
  readonly percent: number | undefined;
  readonly file: string;
}

const pct = (v: number): string => (Number.isFinite(v) ? `${v.toFixed(1)} %` : '-');

/** The median of a figure over the rounds that have it. */
function med(rounds: readonly Round[], f: (r: Round) => number | undefined): number {
  return median(rounds.flatMap((r) => (f(r) === undefined ? [] : [f(r)!])));
}

/** The rounds side by side, then the medians. */
function ceilingRoundsTable(rounds: readonly Round[]): string {
  const rows = [['round', 'order', 'iroh-raft req/s', 'p50 ms', 'p99 ms', 'ceiling req/s', 'p50 ms', 'p99 ms', 'of ceiling']];
  rounds.forEach((r, i) =>
    rows.push([String(i + 1), i % 2 === 0 ? 'ours first' : 'ceiling first', ...rateCells(r.ours), ...rateCells(r.ceiling), pct(r.percent ?? NaN)]),
  );
  rows.push([
    'median',
    '',
    fmtInt(med(rounds, (r) => r.ours?.okPerSec)),
    fmtMs(med(rounds, (r) => r.ours?.latency.all.p50Ms)),
    fmtMs(med(rounds, (r) => r.ours?.latency.all.p99Ms)),
    fmtInt(med(rounds, (r) => r.ceiling?.okPerSec)),
    fmtMs(med(rounds, (r) => r.ceiling?.latency.all.p50Ms)),
    fmtMs(med(rounds, (r) => r.ceiling?.latency.all.p99Ms)),
    pct(med(rounds, (r) => r.percent)),
  ]);
  return table(rows);
}

/** The rounds; true when one failed (a node fell over, a write was not read back, ...). */
export async function runCeilingRounds(cfg: Config): Promise<boolean> {
  const run = { versions: versions(), machine: machine() };
  const rounds: Round[] = [];
  const problems: string[] = [];
  let failed = false;
  for (let i = 0; i < cfg.rounds; i++) {
    progress(`\n[round ${i + 1} of ${cfg.rounds}] ${i % 2 === 0 ? 'iroh-raft, then the ceiling' : 'the ceiling, then iroh-raft'}`);
    const r = await runOnce(cfg, i % 2 === 1);
    failed = r.failed || failed;
    const ours = r.results.find((x) => x.system === 'iroh-raft');
    const ceiling = r.results.find((x) => x.system === 'ceiling');
    const percent = ours && ceiling && ceiling.okPerSec > 0 ? (ours.okPerSec / ceiling.okPerSec) * 100 : undefined;
    if (percent === undefined) problems.push(`round ${i + 1}: no share of the ceiling (a run did not finish; see its report)`);
    if (r.failed) problems.push(`round ${i + 1} failed: see its report and ${r.file}`);
    rounds.push({ ours, ceiling, percent, file: r.file });
  }
  const shares = rounds.flatMap((r) => (r.percent === undefined ? [] : [r.percent]));
  const spread = { median: median(shares), min: Math.min(...shares), max: Math.max(...shares), n: shares.length };
  // The machine drifts within minutes, so the order inside a pair can favour either side for a
  // while: the share per order shows it, and an even number of rounds gives both orders equal weight.
  const byOrder = (first: 0 | 1): number => median(rounds.flatMap((r, i) => (i % 2 === first && r.percent !== undefined ? [r.percent] : [])));
  const ofMedians = (med(rounds, (r) => r.ours?.okPerSec) / med(rounds, (r) => r.ceiling?.okPerSec)) * 100;
  console.log(
    [
      `\niroh-raft against the ceiling, alternating, ${rounds.length} round(s): ${cfg.nodes} node(s), ${cfg.shards} shards, ${cfg.workers} worker(s) per node`,
      `${cfg.connections} connections, ${cfg.durationS} s per run after ${cfg.warmupS} s of warm-up, mix ${cfg.mix.label}, ${cfg.valueSize} B values`,
      ceilingRoundsTable(rounds),
      `share of the ceiling: iroh-raft's median rate over the ceiling's ${pct(ofMedians)}; per round median ${pct(spread.median)} (min ${pct(spread.min)}, max ${pct(spread.max)} over ${spread.n} round(s)); iroh-raft first ${pct(byOrder(0))}, the ceiling first ${pct(byOrder(1))}`,
      ...(rounds.length % 2 === 1
        ? ['(an odd number of rounds runs iroh-raft first once more than the ceiling: give an even --rounds for a balanced figure)']
        : []),
      ...problemLines(problems),
    ].join('\n'),
  );
  const out = {
    name: `${cfg.name}-of-ceiling`,
    ...run,
    config: configOf(cfg),
    summary: { ofMediansPercent: ofMedians, perRoundPercent: spread, oursFirstPercent: byOrder(0), ceilingFirstPercent: byOrder(1) },
    rounds: rounds.map((r) => ({ percent: r.percent ?? null, ours: r.ours ?? null, ceiling: r.ceiling ?? null, file: r.file })),
    problems,
    failed,
  };
  writeResult(out, run.machine.date, cfg.json);
  return failed;
}
