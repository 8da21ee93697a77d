/**
 * A node's configuration: defaults, then a JSON config file, then environment variables, then
 * command-line flags (each later source overrides the earlier). Every value is validated, and
 * every failure names the setting, where it came from and what is allowed.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { CodedError } from '../errors.js';
import { LOG_FORMATS, defaultLogFormat } from './log.js';
import type { LogFormat } from './log.js';
import { HELPER_THREADS } from './thread-policy.js';
import type { HelperThreads } from './thread-policy.js';

export class ConfigError extends CodedError<'InvalidFlag' | 'InvalidConfig' | 'UnknownFlag' | 'ConfigFileUnreadable'> {
  override readonly name = 'ConfigError';
}

export interface NodeConfig {
  /** Data directory: node key, cluster layout, one LMDB environment per worker. */
  readonly data: string;
  /** HTTP client API address, host:port. */
  readonly http: { readonly host: string; readonly port: number };
  /** Iroh bind address, host:port. */
  readonly listen: { readonly host: string; readonly port: number };
  /** Raft groups in the cluster (fixed at the first start). */
  readonly shards: number;
  /** Worker threads. */
  readonly workers: number;
  /** Replicas per shard (capped at the member count). */
  readonly replicas: number;
  /** Other members' tickets (`iroh-raft ticket`). */
  readonly peers: readonly string[];
  /** Milliseconds per raft tick. */
  readonly tickMs: number;
  /** Ticks without a leader before a follower campaigns (randomized up to twice this). */
  readonly electionTicks: number;
  /** Idle ticks after which a shard goes quiet (no heartbeats); 0 keeps every shard ticking. */
  readonly quiesceAfterTicks: number;
  /** Deadline of a client request in milliseconds. */
  readonly requestTimeoutMs: number;
  /** Applied entries between log compactions of a shard. */
  readonly compactEveryEntries: number;
  /** Entries kept behind the applied index at compaction (lagging followers catch up from them). */
  readonly compactKeepEntries: number;
  /** Bytes per second this node sends in snapshot transfers, over all of them. */
  readonly snapshotBytesPerSec: number;
  /** Milliseconds within which a raft frame from a peer must complete once its first byte came; past it the connection closes. */
  readonly peerFrameTimeoutMs: number;
  /** Milliseconds within which a snapshot stream from a peer must bring its offer; past it the stream closes. */
  readonly snapshotOfferTimeoutMs: number;
  /** Bytes of client writes in flight through this node; more wait, up to half their deadline, then Overloaded. */
  readonly writeBytesMax: number;
  /** Client writes in flight through this node while two or more tenants write; more wait in their tenant's line (served round robin), then Overloaded. */
  readonly writesSharedMax: number;
  /** Bytes of HTTP request bodies read and held at once; more wait unread, then 503 Overloaded. */
  readonly httpBodiesBytesMax: number;
  /** Open HTTP connections at most; one more is answered 503 Overloaded and closed. */
  readonly httpConnectionsMax: number;
  /** Management connections (`iroh-raft-mgmt/0`) open at once on this node; one more is closed at once. */
  readonly mgmtConnectionsMax: number;
  /** Time from a management request's arrival to its reply, in ms; beyond it the reply is `Timeout`. */
  readonly mgmtRequestTimeoutMs: number;
  /** Host names the HTTP API answers (`*` = any); unset: the loopback names on a loopback address, else any. */
  readonly httpAllowedHosts?: readonly string[];
  /** HTTPS: path of the PEM certificate chain (with tlsKey). */
  readonly tlsCert?: string;
  /** HTTPS: path of the PEM private key (with tlsCert). */
  readonly tlsKey?: string;
  /** HTTPS with client certificates: path of the PEM CA that signs them (with tlsCert and tlsKey). */
  readonly tlsCa?: string;
  /**
   * Bearer-token auth on the HTTP API (tenants from their tokens, the tenant admin API, rate
   * limits). Unset: on when HTTP listens on a non-loopback address, off on loopback.
   */
  readonly auth?: 'on' | 'off';
  /**
   * `allow` runs a data directory whose cluster places keys with the unkeyed hash (created before
   * the keyed one); `refuse` (the default) stops its start with DataDirError `UnkeyedPlacement`.
   */
  readonly unkeyedPlacement: 'refuse' | 'allow';
  /** Free bytes on the data directory's file system below which writes are refused (NoSpace); 0: never. */
  readonly diskFreeBytesMin: number;
  /** Shard reads of scans in flight on this node over all scans; more wait, then Overloaded. */
  readonly scanReadsMax: number;
  /** Of scanReadsMax, the most one tenant holds (default: half). */
  readonly scanTenantReadsMax?: number;
  /** Milliseconds between leader-balancing rounds (leadership transfers toward nodes that lead fewer shards); 0: off. Default 5000. */
  readonly leaderBalanceMs: number;
  /**
   * Milliseconds between rounds of address exchanges with every member (`iroh-raft-discovery/0`),
   * jittered to 75-125 %; 0: only at start and when a peer restarts.
   */
  readonly discoveryIntervalMs: number;
  /**
   * A member's ticket: a node starting on an empty data directory asks that member to admit it
   * (`members.join` over `iroh-raft-mgmt/0`) and takes the cluster's shard count and replicas from
   * it. Ignored once the directory belongs to a cluster.
   */
  readonly join?: string;
  /** Milliseconds between reads of the cluster's metadata (members, targets) and the membership steps that follow. Default 1000. */
  readonly metaPollMs: number;
  /**
   * Milliseconds a member may stay unreachable before the meta group's leader declares it dead and
   * rebuilds its replicas on the others. Default 300,000 (5 minutes).
   */
  readonly deadNodeTimeoutMs: number;
  /** How long a graceful shutdown may take before the node exits anyway, in milliseconds. */
  readonly shutdownTimeoutMs: number;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** JSON lines, or readable lines for a terminal (see log.ts). Default: pretty when stdout is a terminal, else json. */
  readonly logFormat: LogFormat;
  /**
   * Linux: `batch` (the default) schedules every thread of the node but its event loop under
   * SCHED_BATCH, so a worker or an Iroh thread it wakes does not take its core (thread-policy.ts);
   * `normal` leaves the kernel's default. Applied by `iroh-raft start` only.
   */
  readonly helperThreads: HelperThreads;
}

