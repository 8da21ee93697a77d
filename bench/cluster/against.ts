/**
 * --against etcd=URLS|local: the same workload against etcd's v3 JSON gateway, alternating with
 * iroh-raft for --rounds rounds (the order flips every round); both rows per round, the medians,
 * the ratio with its spread, and what the comparison holds equal and what it does not.
 */
import { etcdVersion, startEtcd } from '../etcd-local.js';
import { waitHealthy } from '../kv-client.js';
import type { LocalServers } from '../local-cluster.js';
import { pidListeningOn } from '../proc.js';
import { median } from '../stats.js';
import { machine, versions } from './facts.js';
import type { Config } from './flags.js';
import { fmtInt, fmtMs, problemLines, rateCells, table } from './format.js';
import type { Target } from './load.js';
import { measure } from './measure.js';
import type { SystemResult } from './measure.js';
import { runNodes } from './nodes.js';
import { progress } from './progress.js';
import { configOf, recorded, report, writeResult } from './report.js';
import { exitsOf, liveUrlsOf, release, track } from './servers.js';
import { HEALTHY_TIMEOUT_MS } from './settings.js';

type Against = NonNullable<Config['against']>;

/** One round: both systems' results (undefined where one did not get that far) and iroh-raft's startup facts. */
interface Round {
  readonly ours: SystemResult | undefined;
  readonly etcd: SystemResult | undefined;
  readonly extra: Record<string, unknown>;
}

/** A ratio with its spread over the rounds that have both figures. */
interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

/** What the comparison with etcd holds equal and what it does not; printed with the figures. */
function againstEtcdNotes(cfg: Config): string[] {
  const reads =
    cfg.mix.readPercent === 0
      ? ''
      : cfg.consistency === 'stale'
        ? ', reads that may be stale (iroh-raft: stale, etcd: serializable)'
        : ', linearizable reads (both ReadIndex)';
  return [
    'the same: load generator (autocannon in its own process), connections split evenly over the same number of members,',
    `  a new key per write, the same value bytes, durable writes (both: the entry in a write-ahead log fsynced on a quorum`,
    `  before the reply, the applied data written to the backend later in batches)${reads}, every acknowledged write read back afterwards,`,
    '  writes to a follower forwarded to the leader (iroh-raft over Iroh, etcd inside raft); the order alternates per round',
    'different: etcd is one raft group (every write through one leader), iroh-raft --shards groups with leaders spread',
    '  over the nodes; etcd members are Go processes that run on every core, an iroh-raft node is one main thread plus',
    "  --workers shard workers; etcd peers speak plain HTTP over TCP, iroh-raft nodes QUIC (TLS) through Iroh; etcd's JSON",
    '  gateway carries keys and values base64 in JSON (4/3 the bytes) and turns them into gRPC calls inside the member;',
    '  the etcd cluster lives from round to round (never compacted), iroh-raft starts a fresh cluster every round (unless --target)',
  ];
}

/**
 * The processes of etcd members at `urls` on this machine, watched like our nodes (CPU, RSS), but
 * only when all of them are: CPU per request summed over some members would understate etcd's.
 */
function localMembers(urls: readonly string[]): { name: string; pid: number }[] {
  const local = (h: string): boolean => h === '127.0.0.1' || h === 'localhost' || h === '[::1]';
  const found = urls.map((u, i) => {
    const url = new URL(u);
    const pid = local(url.hostname) ? pidListeningOn(Number(url.port)) : undefined;
    return pid === undefined ? undefined : { name: `etcd ${i + 1}`, pid };
  });
  return found.every((p) => p !== undefined) && new Set(found.map((p) => p.pid)).size === found.length ? found : [];
}

/** The etcd cluster to compare with: a local one started now (returned as `etcd`, watched), or the running one at the URLs. */
async function etcdSide(cfg: Config, against: Against): Promise<{ target: Target; etcd: LocalServers | undefined }> {
  let etcd: LocalServers | undefined;
  let urls: readonly string[];
  let procs: { name: string; pid: number }[];
  if (against.urls === 'local') {
    const members = cfg.target?.length ?? cfg.nodes;
    progress(`[etcd] starting a local etcd cluster of ${members} member(s) (etcd ${etcdVersion() ?? ''})`);
    etcd = track(await startEtcd(members));
    urls = etcd.urls;
    procs = etcd.servers;
  } else {
    urls = against.urls;
    progress(`[etcd] waiting for /health on ${urls.join(', ')}`);
    await waitHealthy(urls, HEALTHY_TIMEOUT_MS, undefined, '/health');
    procs = localMembers(urls);
    if (procs.length === 0) progress('[etcd] its members are not all local processes of this machine: no CPU or memory figures for etcd');
  }
  return { etcd, target: { system: 'etcd', api: 'etcd', urls, procs, isNode: false, exits: exitsOf(etcd), liveUrls: liveUrlsOf(etcd, urls) } };
}

