/**
 * Command line of the simulator:
 *   npm run sim -- --seeds 300                 seeds 1..300, one line per failure, a summary
 *   npm run sim -- --seed 17 [--verbose]       replay one seed, with its trace
 *   npm run sim -- --list-bugs                 the injectable bugs
 *   npm run sim -- --seeds 300 --inject-bug commit-previous-term
 *   npm run sim -- --seeds 300 --amnesia-unguarded   nodes that lose their disk come back as the replica they were
 * Options: --duration <virtual seconds of chaos>, --fail-fast.
 * Exit: 0 all passed (or, with --inject-bug, the bug was not caught); 1 a failure; 2 bad usage.
 */
import { performance } from 'node:perf_hooks';
import { BUGS } from '../../src/shards/raft/config.js';
import type { BugName } from '../../src/shards/raft/config.js';
import { CHECKS } from './checks.js';
import { DEFAULT_DURATION_MS, formatFailure, runSeed } from './run.js';
import type { RunOptions, SimResult } from './run.js';

const USAGE = `usage: npm run sim -- (--seeds N | --seed N | --list-bugs | --list-checks) [options]
  --seeds N          run seeds 1..N; exit 0 only if all pass
  --seed N           replay seed N and print its failure with the trace
  --verbose          with --seed: print the whole trace, and the stats
  --inject-bug NAME  run with a deliberately injected core bug (see --list-bugs); stops at the first violation
  --amnesia-unguarded
                     a node that loses its disk (moves mode) restarts under its old id with empty
                     storage, the bug the amnesia guard prevents; expect failures
  --duration S       virtual seconds of the chaos phase (default ${DEFAULT_DURATION_MS / 1000})
  --fail-fast        stop at the first failing seed
  --list-bugs        the injectable bugs
  --list-checks      the checks the simulator runs`;

class UsageError extends Error {}

interface Args {
  seeds?: number;
  seed?: number;
  verbose: boolean;
  bug?: BugName;
  amnesiaUnguarded: boolean;
  durationMs?: number;
  failFast: boolean;
  listBugs: boolean;
  listChecks: boolean;
  help: boolean;
}

function parse(argv: readonly string[]): Args {
  const a: Args = { amnesiaUnguarded: false, verbose: false, failFast: false, listBugs: false, listChecks: false, help: false };
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new UsageError(`${flag} needs a value`);
    return v;
  };
  const positiveInt = (v: string, flag: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} needs a positive integer, got "${v}"`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!;
    switch (f) {
      case '--seeds':
        a.seeds = positiveInt(value(i++, f), f);
        break;
      case '--seed':
        a.seed = positiveInt(value(i++, f), f);
        break;
      case '--inject-bug': {
        const b = value(i++, f);
        if (!Object.hasOwn(BUGS, b)) throw new UsageError(`unknown bug "${b}"; known bugs: ${Object.keys(BUGS).join(', ')}`);
        a.bug = b as BugName;
        break;
      }
      case '--duration': {
        const v = value(i++, f);
        const s = Number(v);
        if (!Number.isFinite(s) || s <= 0) throw new UsageError(`--duration needs a positive number of seconds, got "${v}"`);
        a.durationMs = s * 1000;
        break;
      }
      case '--amnesia-unguarded':
        a.amnesiaUnguarded = true;
        break;
      case '--verbose':
        a.verbose = true;
        break;
      case '--fail-fast':
        a.failFast = true;
        break;
      case '--list-bugs':
        a.listBugs = true;
        break;
      case '--list-checks':
        a.listChecks = true;
        break;
      case '--help':
      case '-h':
        a.help = true;
        break;
      default:
        throw new UsageError(`unknown argument "${f}"`);
    }
  }
  if (a.seeds !== undefined && a.seed !== undefined) throw new UsageError('give --seeds or --seed, not both');
  if (!a.help && !a.listBugs && !a.listChecks && a.seeds === undefined && a.seed === undefined) throw new UsageError('nothing to do');
  return a;
}

function main(argv: readonly string[]): number {
  let args: Args;
  try {
    args = parse(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`sim: ${e.message}\n${USAGE}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (args.listBugs) {
    for (const [name, what] of Object.entries(BUGS)) process.stdout.write(`${name.padEnd(34)} ${what}\n`);
    return 0;
  }
  if (args.listChecks) {
    for (const [name, what] of Object.entries(CHECKS)) process.stdout.write(`${name.padEnd(20)} ${what}\n`);
    return 0;
  }
  const opts: RunOptions = {
    ...(args.bug !== undefined ? { bug: args.bug } : {}),
    ...(args.durationMs !== undefined ? { durationMs: args.durationMs } : {}),
    ...(args.amnesiaUnguarded ? { amnesiaUnguarded: true } : {}),
  };
  if (args.seed !== undefined) return replay(args.seed, { ...opts, fullTrace: args.verbose }, args.verbose);
  return sweep(args.seeds!, opts, args.failFast || args.bug !== undefined);
}