/** One setting: its flag, environment variable, parser and a line of help. */
interface Setting {
  readonly key: keyof NodeConfig;
  readonly flag: string;
  readonly env: string;
  readonly help: string;
  readonly parse: (raw: unknown, where: string) => unknown;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function int(min: number, max: number) {
  return (raw: unknown, where: string): number => {
    const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max)
      throw new ConfigError('InvalidConfig', `${where}: expected an integer in [${min}, ${max}], got ${JSON.stringify(raw)}`);
    return n;
  };
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration with its unit (`1500ms`, `90s`, `5m`, `2h`, `1d`), as milliseconds in [min, max]. */
function duration(min: number, max: number) {
  return (raw: unknown, where: string): number => {
    const m = typeof raw === 'string' ? /^(\d+)(ms|s|m|h|d)$/.exec(raw.trim()) : null;
    const n = m === null ? NaN : Number(m[1]) * UNIT_MS[m[2]!]!;
    if (!Number.isSafeInteger(n) || n < min || n > max)
      throw new ConfigError(
        'InvalidConfig',
        `${where}: expected a duration with a unit (ms, s, m, h, d) from ${min} ms to ${max / 86_400_000} days, e.g. 5m; got ${JSON.stringify(raw)}`,
      );
    return n;
  };
}

function hostPort(raw: unknown, where: string): { host: string; port: number } {
  if (typeof raw !== 'string') throw new ConfigError('InvalidConfig', `${where}: expected host:port, got ${JSON.stringify(raw)}`);
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(raw.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new ConfigError('InvalidConfig', `${where}: expected host:port (port 0-65535), got ${JSON.stringify(raw)}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

/** One of a fixed set of words, spelled exactly. */
function oneOf<const T extends string>(values: readonly T[]) {
  return (raw: unknown, where: string): T => {
    if (typeof raw !== 'string' || !(values as readonly string[]).includes(raw))
      throw new ConfigError('InvalidConfig', `${where}: expected one of ${values.join(', ')}, got ${JSON.stringify(raw)}`);
    return raw as T;
  };
}

function str(raw: unknown, where: string): string {
  if (typeof raw !== 'string' || raw.length === 0) throw new ConfigError('InvalidConfig', `${where}: expected a non-empty string`);
  return raw;
}

function list(raw: unknown, where: string): string[] {
  const items = typeof raw === 'string' ? raw.split(',') : Array.isArray(raw) ? raw : undefined;
  if (!items || !items.every((x) => typeof x === 'string'))
    throw new ConfigError('InvalidConfig', `${where}: expected a comma-separated list or an array of strings`);
  return items.map((x) => x.trim()).filter((x) => x.length > 0);
}

/** A host allow-list: names, IP addresses, `*.domain` wildcards, or `*` alone. */
function hostList(raw: unknown, where: string): string[] {
  const items = list(raw, where);
  if (items.length === 0) throw new ConfigError('InvalidConfig', `${where}: expected at least one host name (or * for any)`);
  for (const h of items) {
    if (h !== '*' && !/^(\*\.)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_:.-]+)$/.test(h))
      throw new ConfigError('InvalidConfig', `${where}: ${JSON.stringify(h)} is not a host name, an IP address, *.domain or *`);
  }
  return items;
}

export const SETTINGS: readonly Setting[] = [
  { key: 'data', flag: '--data', env: 'IROH_RAFT_DATA', help: 'data directory (default ./data)', parse: str },
  { key: 'http', flag: '--http', env: 'IROH_RAFT_HTTP', help: 'HTTP API address (default 127.0.0.1:7070)', parse: hostPort },
  { key: 'listen', flag: '--listen', env: 'IROH_RAFT_LISTEN', help: 'Iroh bind address (default 127.0.0.1:7071)', parse: hostPort },
  { key: 'shards', flag: '--shards', env: 'IROH_RAFT_SHARDS', help: 'raft groups in the cluster, fixed at the first start (default 16)', parse: int(1, 65536) },
  { key: 'workers', flag: '--workers', env: 'IROH_RAFT_WORKERS', help: 'worker threads (default: cores)', parse: int(1, 256) },
  { key: 'replicas', flag: '--replicas', env: 'IROH_RAFT_REPLICAS', help: 'replicas per shard, at most the members (default 3)', parse: int(1, 9) },
  { key: 'peers', flag: '--peers', env: 'IROH_RAFT_PEERS', help: "other members' tickets, comma-separated", parse: list },
  { key: 'tickMs', flag: '--tick-ms', env: 'IROH_RAFT_TICK_MS', help: 'milliseconds per raft tick (default 100)', parse: int(1, 10_000) },
  { key: 'electionTicks', flag: '--election-ticks', env: 'IROH_RAFT_ELECTION_TICKS', help: 'election timeout in ticks (default 10)', parse: int(3, 1000) },
  {
    key: 'quiesceAfterTicks',
    flag: '--quiesce-after-ticks',
    env: 'IROH_RAFT_QUIESCE_AFTER_TICKS',
    help: 'idle ticks before a shard goes quiet, 0 = never (default 20)',
    parse: int(0, 1_000_000),
  },
  {
    key: 'requestTimeoutMs',
    flag: '--request-timeout-ms',
    env: 'IROH_RAFT_REQUEST_TIMEOUT_MS',
    help: 'client request deadline (default 5000)',
    parse: int(1, 600_000),
  },
  {
    key: 'compactEveryEntries',
    flag: '--compact-every-entries',
    env: 'IROH_RAFT_COMPACT_EVERY_ENTRIES',
    help: 'applied entries between log compactions (default 10000)',
    parse: int(1, 1e9),
  },
  {
    key: 'compactKeepEntries',
    flag: '--compact-keep-entries',
    env: 'IROH_RAFT_COMPACT_KEEP_ENTRIES',
    help: 'entries kept behind applied at compaction (default 1000)',
    parse: int(0, 1e9),
  },
  {
    key: 'writeBytesMax',
    flag: '--write-bytes-max',
    env: 'IROH_RAFT_WRITE_BYTES_MAX',
    help: 'bytes of client writes in flight through this node; the rest wait their turn (default 2097152)',
    parse: int(1, 1 << 30),
  },
  {
    key: 'writesSharedMax',
    flag: '--writes-shared-max',
    env: 'IROH_RAFT_WRITES_SHARED_MAX',
    help: "client writes in flight through this node while two or more tenants write; the rest wait in their tenant's line, served round robin (default 8: fair, about a third slower while tenants write at once; 4096 takes the bound away)",
    parse: int(1, 1 << 20),
  },
  {
    key: 'httpBodiesBytesMax',
    flag: '--http-bodies-bytes-max',
    env: 'IROH_RAFT_HTTP_BODIES_BYTES_MAX',
    help: 'bytes of HTTP request bodies held at once over all connections; the rest wait unread (default 8388608)',
    parse: int(1, 1 << 30),
  },
  {
    key: 'httpConnectionsMax',
    flag: '--http-connections-max',
    env: 'IROH_RAFT_HTTP_CONNECTIONS_MAX',
    help: 'open HTTP connections at most; one more is answered 503 Overloaded and closed (default 4096)',
    parse: int(1, 1_000_000),
  },
  {
    key: 'mgmtConnectionsMax',
    flag: '--mgmt-connections-max',
    env: 'IROH_RAFT_MGMT_CONNECTIONS_MAX',
    help: 'management connections (iroh-raft-mgmt/0) open at once; one more is closed at once (default 64)',
    parse: int(1, 100_000),
  },
  {
    key: 'mgmtRequestTimeoutMs',
    flag: '--mgmt-request-timeout-ms',
    env: 'IROH_RAFT_MGMT_REQUEST_TIMEOUT_MS',
    help: 'ms from a management request to its reply; beyond it the reply is Timeout (default 10000)',
    parse: int(100, 600_000),
  },
  {
    key: 'httpAllowedHosts',
    flag: '--http-allowed-hosts',
    env: 'IROH_RAFT_HTTP_ALLOWED_HOSTS',
    help: 'host names the HTTP API answers, comma-separated, *.domain wildcards, * = any (default: loopback names on a loopback address, else any)',
    parse: hostList,
  },
  { key: 'tlsCert', flag: '--tls-cert', env: 'IROH_RAFT_TLS_CERT', help: 'serve HTTPS: PEM certificate chain file (with --tls-key)', parse: str },
  { key: 'tlsKey', flag: '--tls-key', env: 'IROH_RAFT_TLS_KEY', help: 'serve HTTPS: PEM private key file (with --tls-cert)', parse: str },
  {
    key: 'tlsCa',
    flag: '--tls-ca',
    env: 'IROH_RAFT_TLS_CA',
    help: 'require client certificates signed by this PEM CA file (with --tls-cert)',
    parse: str,
  },
  {
    key: 'auth',
    flag: '--auth',
    env: 'IROH_RAFT_AUTH',
    help: 'bearer tokens for tenants and the admin (<data>/admin.token): on or off (default: on unless HTTP is on a loopback address)',
    parse: oneOf(['on', 'off']),
  },
  {
    key: 'unkeyedPlacement',
    flag: '--unkeyed-placement',
    env: 'IROH_RAFT_UNKEYED_PLACEMENT',
    help: 'a data directory whose cluster places keys with the unkeyed hash (created before the keyed one): refuse to start, or allow (default refuse)',
    parse: oneOf(['refuse', 'allow']),
  },
  {
    key: 'diskFreeBytesMin',
    flag: '--disk-free-bytes-min',
    env: 'IROH_RAFT_DISK_FREE_BYTES_MIN',
    help: 'free bytes on the data disk below which writes are refused with 507 NoSpace, reads continue; 0 = off (default 268435456)',
    parse: int(0, 2 ** 53 - 1),
  },
  {
    key: 'scanReadsMax',
    flag: '--scan-reads-max',
    env: 'IROH_RAFT_SCAN_READS_MAX',
    help: 'shard reads of scans in flight on this node, over all scans; more wait, then Overloaded (default 32)',
    parse: int(1, 1_000_000),
  },
  {
    key: 'scanTenantReadsMax',
    flag: '--scan-tenant-reads-max',
    env: 'IROH_RAFT_SCAN_TENANT_READS_MAX',
    help: "of --scan-reads-max, the most one tenant's scans hold at once (default half)",
    parse: int(1, 1_000_000),
  },
  {
    key: 'leaderBalanceMs',
    flag: '--leader-balance-ms',
    env: 'IROH_RAFT_LEADER_BALANCE_MS',
    help: 'milliseconds between rounds that hand leaderships to nodes leading fewer shards; 0 = off (default 5000)',
    parse: int(0, 3_600_000),
  },
  {
    key: 'discoveryIntervalMs',
    flag: '--discovery-interval-ms',
    env: 'IROH_RAFT_DISCOVERY_INTERVAL_MS',
    help: 'milliseconds between exchanges of addresses with every member (iroh-raft-discovery/0); 0 = only at start and when a peer restarts (default 30000)',
    parse: int(0, 3_600_000),
  },
  {
    key: 'join',
    flag: '--join',
    env: 'IROH_RAFT_JOIN',
    help: "a member's ticket, or with auth on the join string of `iroh-raft members invite` (ticket.secret): join its cluster (first start of an empty data directory)",
    parse: str,
  },
  {
    key: 'metaPollMs',
    flag: '--meta-poll-ms',
    env: 'IROH_RAFT_META_POLL_MS',
    help: "milliseconds between reads of the cluster's members and replica targets, and the replica moves that follow (default 1000)",
    parse: int(50, 600_000),
  },
  {
    key: 'deadNodeTimeoutMs',
    flag: '--dead-node-timeout-ms',
    env: 'IROH_RAFT_DEAD_NODE_TIMEOUT_MS',
    help: 'milliseconds a member may stay unreachable before its replicas are rebuilt on the others (default 300000: 5 minutes)',
    parse: int(1000, 30 * 24 * 3_600_000),
  },
  {
    key: 'deadNodeTimeoutMs',
    flag: '--dead-node-timeout',
    env: 'IROH_RAFT_DEAD_NODE_TIMEOUT',
    help: '--dead-node-timeout-ms with a unit: 90s, 5m, 2h (default 5m)',
    parse: duration(1000, 30 * 24 * 3_600_000),
  },
  {
    key: 'peerFrameTimeoutMs',
    flag: '--peer-frame-timeout-ms',
    env: 'IROH_RAFT_PEER_FRAME_TIMEOUT_MS',
    help: 'milliseconds a started raft frame from a peer may take to arrive whole before its connection is closed (default 10000)',
    parse: int(1, 600_000),
  },
  {
    key: 'snapshotOfferTimeoutMs',
    flag: '--snapshot-offer-timeout-ms',
    env: 'IROH_RAFT_SNAPSHOT_OFFER_TIMEOUT_MS',
    help: 'milliseconds a snapshot stream from a peer may take to bring its offer before it is closed (default 5000)',
    parse: int(1, 600_000),
  },
  {
    key: 'snapshotBytesPerSec',
    flag: '--snapshot-bytes-per-sec',
    env: 'IROH_RAFT_SNAPSHOT_BYTES_PER_SEC',
    help: 'rate limit of snapshot transfers this node sends (default 67108864)',
    parse: int(4096, 1e12),
  },
  {
    key: 'shutdownTimeoutMs',
    flag: '--shutdown-timeout-ms',
    env: 'IROH_RAFT_SHUTDOWN_TIMEOUT_MS',
    help: 'graceful shutdown bound (default 10000)',
    parse: int(100, 600_000),
  },
  {
    key: 'logLevel',
    flag: '--log-level',
    env: 'IROH_RAFT_LOG_LEVEL',
    help: `log level: ${LOG_LEVELS.join(', ')} (default info)`,
    parse: oneOf(LOG_LEVELS),
  },
  {
    key: 'helperThreads',
    flag: '--helper-threads',
    env: 'IROH_RAFT_HELPER_THREADS',
    help: "Linux: batch schedules the node's threads other than its event loop (shard workers, Iroh's, V8's) so that waking one does not take the event loop's core; normal keeps the kernel's default (default batch)",
    parse: oneOf(HELPER_THREADS),
  },
  {
    key: 'logFormat',
    flag: '--log-format',
    env: 'IROH_RAFT_LOG_FORMAT',
    help: 'log lines: json, or pretty for people (default: pretty on a terminal, else json)',
    parse: oneOf(LOG_FORMATS),
  },
];

export function defaults(): NodeConfig {
  return {
    data: './data',
    http: { host: '127.0.0.1', port: 7070 },
    listen: { host: '127.0.0.1', port: 7071 },
    shards: 16,
    workers: Math.min(availableParallelism(), 256),
    replicas: 3,
    peers: [],
    tickMs: 100,
    electionTicks: 10,
    quiesceAfterTicks: 20,
    requestTimeoutMs: 5000,
    compactEveryEntries: 10_000,
    compactKeepEntries: 1_000,
    snapshotBytesPerSec: 64 << 20,
    peerFrameTimeoutMs: 10_000,
    snapshotOfferTimeoutMs: 5_000,
    writeBytesMax: 2 << 20,
    writesSharedMax: 8,
    httpBodiesBytesMax: 8 << 20,
    httpConnectionsMax: 4096,
    mgmtConnectionsMax: 64,
    mgmtRequestTimeoutMs: 10_000,
    scanReadsMax: 32,
    // Five election timeouts at the default tick: a round's moves (a transfer takes a few ticks) are
    // known to every replica before the next round counts leaders, and a node back from a restart
    // gets its share again within a few rounds.
    leaderBalanceMs: 5000,
    discoveryIntervalMs: 30_000,
    metaPollMs: 1000,
    // Longer than a restart or an upgrade of a machine takes, so routine maintenance moves no data
    // (rebuilding a node's replicas copies all of them); short enough that a lost machine's
    // replicas are rebuilt long before a second loss becomes likely.
    deadNodeTimeoutMs: 300_000,
    unkeyedPlacement: 'refuse',
    diskFreeBytesMin: 256 << 20,
    shutdownTimeoutMs: 10_000,
    logLevel: 'info',
    logFormat: defaultLogFormat(),
    helperThreads: 'batch',
  };
}

/**
 * Parses flags (`--name value` or `--name=value`; `--config <file>`) over the environment over the
 * config file over the defaults. Throws ConfigError.
 */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): NodeConfig {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new ConfigError('InvalidFlag', `unexpected argument ${JSON.stringify(a)}`);
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(0, eq) : a;
    let value: string | undefined = eq > 0 ? a.slice(eq + 1) : argv[i + 1];
    if (eq < 0) i++;
    if (name !== '--config' && !SETTINGS.some((s) => s.flag === name)) throw new ConfigError('UnknownFlag', `unknown flag ${name} (see iroh-raft help)`);
    if (value === undefined || (eq < 0 && value.startsWith('--'))) throw new ConfigError('InvalidFlag', `${name} needs a value`);
    if (flags.has(name)) throw new ConfigError('InvalidFlag', `${name} is given twice`);
    value = value.trim();
    flags.set(name, value);
  }
  const out: Record<string, unknown> = { ...defaults() };
  const file = flags.get('--config') ?? env.IROH_RAFT_CONFIG;
  if (file !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new ConfigError('ConfigFileUnreadable', `config file ${file}: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new ConfigError('InvalidConfig', `config file ${file}: expected a JSON object`);
    for (const [k, v] of Object.entries(parsed)) {
      const s = SETTINGS.find((x) => x.key === k);
      if (!s)
        throw new ConfigError('InvalidConfig', `config file ${file}: unknown setting ${JSON.stringify(k)} (known: ${SETTINGS.map((x) => x.key).join(', ')})`);
      out[k] = s.parse(v, `config file ${file}: ${k}`);
    }
  }
  for (const s of SETTINGS) {
    const v = env[s.env];
    if (v !== undefined && v !== '') out[s.key] = s.parse(v, `environment ${s.env}`);
  }
  for (const s of SETTINGS) {
    const v = flags.get(s.flag);
    if (v !== undefined) out[s.key] = s.parse(v, `flag ${s.flag}`);
  }
  if (flags.has('--dead-node-timeout') && flags.has('--dead-node-timeout-ms'))
    throw new ConfigError('InvalidFlag', '--dead-node-timeout and --dead-node-timeout-ms are the same setting: give one');
  const cfg = out as unknown as NodeConfig;
  if ((cfg.tlsCert === undefined) !== (cfg.tlsKey === undefined))
    throw new ConfigError('InvalidConfig', '--tls-cert and --tls-key go together (HTTPS needs both a certificate and its key)');
  if (cfg.scanTenantReadsMax !== undefined && cfg.scanTenantReadsMax > cfg.scanReadsMax)
    throw new ConfigError('InvalidConfig', `--scan-tenant-reads-max (${cfg.scanTenantReadsMax}) must not exceed --scan-reads-max (${cfg.scanReadsMax})`);
  if (cfg.tlsCa !== undefined && cfg.tlsCert === undefined)
    throw new ConfigError('InvalidConfig', '--tls-ca (client certificates) needs HTTPS: give --tls-cert and --tls-key too');
  return cfg;
}
