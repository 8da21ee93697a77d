/**
 * End-to-end load test of a cluster over HTTP: starts a fresh local cluster of real node
 * processes (or uses running ones with --target), preloads keys for reads, drives load with
 * autocannon from a separate process (bench/load-worker.ts), then reads every acknowledged write
 * back through a random node (linearizable) and reports throughput, latency percentiles to the
 * microsecond, errors, CPU and memory per process, bytes sent over Iroh per write and leader
 * changes. With --ceiling, the same workload also runs against a do-nothing in-memory KV on
 * node:http (bench/ceiling.ts), and the node's throughput is shown as a share of it; with
 * --ceiling --rounds N, N such pairs in alternating order and the median share.
 *
 *   npm run bench -- [--nodes 3] [--shards 16] [--workers 1] [--connections 64] [--duration 15]
 *     [--value-size 256] [--keys 100000] [--mix put|get|mixed:R/W] [--consistency linearizable]
 *     [--target http://h:p,...] [--ceiling] [--idle-seconds 0] [--json] [--name NAME]
 *     [--sweep shards|connections|value-size|nodes=V1,V2,...] [--idle]
 *
 * With --sweep, one full run per value (a fresh cluster each), then a summary table, and
 * bench/results/<date>-<name>-sweep.json and -sweep.svg (requests/s and p99 against the value).
 * With --idle, no load at all: a fresh cluster is measured for --duration seconds while idle
 * (CPU, RSS, Iroh bytes and records sent per second, per node) into <date>-idle-<name>.json.
 * The result (config, versions, machine) goes to bench/results/<date>-<name>.json; --json also
 * prints it as the last line. Exit code 2 for bad flags, 1 when a node fell over, an
 * acknowledged write could not be read back with its value, a read returned a wrong value or
 * the load generator failed; errors, non-2xx answers and timeouts are reported, never hidden,
 * but do not fail the run on their own.
 *
 * This file wires the parts in bench/cluster/: flags.ts (parsing and checking), the modes once.ts
 * (one run, with --ceiling and --profile), ceiling-rounds.ts, sweep.ts, idle.ts and against.ts, and what they share:
 * nodes.ts (iroh-raft under the load once), servers.ts (processes started here), load.ts,
 * measure.ts, verify.ts, report.ts.
 */
import { runAgainst } from './cluster/against.js';
import { runCeilingRounds } from './cluster/ceiling-rounds.js';
import { parseFlags } from './cluster/flags.js';
import { runIdle } from './cluster/idle.js';
import { runOnce } from './cluster/once.js';
import { stopServersOnSignals } from './cluster/servers.js';
import { runSweep } from './cluster/sweep.js';

async function main(): Promise<void> {
  stopServersOnSignals();
  const { cfg, sweep } = parseFlags(process.argv.slice(2));
  const failed = cfg.idle
    ? await runIdle(cfg)
    : cfg.against
      ? await runAgainst(cfg)
      : sweep
        ? await runSweep(sweep, cfg.json)
        : cfg.ceiling && cfg.rounds > 1
          ? await runCeilingRounds(cfg)
          : (await runOnce(cfg)).failed;
  process.exitCode = failed ? 1 : 0;
}

await main();