function replay(seed: number, opts: RunOptions, verbose: boolean): number {
  const t0 = performance.now();
  const r = runSeed(seed, opts);
  const ms = performance.now() - t0;
  const out = process.stdout;
  if (r.ok) {
    out.write(`seed ${seed}${opts.bug ? ` with bug ${opts.bug}` : ''}: ok (${ms.toFixed(0)} ms)\n`);
    if (r.linearizabilityUnknown) out.write(`linearizability: unknown (checker budget ran out): ${r.linearizabilityUnknown}\n`);
    if (verbose) out.write(`parameters:\n${r.params}\nstats: ${JSON.stringify(r.stats)}\ntrace:\n${r.trace.join('\n')}\n`);
    return 0;
  }
  out.write(`${formatFailure(r)}\n`);
  out.write(`stats: ${JSON.stringify(r.stats)}\n`);
  out.write(`seed ${seed}${opts.bug ? ` with bug ${opts.bug}` : ''}: FAILED "${r.failure!.check}" (${ms.toFixed(0)} ms)\n`);
  return 1;
}

function sweep(seeds: number, opts: RunOptions, stopAtFirst: boolean): number {
  const t0 = performance.now();
  const failed: SimResult[] = [];
  const unknown: number[] = [];
  let run = 0;
  const moves = { seeds: 0, joins: 0, leaves: 0, deaths: 0, amnesias: 0, proposed: 0, applied: 0 };
  for (let seed = 1; seed <= seeds; seed++) {
    const r = runSeed(seed, opts);
    run++;
    if (r.params.includes('\nmoves: ')) {
      moves.seeds++;
      moves.joins += r.stats.joins;
      moves.leaves += r.stats.leaves;
      moves.deaths += r.stats.deaths;
      moves.amnesias += r.stats.amnesias;
      moves.proposed += r.stats.plannedChanges;
      moves.applied += r.stats.plannedApplied;
    }
    if (r.linearizabilityUnknown) unknown.push(seed);
    if (r.ok) continue;
    if (opts.bug !== undefined) {
      // Only a failure the bug causes proves the checks see it; the core's own problems do not.
      const { bug: _bug, ...without } = opts;
      const base = runSeed(seed, without);
      if (!base.ok && base.failure!.check === r.failure!.check) {
        process.stdout.write(`seed ${seed} fails "${r.failure!.check}" without the bug as well: not counted\n`);
        continue;
      }
    }
    failed.push(r);
    process.stdout.write(`seed ${seed} FAILED "${r.failure!.check}": ${r.failure!.message.split('\n')[0]}\n`);
    if (stopAtFirst) break;
  }
  const secs = (performance.now() - t0) / 1000;
  const out = process.stdout;
  const bug = opts.bug ? `, bug ${opts.bug}` : '';
  out.write(`${run} seeds${bug}: ${failed.length} failed, ${secs.toFixed(1)} s (${((secs * 1000) / run).toFixed(0)} ms/seed)\n`);
  if (moves.seeds > 0) {
    out.write(
      `moves mode: ${moves.seeds} seeds, ${moves.joins} joins, ${moves.leaves} leaves, ${moves.deaths} deaths, ${moves.amnesias} disk losses, ${moves.proposed} planned membership changes (${moves.applied} took effect)\n`,
    );
  }
  if (unknown.length > 0) out.write(`linearizability unknown (checker budget) for seeds: ${unknown.join(' ')}\n`);
  if (failed.length > 0) {
    const byCheck = new Map<string, number[]>();
    for (const f of failed) byCheck.set(f.failure!.check, [...(byCheck.get(f.failure!.check) ?? []), f.seed]);
    for (const [check, s] of byCheck) out.write(`  ${check}: seeds ${s.join(' ')}\n`);
    out.write(`replay one: npm run sim -- --seed ${failed[0]!.seed}${opts.bug ? ` --inject-bug ${opts.bug}` : ''}\n`);
    return 1;
  }
  if (opts.bug) out.write(`bug ${opts.bug} was NOT caught in seeds 1..${seeds}\n`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
