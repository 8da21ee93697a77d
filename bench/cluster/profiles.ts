/**
 * --profile: the nodes run under `node --cpu-prof`, each writing its threads' profiles at exit
 * into a directory of its own; after the run they are summarized over the load's window only.
 */
import { basename, join } from 'node:path';
import type { LocalServers } from '../local-cluster.js';
import { formatProfiles, summarizeDir } from '../profile.js';
import { fileStamp } from './format.js';
import { RESULTS_DIR } from './settings.js';

/** Where a run's profiles are kept: bench/results/<date>-<name>-profile/ (`date`: when the run started, ISO). */
export function profileDir(date: string, name: string): string {
  return join(RESULTS_DIR, `${fileStamp(date)}-${name}-profile`);
}

/** The node flags that make the node with data directory `dataDir` write its profiles under `dir`. */
export function profileFlags(dir: string, dataDir: string): string[] {
  return ['--cpu-prof', '--cpu-prof-dir', join(dir, basename(dataDir))];
}

/** Each node's profiles (written at its exit) over the load's window: a report and its data. */
export function profileOf(dir: string, servers: LocalServers, window: { fromUs: number; toUs: number }, problems: string[]) {
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
  return {
    dir,
    window,
    text,
    nodes: nodes.map((n) => ({ node: n.node, dir: n.dir, threads: n.threads.map((t) => ({ ...t, functions: t.functions.slice(0, 40) })) })),
  };
}
