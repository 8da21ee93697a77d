/**
 * One simulator run: `runSeed(seed)` draws the seed's parameters, runs the chaos phase and the
 * liveness phase, then checks the client history for linearizability. Same seed, same run.
 */
import type { BugName } from '../../src/shards/raft/config.js';
import { Prng } from '../../src/shards/raft/prng.js';
import { Violation } from './checks.js';
import type { CheckName } from './checks.js';
import { checkHistory } from './linearizability.js';
import type { Operation } from './history.js';
import { describeParams, drawParams, leaderChurn, withMoves } from './params.js';
import type { SimParams } from './params.js';
import { Sim } from './sim.js';
import type { SimStats } from './sim.js';
import type { NextStep } from '../../src/router/moves.js';

/** Virtual length of the chaos phase; sized so one seed takes a fraction of a second. */
export const DEFAULT_DURATION_MS = 15_000;
/** Trace lines a failure report carries. */
export const TRACE_TAIL_LINES = 30;

export interface SimFailure {
  readonly check: CheckName;
  readonly message: string;
  /** The last events before the failure, oldest first. */
  readonly trace: string[];
}

export interface SimResult {
  readonly ok: boolean;
  readonly seed: number;
  readonly failure?: SimFailure;
  readonly stats: SimStats;
  /** The seed's drawn parameters, for the report. */
  readonly params: string;
  /** Set when the linearizability checker ran out of budget: a pass, reported. */
  readonly linearizabilityUnknown?: string;
  /** The trace of a passing run (its tail, or all of it with `fullTrace`); a failure carries its own. */
  readonly trace: string[];
}

export interface RunOptions {
  readonly bug?: BugName;
  readonly durationMs?: number;
  /** Keep the whole trace instead of its tail (for a verbose replay). */
  readonly fullTrace?: boolean;
  /**
   * Adjusts the seed's drawn parameters (after the draw, so the rest of the run still follows
   * the seed); for regression tests that pin a scenario the plain swarm reaches only rarely.
   */
  readonly tweak?: (p: SimParams) => SimParams;
  /** Moves mode: the planner's step function instead of src/router/moves.ts `nextStep`. */
  readonly nextStep?: NextStep;
  /**
   * Moves mode: a node that lost its disk restarts under its old id with empty storage, the bug
   * the amnesia guard prevents (see MovesParams.amnesiaUnguarded); never on by default.
   */
  readonly amnesiaUnguarded?: boolean;
}

/** Share of seeds that run the leader-churn profile (see {@link leaderChurn}). */
const CHURN_SEED_SHARE = 0.2;
const CHURN_SALT = 0x5eedc4a1;
/** Share of seeds whose groups go quiet when idle (with the shell's wake modeled, see Sim). */
const QUIESCE_SEED_SHARE = 0.4;
const QUIESCE_SALT = 0x0901e7;
/** Share of seeds whose membership changes come from the planner while nodes join, leave and die (see test/sim/moves.ts). */
const MOVES_SEED_SHARE = 0.3;
const MOVES_SALT = 0x30fe5;
/** Share of seeds whose replicas stagger their first campaign after each start by rank (RaftConfig.campaignStaggerTicks). */
const STAGGER_SEED_SHARE = 0.4;
const STAGGER_SALT = 0x57a66e;
/** Share of seeds whose nodes run some ticks late: the clocks move, the timers do not (RawNode.elapse). */
const LATE_TICK_SEED_SHARE = 0.4;
const LATE_TICK_SALT = 0x1a7e71c;

