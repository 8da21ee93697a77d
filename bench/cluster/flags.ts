/**
 * The cluster load test's flags: parsed and checked before anything starts. A bad flag or a bad
 * combination prints a message naming it and the usage, and exits 2; --help prints the usage and
 * exits 0.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { etcdBinary, etcdVersion } from '../etcd-local.js';
import { PRELOAD_KEYS_MAX, VALUE_BYTES_MAX, parseMix } from '../workload.js';
import type { Consistency, Mix } from '../workload.js';

export interface Config {
  readonly nodes: number;
  readonly shards: number;
  readonly workers: number;
  readonly connections: number;
  readonly durationS: number;
  /** Seconds of load before the measured --duration (0: none); see LoadConfig.warmupS. */
  readonly warmupS: number;
  readonly valueSize: number;
  readonly keys: number;
  readonly mix: Mix;
  readonly consistency: Consistency;
  readonly target: readonly string[] | undefined;
  readonly json: boolean;
  readonly ceiling: boolean;
  readonly idleSeconds: number;
  readonly name: string;
  readonly idle: boolean;
  /** Run the nodes under `node --cpu-prof` and summarize where their time went during the load. */
  readonly profile: boolean;
  /**
   * --against etcd=URLS|local: the same workload against etcd, alternating with ours, `rounds`
   * times each; with --ceiling alone, `rounds` runs of iroh-raft and the ceiling, alternating.
   */
  readonly against: { readonly system: 'etcd'; readonly urls: readonly string[] | 'local' } | undefined;
  readonly rounds: number;
  /** Node.js / V8 flags for every node process (e.g. --max-semi-space-size=32). */
  readonly nodeFlags: readonly string[];
  /** Leader-aware load: each connection sends only keys whose shard its node leads (see LoadConfig.direct). */
  readonly direct: boolean;
  /** Drive the load through iroh-raft's client library (src/client) instead of autocannon (see LoadConfig.client). */
  readonly client: boolean;
}

const USAGE = `usage: npm run bench -- [flags]
  --nodes N           local cluster size (default 3)
  --shards N          raft groups (default 16)
  --workers N         worker threads per node (default: with --nodes 1 the node's own default, one per
                      core; with more nodes 1, since they share this machine's cores)
  --connections N     HTTP connections in total, split over the nodes (default 64)
  --duration S        seconds of load (default 15)
  --warmup S          seconds of load before those, not measured (default 0): answers in it are
                      checked (writes read back, non-2xx reported) but left out of the rate, the
                      latencies, the CPU and the counters; with --against, on both systems
  --value-size B      bytes per value (default 256, at most ${VALUE_BYTES_MAX})
  --keys N            read key space; min(N, ${PRELOAD_KEYS_MAX}) keys are preloaded (default 100000)
  --mix M             put | get | cas | mixed:R/W (R % reads, W % writes; default put); cas: compare-and-set
                      on the preloaded keys, expecting the version last seen (conflicts answer 412)
  --consistency C     linearizable | lease | stale, for reads (default linearizable)
  --target URLS       comma-separated http://host:port of running nodes instead of a local cluster
  --ceiling           also run the same workload against bench/ceiling.ts
  --idle-seconds S    measure each node's CPU while idle for S seconds before the load (default 0)
  --json              print the result as JSON on the last line
  --name NAME         result file name part (default from the settings)
  --sweep K=V1,V2,... one run per value of K (shards, connections, value-size or nodes), each on a
                      fresh cluster; then a summary table and a chart (<date>-<name>-sweep.svg)
  --idle              no load: measure the idle cluster for --duration seconds (CPU, RSS, Iroh per node)
  --against etcd=URLS the same workload against an etcd v3 cluster's JSON gateway (comma-separated
                      http://host:port), alternating runs with ours; etcd=local starts a local etcd
                      cluster of --nodes members (the etcd binary: PATH or $ETCD_BIN)
  --rounds N          with --against: runs of each system, alternating (default 3); with --ceiling:
                      runs of iroh-raft and of the ceiling, alternating, then the median share (default 1)
  --node-flags=F      Node.js / V8 flags for every node process, space-separated (e.g. --node-flags='--max-semi-space-size=32')
  --profile           run the nodes under node --cpu-prof and print where each thread's time went
                      during the load (profiles kept in bench/results/<date>-<name>-profile/)
  --direct            leader-aware load, as a client that follows the x-node answers: each connection
                      sends only keys whose shard its node leads (learned from GET /v1/status every
                      0.5 s), so requests are not forwarded; compare with the same run without it
  --client            drive the load through iroh-raft's client library (src/client; leader-aware from
                      GET /v1/placement and answer headers): --connections closed loops over one client,
                      instead of autocannon; put, get and mixed mixes; compare forwarded requests with
                      the same run without it`;

