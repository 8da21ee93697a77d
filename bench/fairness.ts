/**
 * Fair sharing between tenants under load (issue 15): a fresh local cluster of real node
 * processes, then per round two phases of `--duration` seconds each, the steady tenant alone
 * (its solo latency), then the steady tenant while the flooding tenant sends at full
 * concurrency. Each tenant's load comes from a load generator process of its own
 * (bench/load-worker.ts, autocannon, closed loop: one request at a time per connection), naming
 * its tenant in `x-tenant` (loopback nodes run with auth off). Prints, per round and as medians
 * over the rounds, the steady tenant's p50 and p99 both ways, the p99 ratio (the target: at most
 * 2), the flooding tenant's throughput, and the CPU that other work on the machine took in each
 * phase (a disturbed phase shows there; rerun it).
 *
 *   npm run bench:fairness -- [--nodes 3] [--shards 16] [--duration 10] [--value-size 256]
 *     [--tenants noisy:64,steady:4] [--mix put|get|mixed:R/W] [--rounds 1] [--json]
 *     [--node-args='--write-bytes-max 1048576']
 *
 * `--tenants FLOOD:N,STEADY:M@R`: the first tenant floods with N connections, the second is the
 * steady one, measured, with M; `@R` holds a tenant to R requests/s over its connections (a steady
 * rate; without it, each connection sends again as soon as it is answered, a closed loop that
 * takes whatever the cluster gives). Exit code 2 for bad flags, 1 when a node fell over or a load
 * generator failed. The result goes to bench/results/<date>-fairness.json.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { Histogram } from './histogram.js';
import { waitHealthy } from './kv-client.js';
import { LocalServers } from './local-cluster.js';
import { cpuSeconds, machineCpuSeconds } from './proc.js';
import { LOAD_TIMEOUT_S, LOAD_WORKER, RESULTS_DIR, ROOT, clusterHealthyTimeoutMs } from './cluster/settings.js';
import { parseMix, readKey, valueOf } from './workload.js';
import type { LoadConfig, LoadResult, Mix, WorkerMessage } from './workload.js';

interface Tenant {
  readonly name: string;
  readonly connections: number;
  /** Requests per second over all its connections (a steady rate); absent: as fast as answers come (closed loop). */
  readonly ratePerSec?: number;
}

interface Flags {
  nodes: number;
  shards: number;
  durationS: number;
  valueSize: number;
  rounds: number;
  mix: Mix;
  flood: Tenant;
  steady: Tenant;
  nodeArgs: string[];
  json: boolean;
}

function usage(msg: string): never {
  console.error(`bench/fairness: ${msg}
usage: npm run bench:fairness -- [--nodes 3] [--shards 16] [--duration 10] [--value-size 256]
  [--tenants FLOOD:N[@RATE],STEADY:M[@RATE] (default noisy:64,steady:4)] [--mix put] [--rounds 1] [--json] [--node-args='...']`);
  process.exit(2);
}

function parseTenant(s: string | undefined): Tenant {
  const m = /^([a-z0-9][a-z0-9-]{0,30}):(\d{1,4})(?:@(\d{1,6}))?$/.exec(s ?? '');
  if (!m || Number(m[2]) < 1 || (m[3] !== undefined && Number(m[3]) < 1))
    usage(`a tenant is NAME:CONNECTIONS[@RATE] (lowercase name, at least one connection, a rate of at least 1 request/s), got ${JSON.stringify(s)}`);
  return { name: m[1]!, connections: Number(m[2]), ...(m[3] === undefined ? {} : { ratePerSec: Number(m[3]) }) };
}