/** Round `i`: iroh-raft and etcd under the same load, in the order of the round; prints its report. */
async function runRound(cfg: Config, i: number, date: string, etcd: Target): Promise<{ round: Round; problems: string[]; failed: boolean }> {
  const prefix = `bench-${Date.now().toString(36)}-${i}/`;
  const results: SystemResult[] = [];
  const extra: Record<string, unknown> = {};
  const problems: string[] = [];
  let failed = false;
  const ours = async (): Promise<void> => {
    progress(`\n[round ${i + 1} of ${cfg.rounds}] iroh-raft`);
    failed = (await runNodes(cfg, prefix, date, results, problems, extra)) || failed;
  };
  const theirs = async (): Promise<void> => {
    progress(`\n[round ${i + 1} of ${cfg.rounds}] etcd at ${etcd.urls.join(', ')}`);
    try {
      failed = recorded(await measure(etcd, cfg, prefix), results, problems) || failed;
    } catch (e) {
      failed = true;
      problems.push(`etcd: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  // ours, etcd, etcd, ours, ours, etcd...: neither always runs right after the other's teardown.
  if (i % 2 === 0) {
    await ours();
    await theirs();
  } else {
    await theirs();
    await ours();
  }
  console.log(report(cfg, results, extra, problems));
  return { round: { ours: results.find((r) => r.system === 'iroh-raft'), etcd: results.find((r) => r.system === 'etcd'), extra }, problems, failed };
}

const ratio = (a: number | undefined, b: number | undefined): number | undefined => (a !== undefined && b !== undefined && b > 0 ? a / b : undefined);
const x = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '-' : `${v.toFixed(2)}x`);

/** Median of a figure of one system over the rounds that have it. */
function med(rounds: readonly Round[], f: (r: SystemResult) => number | undefined, sys: 'ours' | 'etcd'): number {
  return median(rounds.flatMap((r) => (r[sys] && f(r[sys]) !== undefined ? [f(r[sys])!] : [])));
}

/** Requests/s, p50 and p99 of one system: the medians over the rounds. */
function medianFigures(rounds: readonly Round[], sys: 'ours' | 'etcd'): string[] {
  return [
    fmtInt(med(rounds, (r) => r.okPerSec, sys)),
    fmtMs(med(rounds, (r) => r.latency.all.p50Ms, sys)),
    fmtMs(med(rounds, (r) => r.latency.all.p99Ms, sys)),
  ];
}

/** Per round, iroh-raft's figures over etcd's; then their spread. */
function ratios(rounds: readonly Round[]) {
  const pairs = rounds.map((r) => ({
    tput: ratio(r.ours?.okPerSec, r.etcd?.okPerSec),
    p99: ratio(r.ours?.latency.all.p99Ms, r.etcd?.latency.all.p99Ms),
    cpu: ratio(r.ours?.serverCpuUsPerOk, r.etcd?.serverCpuUsPerOk),
  }));
  const spread = (k: 'tput' | 'p99' | 'cpu'): Spread => {
    const v = pairs.flatMap((p) => (p[k] === undefined ? [] : [p[k]]));
    return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
  };
  return { pairs, tput: spread('tput'), p99: spread('p99'), cpu: spread('cpu') };
}

/** Both systems side by side, a row per round and the medians, with the ratios. */
function roundsTable(rounds: readonly Round[], q: ReturnType<typeof ratios>): string {
  const rows = [['round', 'iroh-raft req/s', 'p50 ms', 'p99 ms', 'etcd req/s', 'p50 ms', 'p99 ms', 'req/s ratio', 'p99 ratio']];
  rounds.forEach((r, i) => rows.push([String(i + 1), ...rateCells(r.ours), ...rateCells(r.etcd), x(q.pairs[i]!.tput), x(q.pairs[i]!.p99)]));
  rows.push(['median', ...medianFigures(rounds, 'ours'), ...medianFigures(rounds, 'etcd'), x(q.tput.median), x(q.p99.median)]);
  return table(rows);
}

/** The largest peak RSS among a system's server processes in one run, MiB; undefined when none was read. */
function peakServerRssMiB(r: SystemResult): number | undefined {
  const peaks = r.processes.flatMap((p) => (p.peakRssBytes === undefined ? [] : [p.peakRssBytes]));
  return peaks.length === 0 ? undefined : Math.max(...peaks) / 2 ** 20;
}

/** What the medians hide: the tail past p99 and the memory of the largest server process, medians over the rounds. */
function hiddenCosts(rounds: readonly Round[]): string {
  const side = (sys: 'ours' | 'etcd'): string => {
    const tail = fmtMs(med(rounds, (r) => r.latency.all.p999Ms, sys));
    return `p99.9 ${tail} ms, peak RSS of its largest server process ${fmtInt(med(rounds, peakServerRssMiB, sys))} MiB`;
  };
  return `hidden costs (medians): iroh-raft ${side('ours')}; etcd ${side('etcd')}`;
}

/** The comparison's summary: what ran, the table, the ratios, the CPU per request, the hidden costs, the notes and the problems. */
function summaryLines(
  cfg: Config,
  against: Against,
  etcdVersionText: string,
  rounds: readonly Round[],
  q: ReturnType<typeof ratios>,
  problems: string[],
): string[] {
  const { tput, p99, cpu } = q;
  const where = `${cfg.target ? `iroh-raft target ${cfg.target.join(',')}` : `iroh-raft ${cfg.nodes} node(s), ${cfg.shards} shards, ${cfg.workers} worker(s) per node`}; etcd ${etcdVersionText} at ${against.urls === 'local' ? `a local cluster of ${cfg.nodes} member(s)` : against.urls.join(',')}`;
  const lines = [
    `\niroh-raft against etcd, alternating, ${rounds.length} round(s): ${where}`,
    `${cfg.connections} connections, ${cfg.durationS} s per run, mix ${cfg.mix.label}, ${cfg.valueSize} B values${cfg.mix.readPercent > 0 ? `, reads ${cfg.consistency}${cfg.consistency === 'stale' ? ' (etcd: serializable)' : ''}` : ''}`,
    roundsTable(rounds, q),
    `iroh-raft / etcd requests/s: median ${x(tput.median)} (min ${x(tput.min)}, max ${x(tput.max)} over ${tput.n} pair(s)); p99: median ${x(p99.median)} (min ${x(p99.min)}, max ${x(p99.max)})`,
  ];
  if (cpu.n > 0)
    lines.push(
      `server CPU per ok request: iroh-raft median ${fmtInt(med(rounds, (r) => r.serverCpuUsPerOk, 'ours'))} µs, etcd median ${fmtInt(med(rounds, (r) => r.serverCpuUsPerOk, 'etcd'))} µs (ratio ${x(cpu.median)}, min ${x(cpu.min)}, max ${x(cpu.max)})`,
    );
  else lines.push('server CPU per ok request: unknown for etcd (its processes are not on this machine or not visible)');
  lines.push(hiddenCosts(rounds), ...againstEtcdNotes(cfg), ...problemLines(problems));
  return lines;
}

/** --against: iroh-raft and etcd alternately (ours, etcd, etcd, ours...), then both rows and the ratio with its spread. True when it failed. */
export async function runAgainst(cfg: Config): Promise<boolean> {
  const against = cfg.against!;
  const run = { versions: { ...versions(), etcd: etcdVersion() ?? 'unknown (not on this machine)' }, machine: machine() };
  const problems: string[] = [];
  let failed = false;
  let etcd: LocalServers | undefined;
  const rounds: Round[] = [];
  try {
    const side = await etcdSide(cfg, against);
    etcd = side.etcd;
    for (let i = 0; i < cfg.rounds; i++) {
      const r = await runRound(cfg, i, run.machine.date, side.target);
      failed = r.failed || failed;
      problems.push(...r.problems.map((p) => `round ${i + 1}: ${p}`));
      rounds.push(r.round);
    }
    if (etcd) await etcd.stop(10_000);
  } catch (e) {
    failed = true;
    problems.push(e instanceof Error ? e.message : String(e));
  } finally {
    if (etcd) {
      await release(etcd, failed);
      if (failed) problems.push(`etcd logs and data kept in ${etcd.root}`);
    }
  }
  const q = ratios(rounds);
  console.log(summaryLines(cfg, against, run.versions.etcd, rounds, q, problems).join('\n'));
  const out = {
    name: `${cfg.name}-vs-etcd`,
    ...run,
    config: configOf(cfg),
    summary: { throughputRatio: q.tput, p99Ratio: q.p99, cpuPerRequestRatio: q.cpu.n > 0 ? q.cpu : null },
    notes: againstEtcdNotes(cfg).join(' ').replace(/\s+/g, ' '),
    rounds,
    problems,
    failed,
  };
  writeResult(out, run.machine.date, cfg.json);
  return failed;
}