/** Flags --sweep can vary, and the Config field each sets. */
const SWEEP_KEYS = { shards: 'shards', connections: 'connections', 'value-size': 'valueSize', nodes: 'nodes' } as const;
export type SweepKey = keyof typeof SWEEP_KEYS;

export interface Sweep {
  readonly key: SweepKey;
  readonly values: readonly number[];
  /** Result file name part of the sweep's own files. */
  readonly name: string;
  /** One config per value, in order. */
  readonly configs: readonly Config[];
}

/** Lowest and highest value of each whole-number flag. */
const RANGES: Record<string, readonly [number, number]> = {
  nodes: [1, 9],
  shards: [1, 100_000],
  workers: [1, 64],
  connections: [1, 10_000],
  duration: [1, 3600],
  'value-size': [1, VALUE_BYTES_MAX],
  keys: [1, 1_000_000_000],
  'idle-seconds': [0, 600],
  warmup: [0, 600],
  rounds: [1, 20],
};

/** Flags that take a text other than a whole number (those are the RANGES), and flags that take none. */
const TEXT_FLAGS = ['mix', 'consistency', 'target', 'name', 'sweep', 'against', 'node-flags'] as const;
const SWITCHES = ['json', 'ceiling', 'idle', 'profile', 'direct', 'client'] as const;

/** Flags --target leaves without effect: they describe the local cluster it replaces. */
const LOCAL_CLUSTER_FLAGS = ['nodes', 'shards', 'workers', 'idle-seconds'];
/** Flags --against refuses: modes and extras of a run of iroh-raft alone. */
const NOT_WITH_AGAINST = ['sweep', 'idle', 'profile', 'ceiling', 'idle-seconds', 'client'];
/** Flags --idle refuses: there is no load, and the cluster is a fresh local one. */
const NOT_WITH_IDLE = [
  'target',
  'sweep',
  'ceiling',
  'idle-seconds',
  'warmup',
  'connections',
  'value-size',
  'keys',
  'mix',
  'consistency',
  'profile',
  'direct',
  'client',
];

type Values = Readonly<Record<string, string | boolean | undefined>>;

/** The default result name; parts for `omit` (the swept flag) are left out. */
function defaultName(c: Pick<Config, 'target' | 'nodes' | 'shards' | 'workers' | 'mix' | 'connections'>, omit?: SweepKey): string {
  const parts = c.target ? [`target${c.target.length}`] : [omit === 'nodes' ? '' : `n${c.nodes}`, omit === 'shards' ? '' : `s${c.shards}`, `w${c.workers}`];
  parts.push(c.mix.label.replace(':', '').replace('/', '-'), omit === 'connections' ? '' : `c${c.connections}`);
  return parts.filter((p) => p !== '').join('-');
}

function usageError(message: string): never {
  console.error(`bench: ${message}`);
  console.error(USAGE);
  process.exit(2);
}

/** Comma-separated http://host:port URLs, each once; a usage error names `flag` otherwise. */
function parseUrls(flag: string, text: string): string[] {
  const urls = text.split(',').map((u) => {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      usageError(`${flag}: '${u}' is not a URL (expected http://host:port)`);
    }
    if (url.protocol !== 'http:' || url.port === '' || (url.pathname !== '/' && url.pathname !== '')) usageError(`${flag}: '${u}' is not http://host:port`);
    return `http://${url.host}`;
  });
  if (new Set(urls).size !== urls.length) usageError(`${flag} lists a URL twice`);
  return urls;
}

/** `s` as a whole number in the range of flag `k`; `what` names it in the error. */
function wholeNumber(what: string, k: string, s: string): number {
  const [min, max] = RANGES[k]!;
  if (!/^\d+$/.test(s)) usageError(`${what} must be a whole number, got '${s}'`);
  const n = Number(s);
  if (n < min || n > max) usageError(`${what} must be between ${min} and ${max}, got ${n}`);
  return n;
}

function checkName(n: string): string {
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(n)) usageError(`--name may hold letters, digits, '.', '_' and '-' (1-100 of them), got '${n}'`);
  return n;
}

