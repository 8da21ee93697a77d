/**
 * Disk loss in the simulator (moves mode): a member crashes and loses every group's durable raft
 * state, its identity kept. Coming back as the replica it was (the bug the amnesia guard of
 * src/main/cluster-start.ts prevents), it has forgotten its votes and the entries it
 * acknowledged, so its vote helps elect a leader that lacks committed entries: the checks must
 * catch it. Coming back as the guard has it (old id dead, a new member under a spare id), every
 * check holds on the same seeds; with no disk loss at all, so do they.
 */
import { describe, expect, test } from 'vitest';
import { MessageType, emptyMessage } from '../../../src/shards/raft/types.js';
import type { LogIndex, Message, NodeId, Term } from '../../../src/shards/raft/types.js';
import { GroupRecord, Violation } from '../../sim/checks.js';
import type { CheckName } from '../../sim/checks.js';
import { diskLossUnderFire } from '../../sim/params.js';
import type { SimParams } from '../../sim/params.js';
import { formatFailure, runSeed } from '../../sim/run.js';
import type { SimResult } from '../../sim/run.js';

/**
 * Twenty seeds each: what a run catches depends on how its faults meet its traffic, so with fewer
 * seeds a change to what raft sends (not to its safety) moves a count across a bound by chance.
 */
const SEEDS = Array.from({ length: 20 }, (_, i) => i + 1);
const DURATION_MS = 3000;

/**
 * The checks a replica that forgot its state can break: it refuses entries it had acknowledged,
 * a commit is lost, two leaders win one term, two entries sit at one (index, term).
 */
const CONSEQUENCES: readonly CheckName[] = ['acknowledged-lost', 'committed-changed', 'election-safety', 'log-matching'];

function run(tweak: (p: SimParams) => SimParams): SimResult[] {
  return SEEDS.map((seed) => runSeed(seed, { durationMs: DURATION_MS, tweak }));
}

/** The failed runs, each checked to be a consequence of a disk loss; logs which seeds which check caught. */
function caught(what: string, results: readonly SimResult[]): Map<CheckName, number[]> {
  const failed = results.filter((r) => !r.ok);
  const byCheck = new Map<CheckName, number[]>();
  for (const r of failed) {
    expect(CONSEQUENCES, formatFailure(r)).toContain(r.failure!.check);
    expect(r.stats.amnesias, formatFailure(r)).toBeGreaterThan(0);
    byCheck.set(r.failure!.check, [...(byCheck.get(r.failure!.check) ?? []), r.seed]);
  }
  const list = [...byCheck].map(([c, s]) => `${c} (seeds ${s.join(' ')})`).join(', ');
  console.log(`${what}: ${failed.length}/${results.length} seeds caught: ${list}`);
  return byCheck;
}

describe('simulator disk loss (amnesia)', () => {
  test('unguarded, one disk loss per run: the node comes back as the replica it was, and a committed entry is replaced', () => {
    const byCheck = caught(
      'unguarded, one disk loss',
      run((p) => diskLossUnderFire(p, true, 1)),
    );
    // The harm the guard exists for: an entry once committed is replaced.
    expect(byCheck.get('committed-changed')?.length ?? 0).toBeGreaterThanOrEqual(1);
  });

  test('unguarded, up to two disk losses per run: the checks catch it on a third of the seeds or more', () => {
    const byCheck = caught(
      'unguarded, two disk losses',
      run((p) => diskLossUnderFire(p, true)),
    );
    const failed = [...byCheck.values()].reduce((n, s) => n + s.length, 0);
    expect(failed).toBeGreaterThanOrEqual(Math.ceil(SEEDS.length / 3));
    expect(byCheck.get('committed-changed')?.length ?? 0).toBeGreaterThanOrEqual(1);
  });

  test('guarded: the same seeds pass; the old ids die, the nodes rejoin as new members and get replicas from the planner', () => {
    for (const [results, lossesMax] of [
      [run((p) => diskLossUnderFire(p, false, 1)), 1],
      [run((p) => diskLossUnderFire(p, false)), 2],
    ] as const) {
      for (const r of results) expect(r.ok, formatFailure(r)).toBe(true);
      const losses = results.reduce((n, r) => n + r.stats.amnesias, 0);
      const planned = results.reduce((n, r) => n + r.stats.plannedApplied, 0);
      expect(losses).toBeGreaterThanOrEqual(results.length * 0.5 * lossesMax);
      // Each loss takes the lost id out of its group and adds the new id as a learner, then a voter.
      expect(planned).toBeGreaterThanOrEqual(2 * losses);
    }
  });

  test('without disk loss the same seeds pass: the unguarded failures come from the disk losses', () => {
    const results = run((p) => {
      const q = diskLossUnderFire(p, true);
      return { ...q, moves: { ...q.moves!, amnesiaPerSec: 0 } };
    });
    for (const r of results) expect(r.ok, formatFailure(r)).toBe(true);
    for (const r of results) expect(r.stats.amnesias).toBe(0);
  });

  test('a guarded seed replays identically, with the new member in the trace', () => {
    const seed = run((p) => diskLossUnderFire(p, false)).find((r) => r.stats.amnesias > 0)!.seed;
    const opts = { durationMs: DURATION_MS, fullTrace: true, tweak: (p: SimParams) => diskLossUnderFire(p, false) };
    const a = runSeed(seed, opts);
    const b = runSeed(seed, opts);
    expect(b.trace).toEqual(a.trace);
    expect(a.trace.some((line) => /DISK LOST: its id is dead; it comes back as node [45]/.test(line))).toBe(true);
    expect(a.trace.some((line) => /planner: addLearner [45] /.test(line))).toBe(true);
  });
});

describe('acknowledged-lost', () => {
  const resp = (term: number, index: number, reject = false): Message => ({
    ...emptyMessage(MessageType.AppResp, 2 as NodeId, 1 as NodeId, term as Term),
    index: index as LogIndex,
    ...(reject ? { reject: true, rejectHint: 1 as LogIndex } : {}),
  });

  test('a refusal at or below what the replica acknowledged in the same term breaks it', () => {
    const rec = new GroupRecord(0);
    rec.onAppResp(2, resp(3, 12));
    expect(() => rec.onAppResp(2, resp(3, 12, true))).toThrow(Violation);
    try {
      rec.onAppResp(2, resp(3, 7, true));
    } catch (e) {
      expect((e as Violation).check).toBe('acknowledged-lost');
    }
  });

  test('a refusal above it, or in another term, holds', () => {
    const rec = new GroupRecord(0);
    rec.onAppResp(2, resp(3, 12));
    expect(() => rec.onAppResp(2, resp(3, 13, true))).not.toThrow();
    expect(() => rec.onAppResp(2, resp(4, 5, true))).not.toThrow();
    expect(() => rec.onAppResp(3, resp(3, 5, true))).not.toThrow();
  });
});