export function runSeed(seed: number, opts: RunOptions = {}): SimResult {
  const prng = new Prng(seed);
  let params = drawParams(prng);
  // Drawn from its own generator, so the main stream (and every other seed) is unchanged.
  if (new Prng(seed ^ CHURN_SALT).chance(CHURN_SEED_SHARE)) params = leaderChurn(params);
  const q = new Prng(seed ^ QUIESCE_SALT);
  // Quiet needs idle stretches: these seeds' clients pause longer between operations.
  // The faults that matter to quiet groups come with them: links between a leader and one
  // follower failing one at a time, late copies of campaign messages reaching quiet followers,
  // and lease reads at a leader that is quiet (and may have been deposed meanwhile).
  if (q.chance(QUIESCE_SEED_SHARE)) {
    params = {
      ...params,
      quiesceAfterTicks: q.pick([2, 5, 15]),
      thinkMaxMs: q.pick([100, 300, 1000]),
      linkCutPerSec: q.pick([1, 3, 10]),
      lateCampaignP: q.pick([0.7, 1]),
      staleHintReadP: q.pick([0.7, 1]),
    };
    // Drawn last, so the draws above stay what they were for every seed.
    if (q.chance(0.5)) params = { ...params, quiesceNewLeaderAfterTicks: 1 };
  }
  // Staggered first campaigns (a preferred replica per group) in some seeds, from a generator of their own.
  const st = new Prng(seed ^ STAGGER_SALT);
  if (st.chance(STAGGER_SEED_SHARE)) params = { ...params, campaignStaggerTicks: st.pick([1, 2]) * params.electionTicks };
  // Late ticks (clock moves, timers do not) in some seeds: the shard host's catch-up after a stall.
  const lt = new Prng(seed ^ LATE_TICK_SALT);
  if (lt.chance(LATE_TICK_SEED_SHARE)) params = { ...params, lateTickP: lt.pick([0.1, 0.3, 0.6]), lateTickSeed: lt.int(1, 1 << 30) };
  const mv = new Prng(seed ^ MOVES_SALT);
  if (mv.chance(MOVES_SEED_SHARE)) params = withMoves(params, mv);
  if (opts.tweak) params = opts.tweak(params);
  if (opts.amnesiaUnguarded === true && params.moves !== undefined) params = { ...params, moves: { ...params.moves, amnesiaUnguarded: true } };
  const sim = new Sim(prng, params, {
    ...(opts.bug !== undefined ? { bug: opts.bug } : {}),
    ...(opts.nextStep !== undefined ? { nextStep: opts.nextStep } : {}),
    chaosMs: opts.durationMs ?? DEFAULT_DURATION_MS,
    traceLines: opts.fullTrace ? Infinity : TRACE_TAIL_LINES,
  });
  const base = { seed, params: describeParams(params), trace: [] as string[] };
  try {
    sim.run();
  } catch (e) {
    return { ...base, ok: false, stats: sim.stats, failure: toFailure(e, sim) };
  }
  const lin = checkHistory(sim.history);
  if (lin.ok === false) {
    const ops = lin.operations.map(formatOp);
    return {
      ...base,
      ok: false,
      stats: sim.stats,
      failure: { check: 'linearizability', message: `key ${lin.key}: ${lin.message}\n${ops.join('\n')}`, trace: sim.trace.format() },
    };
  }
  const trace = opts.fullTrace ? sim.trace.format() : [];
  if (lin.ok === 'unknown') return { ...base, ok: true, stats: sim.stats, trace, linearizabilityUnknown: `key ${lin.key}: ${lin.message}` };
  return { ...base, ok: true, stats: sim.stats, trace };
}

function toFailure(e: unknown, sim: Sim): SimFailure {
  const trace = sim.trace.format();
  if (e instanceof Violation) {
    const context = e.check === 'liveness' ? '' : `\n${sim.describeGroups()}`;
    return { check: e.check, message: `${e.message}${context}`, trace };
  }
  const err = e instanceof Error ? e : new Error(String(e));
  const frames = (err.stack ?? '').split('\n').slice(1, 8).join('\n');
  return { check: 'exception', message: `${err.name}: ${err.message}\n${frames}\n${sim.describeGroups()}`, trace };
}

export interface BugHunt {
  /** The first seed whose run with the bug broke a check that the same seed keeps without it. */
  readonly caughtBy?: SimResult;
  /** Seeds run with the bug. */
  readonly seedsRun: number;
  /** Seeds that failed with the bug but equally without it (a problem of the core itself, not the injected bug). */
  readonly alsoFailsWithoutBug: number[];
}

/**
 * Runs seeds `first..last` with `bug` until one catches it. A failure counts only if the seed does
 * not fail the same way without the bug: otherwise it is the core's own problem and proves nothing
 * about the checks.
 */
export function huntBug(bug: BugName, first: number, last: number, opts: Omit<RunOptions, 'bug'> = {}): BugHunt {
  const alsoFailsWithoutBug: number[] = [];
  for (let seed = first; seed <= last; seed++) {
    const r = runSeed(seed, { ...opts, bug });
    if (r.ok) continue;
    const base = runSeed(seed, opts);
    if (!base.ok && base.failure?.check === r.failure?.check) {
      alsoFailsWithoutBug.push(seed);
      continue;
    }
    return { caughtBy: r, seedsRun: seed - first + 1, alsoFailsWithoutBug };
  }
  return { seedsRun: last - first + 1, alsoFailsWithoutBug };
}

/** The report of one failed seed: check, message, then the trace. */
export function formatFailure(r: SimResult): string {
  if (r.failure === undefined) return `seed ${r.seed}: ok`;
  return [`seed ${r.seed} failed check "${r.failure.check}": ${r.failure.message}`, 'parameters:', r.params, 'trace (oldest first):', ...r.failure.trace].join(
    '\n',
  );
}

export function formatOp(op: Operation): string {
  const i = op.input;
  const what = i.op === 'get' ? `get ${i.key}` : i.op === 'put' ? `put ${i.key}=${i.value}` : `cas ${i.key} ${i.expected} -> ${i.value}`;
  const out =
    op.output === undefined
      ? '?'
      : op.output.kind === 'ok'
        ? 'ok'
        : op.output.kind === 'value'
          ? `= ${op.output.value}`
          : op.output.swapped
            ? 'swapped'
            : 'not swapped';
  const ret = Number.isFinite(op.ret) ? op.ret.toFixed(3) : 'never';
  return `  op${op.id} c${op.client} [${op.call.toFixed(3)}, ${ret}] ${what} -> ${out}`;
}