/** The command line as flag values; prints the usage and exits on --help. */
function readArgs(argv: string[]): Values {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const k of [...Object.keys(RANGES), ...TEXT_FLAGS]) options[k] = { type: 'string' };
  for (const k of SWITCHES) options[k] = { type: 'boolean' };
  options.help = { type: 'boolean', short: 'h' };
  let values: Values;
  try {
    ({ values } = parseArgs({ args: argv, strict: true, allowPositionals: false, options }));
  } catch (e) {
    usageError(e instanceof Error ? e.message : String(e));
  }
  if (values.help === true) {
    console.log(USAGE);
    process.exit(0);
  }
  return values;
}

/** Typed access to the flag values. */
class Flags {
  constructor(readonly values: Values) {}

  str(k: string): string | undefined {
    return this.values[k] as string | undefined;
  }

  int(k: string, dflt: number): number {
    const s = this.str(k);
    return s === undefined ? dflt : wholeNumber(`--${k}`, k, s);
  }

  on(k: string): boolean {
    return this.values[k] === true;
  }
}

/** --target's URLs, refusing the flags of a local cluster next to it. */
function parseTarget(f: Flags): string[] | undefined {
  const t = f.str('target');
  if (t === undefined) return undefined;
  for (const k of LOCAL_CLUSTER_FLAGS) {
    if (f.str(k) !== undefined) usageError(`--${k} has no effect with --target (the cluster is already running)`);
  }
  return parseUrls('--target', t);
}

/** The configuration of one run, every flag checked in the order a reader meets them in the usage. */
function parseConfig(f: Flags): Config {
  const target = parseTarget(f);
  const nodes = f.int('nodes', 3);
  const targets = target?.length ?? nodes;
  const connections = f.int('connections', 64);
  if (connections < targets) usageError(`--connections ${connections} is fewer than the ${targets} node URLs: every node needs a connection`);
  const mixText = f.str('mix') ?? 'put';
  const mix = parseMix(mixText);
  if (!mix) usageError(`--mix must be put, get, cas or mixed:R/W with R + W = 100 (e.g. mixed:90/10), got '${mixText}'`);
  const consistency = f.str('consistency') ?? 'linearizable';
  if (consistency !== 'linearizable' && consistency !== 'lease' && consistency !== 'stale') {
    usageError(`--consistency must be linearizable, lease or stale, got '${consistency}'`);
  }
  const shards = f.int('shards', 16);
  // One node runs as `npm start` does (a worker per core); several share the cores, one worker each.
  const workers = f.int('workers', nodes === 1 && target === undefined ? Math.min(os.availableParallelism(), RANGES.workers![1]) : 1);
  const given = f.str('name');
  const name = checkName(given ?? (f.on('idle') ? `n${nodes}-s${shards}-w${workers}` : defaultName({ target, nodes, shards, workers, mix, connections })));
  const cfg: Config = {
    nodes,
    shards,
    workers,
    connections,
    durationS: f.int('duration', 15),
    warmupS: f.int('warmup', 0),
    valueSize: f.int('value-size', 256),
    keys: f.int('keys', 100_000),
    mix,
    consistency,
    target,
    json: f.on('json'),
    ceiling: f.on('ceiling'),
    idleSeconds: f.int('idle-seconds', 0),
    name,
    idle: f.on('idle'),
    profile: f.on('profile'),
    against: undefined,
    rounds: 1,
    nodeFlags: (f.str('node-flags') ?? '').split(' ').filter((n) => n !== ''),
    direct: f.on('direct'),
    client: f.on('client'),
  };
  if (cfg.client && cfg.direct) usageError('--client and --direct are two leader-aware loads: give one');
  if (cfg.client && cfg.ceiling) usageError('--client speaks to iroh-raft nodes only: it cannot drive --ceiling');
  if (cfg.client && cfg.warmupS > 0) usageError('--warmup drives autocannon: it has no effect with --client');
  if (cfg.client && mix.cas === true) usageError('--client drives put, get and mixed mixes, not --mix cas');
  for (const n of cfg.nodeFlags) if (!/^--[a-z0-9_-]+(=[A-Za-z0-9._,:/-]*)?$/.test(n)) usageError(`--node-flags: '${n}' is not a --flag or --flag=value`);
  if (cfg.nodeFlags.length > 0 && target) usageError('--node-flags needs a local cluster: it has no effect with --target');
  if (cfg.profile && target) usageError('--profile needs a local cluster: it has no effect with --target');
  return cfg;
}

