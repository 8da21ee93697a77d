/**
 * For the seed-sweep tests: runs a range of seeds and reports each failure in one line,
 * with the full report (check, message, trace) of the first one, so a red test names the seed to
 * replay and shows what happened.
 */
import { formatFailure, runSeed } from './run.js';

export interface Sweep {
  /** One line per failing seed: seed, check, the first line of the message. */
  readonly failures: string[];
  /** The full report of the first failing seed, or ''. */
  readonly firstReport: string;
}

export function sweep(first: number, last: number): Sweep {
  const failures: string[] = [];
  let firstReport = '';
  for (let seed = first; seed <= last; seed++) {
    const r = runSeed(seed);
    if (r.ok) continue;
    failures.push(`seed ${seed} "${r.failure!.check}": ${r.failure!.message.split('\n')[0]}`);
    if (firstReport === '') firstReport = `${formatFailure(r)}\nreplay: npm run sim -- --seed ${seed}`;
  }
  return { failures, firstReport };
}

/** Seed ranges of one test each: small enough that a test stays well within the test timeout. */
export function chunks(first: number, last: number, size: number): [number, number][] {
  const out: [number, number][] = [];
  for (let a = first; a <= last; a += size) out.push([a, Math.min(last, a + size - 1)]);
  return out;
}
