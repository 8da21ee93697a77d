/**
 * One full run, the default mode and each step of --sweep: iroh-raft under the load, then with
 * --ceiling the do-nothing ceiling server (bench/ceiling.ts) under the same load; the report,
 * the profiles with --profile, and the result file.
 */
import { waitHealthy } from '../kv-client.js';
import { LocalServers } from '../local-cluster.js';
import { facts } from './facts.js';
import type { Config } from './flags.js';
import { measure } from './measure.js';
import type { SystemResult } from './measure.js';
import { runNodes } from './nodes.js';
import { progress } from './progress.js';
import { configOf, recorded, report, writeResult } from './report.js';
import { exitsOf, liveUrlsOf, release, track } from './servers.js';
import { HEALTHY_TIMEOUT_MS } from './settings.js';

/** The do-nothing ceiling server (bench/ceiling.ts) under the same load once. True when the run failed. */
async function runCeiling(cfg: Config, prefix: string, results: SystemResult[], problems: string[]): Promise<boolean> {
  let failed = false;
  let ceil: LocalServers | undefined;
  try {
    progress('[ceiling] starting bench/ceiling.ts');
    ceil = track(await LocalServers.ceiling());
    const url = ceil.urls[0]!;
    await waitHealthy([url], HEALTHY_TIMEOUT_MS);
    // The same URL once per node: the same number of autocannon instances and connections.
    const urls = Array.from({ length: cfg.target?.length ?? cfg.nodes }, () => url);
    const r = await measure(
      { system: 'ceiling', api: 'iroh-raft', urls, procs: ceil.servers, isNode: false, exits: exitsOf(ceil), liveUrls: liveUrlsOf(ceil, urls) },
      cfg,
      prefix,
    );
    if (recorded(r, results, problems)) failed = true;
    await ceil.stop();
  } catch (e) {
    failed = true;
    problems.push(`ceiling: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    if (ceil) await release(ceil);
  }
  return failed;
}

/**
 * One full run: a fresh cluster (unless --target), the load, the report and its result file.
 * With --ceiling the ceiling runs after iroh-raft, or before it with `ceilingFirst` (the rounds
 * of ceiling-rounds.ts alternate the order).
 */
export async function runOnce(cfg: Config, ceilingFirst = false): Promise<{ results: SystemResult[]; failed: boolean; file: string }> {
  const run = facts();
  const prefix = `bench-${Date.now().toString(36)}/`;
  const results: SystemResult[] = [];
  const problems: string[] = [];
  const extra: Record<string, unknown> = {};
  let failed = false;
  if (cfg.ceiling && ceilingFirst) failed = await runCeiling(cfg, prefix, results, problems);
  failed = (await runNodes(cfg, prefix, run.machine.date, results, problems, extra)) || failed;
  if (cfg.ceiling && !ceilingFirst) failed = (await runCeiling(cfg, prefix, results, problems)) || failed;

  if (extra.profile !== undefined) console.log(`\n${(extra.profile as { text: string }).text}`);
  const n = results.find((r) => r.system === 'iroh-raft');
  const c = results.find((r) => r.system === 'ceiling');
  const out = {
    name: cfg.name,
    ...run,
    config: {
      ...configOf(cfg),
      nodeArgs: `--log-level warn, defaults otherwise (tick 100 ms)${cfg.nodeFlags.length > 0 ? `; node flags ${cfg.nodeFlags.join(' ')}` : ''}${cfg.profile ? '; under --cpu-prof (slower than without)' : ''}`,
    },
    ...extra,
    results,
    ofCeiling: n && c && c.okPerSec > 0 ? { throughputPercent: (n.okPerSec / c.okPerSec) * 100 } : undefined,
    problems,
    failed,
  };
  console.log(report(cfg, results, extra, problems));
  return { results, failed, file: writeResult(out, run.machine.date, cfg.json) };
}