/** `cfg` with --against etcd=... (`text`) and its rounds, refusing what has no etcd counterpart. */
function withAgainst(f: Flags, cfg: Config, text: string): Config {
  const am = /^([^=]*)=(.*)$/.exec(text);
  if (!am || am[1] !== 'etcd') usageError(`--against must be etcd=http://host:port[,...] or etcd=local, got '${text}'`);
  const urls = am[2] === 'local' ? 'local' : parseUrls('--against etcd', am[2]!);
  const members = cfg.target?.length ?? cfg.nodes;
  if (urls !== 'local' && urls.length !== members)
    usageError(`--against etcd lists ${urls.length} URL(s) and iroh-raft has ${members} node(s): compare clusters of the same size`);
  if (urls === 'local' && etcdVersion() === undefined)
    usageError(`--against etcd=local: no etcd binary ('${etcdBinary()} --version' failed); install one (Debian: apt-get install etcd-server) or set ETCD_BIN`);
  if (cfg.mix.cas === true) usageError('--mix cas has no counterpart in the etcd comparison (etcd compares and sets through transactions)');
  if (cfg.consistency === 'lease')
    usageError('--consistency lease has no etcd counterpart: compare linearizable (etcd default) or stale (etcd serializable) reads');
  for (const k of NOT_WITH_AGAINST) if (f.values[k] !== undefined) usageError(`--${k} cannot be combined with --against`);
  return { ...cfg, against: { system: 'etcd', urls }, rounds: f.int('rounds', 3) };
}

/** --sweep KEY=V1,V2,... (`text`): one config per value, each with a name of its own. */
function parseSweep(f: Flags, cfg: Config, text: string): Sweep {
  const m = /^([^=]*)=(.*)$/.exec(text);
  if (!m) usageError(`--sweep must be KEY=V1,V2,... (e.g. shards=1,4,16), got '${text}'`);
  const key = m[1]!;
  if (!Object.hasOwn(SWEEP_KEYS, key)) usageError(`--sweep: unknown key '${key}' (expected ${Object.keys(SWEEP_KEYS).join(', ')})`);
  const k = key as SweepKey;
  if (m[2]!.trim() === '') usageError(`--sweep ${k}= lists no values`);
  const swept = m[2]!.split(',').map((v) => wholeNumber(`--sweep ${k} value`, k, v.trim()));
  if (new Set(swept).size !== swept.length) usageError(`--sweep ${k} lists a value twice`);
  if (f.str(k) !== undefined) usageError(`--${k} and --sweep ${k}=... both set it: give one`);
  const target = cfg.target;
  if (target && (k === 'nodes' || k === 'shards')) usageError(`--sweep ${k} has no effect with --target (the cluster is already running)`);
  const given = f.str('name');
  const configs = swept.map((v) => {
    const c: Config = { ...cfg, [SWEEP_KEYS[k]]: v };
    if (c.connections < (target?.length ?? c.nodes))
      usageError(`--sweep ${k}=${v}: ${c.connections} connections are fewer than the ${target?.length ?? c.nodes} node URLs`);
    return { ...c, name: checkName(given !== undefined ? `${given}-${k}${v}` : `${defaultName(c)}${k === 'value-size' ? `-b${v}` : ''}`) };
  });
  return { key: k, values: swept, name: given ?? `${defaultName(cfg, k)}-by-${k}`, configs };
}

/** The run's configuration from the command line, and the sweep when --sweep is given; exits 2 on a bad flag. */
export function parseFlags(argv: string[]): { cfg: Config; sweep: Sweep | undefined } {
  const f = new Flags(readArgs(argv));
  const cfg = parseConfig(f);
  const against = f.str('against');
  if (against !== undefined) return { cfg: withAgainst(f, cfg, against), sweep: undefined };
  if (f.str('rounds') !== undefined) {
    if (!cfg.ceiling) usageError('--rounds needs --against or --ceiling');
    if (f.str('sweep') !== undefined) usageError('--rounds with --ceiling runs one configuration: it cannot be combined with --sweep');
    return { cfg: { ...cfg, rounds: f.int('rounds', 1) }, sweep: undefined };
  }
  if (cfg.idle) {
    for (const k of NOT_WITH_IDLE) {
      if (f.values[k] !== undefined) usageError(`--${k} has no effect with --idle (no load; a fresh local cluster)`);
    }
  }
  const sw = f.str('sweep');
  return { cfg, sweep: sw === undefined ? undefined : parseSweep(f, cfg, sw) };
}
