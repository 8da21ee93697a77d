/**
 * The scheduling policy of a node's helper threads (Linux). A node is one event-loop thread (HTTP,
 * router, transport) and threads it wakes all the time: the shard workers (a ring record), the Iroh
 * binding's tokio threads (every frame written), V8's and libuv's helpers. Under the kernel's
 * default policy a thread just woken may take the core from the thread that woke it; on a machine
 * whose cores are busy that is most wakeups, and the event loop, which every request passes
 * through twice, waits behind the thread it woke. Under `SCHED_BATCH` a woken thread does not
 * preempt: it runs when the waker blocks or its slice ends, with the same share of the CPU as
 * before. Measured with the bench on 2 cores (alternating pairs, README "What changed on the
 * way"): 3 nodes GET faster in 4 pairs of 4 (+5 to +11 %, 8-12 % less CPU per read); PUT and one
 * node's PUT mostly faster, within this machine's noise.
 *
 * Applied by the `start` command, which owns its process (a program that embeds the node keeps
 * its threads as they are): `chrt` (util-linux) sets every thread of the process to SCHED_BATCH
 * and then the main thread back to SCHED_OTHER. Threads created later by a helper thread inherit
 * SCHED_BATCH; the main thread's later ones do not, so `start` applies the policy again after a
 * crashed shard worker is restarted (a new thread).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';

export type HelperThreads = 'batch' | 'normal';
export const HELPER_THREADS: readonly HelperThreads[] = ['batch', 'normal'];

export type PolicyOutcome = { readonly applied: true; readonly threads: number } | { readonly applied: false; readonly why: string };

/** Runs chrt with `args`; undefined when it ran and succeeded, else why not. */
function chrt(args: readonly string[]): string | undefined {
  const r = spawnSync('chrt', args, { encoding: 'utf8', timeout: 5_000 });
  if (r.error !== undefined) return `chrt ${args.join(' ')}: ${r.error.message}`;
  if (r.status !== 0) return `chrt ${args.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr.trim()}`;
  return undefined;
}

/**
 * Sets every thread of process `pid` but its main one to SCHED_BATCH (see the file comment).
 * Never throws: off Linux, without `chrt`, or refused, it says why and leaves the threads as they
 * were (the main thread back to SCHED_OTHER if the first step went through).
 */
export function batchHelperThreads(pid: number = process.pid): PolicyOutcome {
  if (process.platform !== 'linux') return { applied: false, why: `SCHED_BATCH is Linux only (this is ${process.platform})` };
  const all = chrt(['--all-tasks', '--batch', '--pid', '0', String(pid)]);
  if (all !== undefined) return { applied: false, why: all };
  const main = chrt(['--other', '--pid', '0', String(pid)]);
  if (main !== undefined) {
    // The main thread must not stay behind the threads it wakes: put every thread back.
    chrt(['--all-tasks', '--other', '--pid', '0', String(pid)]);
    return { applied: false, why: main };
  }
  return { applied: true, threads: readdirSync(`/proc/${pid}/task`).length - 1 };
}