function parseArgs(argv: readonly string[]): Flags {
  const f: Flags = {
    nodes: 3,
    shards: 16,
    durationS: 10,
    valueSize: 256,
    rounds: 1,
    mix: parseMix('put')!,
    flood: { name: 'noisy', connections: 64 },
    steady: { name: 'steady', connections: 4 },
    nodeArgs: [],
    json: false,
  };
  const int = (flag: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) usage(`${flag} must be an integer of at least ${min}, got ${JSON.stringify(v)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case '--nodes':
        f.nodes = int(flag, value(), 1);
        break;
      case '--shards':
        f.shards = int(flag, value(), 1);
        break;
      case '--duration':
        f.durationS = int(flag, value(), 1);
        break;
      case '--value-size':
        f.valueSize = int(flag, value(), 1);
        break;
      case '--rounds':
        f.rounds = int(flag, value(), 1);
        break;
      case '--mix': {
        const v = value();
        f.mix = parseMix(v ?? '') ?? usage(`--mix must be put, get or mixed:R/W, got ${JSON.stringify(v)}`);
        if (f.mix.cas === true) usage('--mix cas is not supported here');
        break;
      }
      case '--tenants': {
        const parts = (value() ?? '').split(',');
        if (parts.length !== 2) usage('--tenants takes exactly two, FLOOD:N,STEADY:M');
        f.flood = parseTenant(parts[0]);
        f.steady = parseTenant(parts[1]);
        if (f.flood.name === f.steady.name) usage('the two tenants need different names');
        break;
      }
      case '--node-args':
        f.nodeArgs = (value() ?? '').split(/\s+/).filter((a) => a !== '');
        break;
      case '--json':
        f.json = true;
        break;
      default:
        usage(`unknown flag ${JSON.stringify(flag)}`);
    }
  }
  return f;
}

/** One load generator process for `tenant`; resolves with its result and its pid. */
function loadOnce(f: Flags, urls: readonly string[], tenant: Tenant, prefix: string): { pid: number; done: Promise<LoadResult>; started: Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', LOAD_WORKER], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: ROOT });
  const cfg: LoadConfig = {
    api: 'iroh-raft',
    urls,
    connections: tenant.connections,
    durationS: f.durationS,
    valueSize: f.valueSize,
    mix: f.mix,
    consistency: 'linearizable',
    prefix,
    readKeys: f.mix.readPercent > 0 ? PRELOAD_KEYS : 0,
    timeoutS: LOAD_TIMEOUT_S,
    ackedKeptMax: 0,
    tenant: tenant.name,
    ...(tenant.ratePerSec === undefined ? {} : { ratePerSec: tenant.ratePerSec }),
  };
  let ready: () => void = () => {};
  const started = new Promise<void>((r) => (ready = r));
  const done = new Promise<LoadResult>((resolve, reject) => {
    let over = false;
    child.on('message', (m: WorkerMessage) => {
      if (m.type === 'ready') ready();
      else if (m.type === 'result') {
        over = true;
        resolve(m.result);
      } else if (m.type === 'error') {
        over = true;
        reject(new Error(`load generator of ${tenant.name} failed: ${m.message}`));
      }
    });
    child.once('exit', (code, signal) => {
      if (!over) reject(new Error(`load generator of ${tenant.name} exited (${code ?? signal}) without a result`));
    });
  });
  // Both generators get their configuration at once, after both have loaded.
  return { pid: child.pid!, done, started: started.then(() => void child.send(cfg)) };
}

/** Keys preloaded for the read mixes, per tenant. */
const PRELOAD_KEYS = 2000;

interface TenantPhase {
  readonly okPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: Record<string, number>;
}

interface Phase {
  readonly steady: TenantPhase;
  readonly flood?: TenantPhase;
  /** Machine CPU over the phase, % of one core: all, and what processes other than the nodes and load generators took. */
  readonly machineBusyPercent: number;
  /** Mean over the phase and summed over the nodes, of the gauges in QUEUE_GAUGES: where the requests waited. */
  readonly queues: Record<string, number>;
  readonly othersPercent: number;
}

function tenantPhase(r: LoadResult): TenantPhase {
  const h = Histogram.fromJSON(r.put.latency);
  h.add(Histogram.fromJSON(r.get.latency));
  const s = h.summary();
  return { okPerSec: s.count / r.elapsedS, p50Ms: s.p50Ms, p99Ms: s.p99Ms, errors: { ...r.put.errorCodes, ...r.get.errorCodes } };
}

/** Gauges sampled every 0.5 s in each phase: requests held in each queue of a node. */
const QUEUE_GAUGES = [
  'iroh_raft_pool_inflight_requests',
  'iroh_raft_router_writes_inflight',
  'iroh_raft_router_write_inflight_bytes',
  'iroh_raft_router_writes_waiting',
  'iroh_raft_http_requests_waiting_for_body_room',
] as const;

/** Samples QUEUE_GAUGES on every node until stopped; stop() gives the means of their sums over the nodes. */
function sampleQueues(urls: readonly string[]): () => Record<string, number> {
  const sums = new Map<string, number>();
  let samples = 0;
  const timer = setInterval(() => {
    void Promise.all(
      urls.map((u) =>
        fetch(`${u}/metrics`).then(
          (r) => r.text(),
          () => '',
        ),
      ),
    ).then((texts) => {
      samples++;
      for (const t of texts)
        for (const l of t.split('\n')) {
          const g = QUEUE_GAUGES.find((n) => l.startsWith(`${n} `) || l.startsWith(`${n}{`));
          if (g !== undefined) sums.set(g, (sums.get(g) ?? 0) + Number(l.slice(l.lastIndexOf(' ') + 1)));
        }
    });
  }, 500);
  return () => {
    clearInterval(timer);
    return Object.fromEntries(QUEUE_GAUGES.map((g) => [g.replace('iroh_raft_', ''), Math.round((sums.get(g) ?? 0) / Math.max(1, samples))]));
  };
}

/** One phase: the steady tenant, with the flooding one too when `withFlood`. */
async function phase(f: Flags, servers: LocalServers, prefix: string, withFlood: boolean): Promise<Phase> {
  const gens = [loadOnce(f, servers.urls, f.steady, `${prefix}s/`), ...(withFlood ? [loadOnce(f, servers.urls, f.flood, `${prefix}f/`)] : [])];
  await Promise.all(gens.map((g) => g.started));
  const pids = [...servers.servers.map((s) => s.proc.pid!), ...gens.map((g) => g.pid)];
  const cpu0 = pids.map((p) => cpuSeconds(p) ?? 0);
  const m0 = machineCpuSeconds();
  const queues = sampleQueues(servers.urls);
  let q: Record<string, number> = {};
  const results = await Promise.all(gens.map((g) => g.done)).finally(() => (q = queues()));
  const m1 = machineCpuSeconds();
  // A generator that has exited is gone from /proc: its CPU is then read as what it had at the start.
  const ours = pids.reduce((a, p, i) => a + Math.max(0, (cpuSeconds(p) ?? cpu0[i]!) - cpu0[i]!), 0);
  // /proc/stat counts CPU seconds summed over the cores: over the cores is wall time.
  const wallS = m0 && m1 ? (m1.totalS - m0.totalS) / cpus().length : 0;
  const busyPercent = m0 && m1 && wallS > 0 ? ((m1.busyS - m0.busyS) / wallS) * 100 : 0;
  const oursPercent = wallS > 0 ? (ours / wallS) * 100 : 0;
  return {
    steady: tenantPhase(results[0]!),
    ...(withFlood ? { flood: tenantPhase(results[1]!) } : {}),
    machineBusyPercent: busyPercent,
    othersPercent: Math.max(0, busyPercent - oursPercent),
    queues: q,
  };
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const errs = (e: Record<string, number>): string =>
  Object.keys(e).length === 0
    ? ''
    : `  errors ${Object.entries(e)
        .map(([k, v]) => `${k} x${v}`)
        .join(', ')}`;

function line(round: string, solo: Phase, both: Phase): string {
  const ratio = both.steady.p99Ms / solo.steady.p99Ms;
  return (
    `${round.padEnd(7)} steady solo p50 ${solo.steady.p50Ms.toFixed(2)} p99 ${solo.steady.p99Ms.toFixed(2)} ms (${solo.steady.okPerSec.toFixed(0)}/s) | ` +
    `with flood p50 ${both.steady.p50Ms.toFixed(2)} p99 ${both.steady.p99Ms.toFixed(2)} ms (${both.steady.okPerSec.toFixed(0)}/s) | p99 ratio ${ratio.toFixed(2)} | ` +
    `flood ${both.flood!.okPerSec.toFixed(0)}/s p99 ${both.flood!.p99Ms.toFixed(1)} ms | others' CPU ${solo.othersPercent.toFixed(0)}% / ${both.othersPercent.toFixed(0)}%` +
    `\n        queues alone ${JSON.stringify(solo.queues)}, with flood ${JSON.stringify(both.queues)}` +
    errs(both.steady.errors) +
    errs(both.flood!.errors)
  );
}

async function preload(urls: readonly string[], f: Flags, tenant: Tenant, prefix: string): Promise<void> {
  for (let i = 0; i < PRELOAD_KEYS; i += 32) {
    await Promise.all(
      Array.from({ length: Math.min(32, PRELOAD_KEYS - i) }, async (_, j) => {
        const key = readKey(prefix, i + j);
        const r = await fetch(`${urls[(i + j) % urls.length]!}/v1/kv/${key}`, {
          method: 'PUT',
          body: valueOf(key, f.valueSize),
          headers: { 'x-tenant': tenant.name },
        });
        if (!r.ok) throw new Error(`preloading ${key} for ${tenant.name}: ${r.status} ${await r.text()}`);
      }),
    );
  }
}

async function main(): Promise<void> {
  const f = parseArgs(process.argv.slice(2));
  console.error(`[fairness] starting ${f.nodes} node(s), ${f.shards} shards${f.nodeArgs.length > 0 ? `, node args ${f.nodeArgs.join(' ')}` : ''}`);
  const servers = await LocalServers.cluster({ nodes: f.nodes, shards: f.shards, workers: 1, extraArgs: f.nodeArgs });
  const stop = (): void => void servers.destroy().finally(() => process.exit(130));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const rounds: { solo: Phase; both: Phase }[] = [];
  let failed = false;
  try {
    await waitHealthy(servers.urls, clusterHealthyTimeoutMs(f.shards));
    for (let r = 0; r < f.rounds; r++) {
      const prefix = `fair-${Date.now().toString(36)}-${r}/`;
      if (f.mix.readPercent > 0) for (const t of [f.steady, f.flood]) await preload(servers.urls, f, t, `${prefix}${t === f.steady ? 's' : 'f'}/`);
      console.error(`[fairness] round ${r + 1}: ${f.steady.name} alone, ${f.durationS} s`);
      const solo = await phase(f, servers, prefix, false);
      console.error(`[fairness] round ${r + 1}: ${f.steady.name} with ${f.flood.name} flooding, ${f.durationS} s`);
      const both = await phase(f, servers, prefix, true);
      rounds.push({ solo, both });
      console.log(line(`round ${r + 1}`, solo, both));
      const gone = servers.unexpectedExits();
      if (gone.length > 0) throw new Error(`${gone.map((g) => g.name).join(', ')} fell over`);
    }
  } catch (e) {
    failed = true;
    console.error(`[fairness] ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    await servers.destroy(failed);
  }
  if (rounds.length === 0) {
    process.exitCode = 1;
    return;
  }
  const med = (pick: (x: { solo: Phase; both: Phase }) => number): number => median(rounds.map(pick));
  const summary = {
    soloP50Ms: med((x) => x.solo.steady.p50Ms),
    soloP99Ms: med((x) => x.solo.steady.p99Ms),
    sharedP50Ms: med((x) => x.both.steady.p50Ms),
    sharedP99Ms: med((x) => x.both.steady.p99Ms),
    p99Ratio: med((x) => x.both.steady.p99Ms / x.solo.steady.p99Ms),
    floodOkPerSec: med((x) => x.both.flood!.okPerSec),
    steadySharedOkPerSec: med((x) => x.both.steady.okPerSec),
  };
  console.log(
    `median of ${rounds.length}: steady p50 ${summary.soloP50Ms.toFixed(2)} -> ${summary.sharedP50Ms.toFixed(2)} ms, p99 ${summary.soloP99Ms.toFixed(2)} -> ${summary.sharedP99Ms.toFixed(2)} ms, ` +
      `ratio ${summary.p99Ratio.toFixed(2)} (target <= 2: ${summary.p99Ratio <= 2 ? 'met' : 'NOT met'}); flood ${summary.floodOkPerSec.toFixed(0)} ok/s, steady ${summary.steadySharedOkPerSec.toFixed(0)} ok/s`,
  );
  const date = new Date().toISOString();
  const out = { name: 'fairness', date, config: { ...f, mix: f.mix.label }, rounds, summary, failed };
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, `${date.replace(/[:.]/g, '-')}-fairness.json`), `${JSON.stringify(out, null, 2)}\n`);
  if (f.json) console.log(JSON.stringify(out));
  process.exitCode = failed ? 1 : 0;
}

await main();
