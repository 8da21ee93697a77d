/**
 * What quiet shards cost: a cluster with no load, measured per node (CPU, RSS, Iroh bytes and
 * records sent per second) after IDLE_SETTLE_MS of settling. --idle is a mode of its own, and
 * waits first for the start's leader balancing to end (what a cluster costs at rest, with how
 * long it took to get there reported beside it); --idle-seconds measures the same before a run's
 * load.
 */
import { scrape, sleep } from '../kv-client.js';
import type { LocalServers } from '../local-cluster.js';
import { RssPoller, cpuSeconds, vmBytes } from '../proc.js';
import { facts } from './facts.js';
import type { Config } from './flags.js';
import { fmtInt, fmtMiB, fmtOpt, problemLines, table } from './format.js';
import { metric } from './measure.js';
import { progress } from './progress.js';
import { writeResult } from './report.js';
import { assertRunning, release, startCluster, untilHealthy } from './servers.js';
import { IDLE_SETTLE_MS, LEADERS_SETTLE_MAX_MS, LEADERS_STILL_MS } from './settings.js';

interface IdleNode {
  readonly name: string;
  readonly pid: number;
  /** CPU over the window, % of one core. */
  readonly cpuPercent: number | undefined;
  /** VmRSS at the end of the window and the highest seen during it, bytes. */
  readonly rssBytes: number | undefined;
  readonly peakRssBytes: number | undefined;
  readonly irohBytesPerSec: number;
  readonly irohRecordsPerSec: number;
}

/** Each node's CPU, memory and Iroh traffic over `seconds` with no load, after IDLE_SETTLE_MS of quiet. */
export async function measureIdle(servers: LocalServers, seconds: number, check: () => void) {
  await sleep(IDLE_SETTLE_MS);
  check();
  const pids = servers.servers.map((s) => s.pid);
  const urls = servers.urls;
  const rss = new RssPoller([...pids], 500);
  const c0 = pids.map(cpuSeconds);
  const m0 = await Promise.all(urls.map((u) => scrape(u)));
  rss.start();
  const i0 = performance.now();
  progress(`[iroh-raft] measuring the idle cluster for ${seconds} s`);
  await sleep(seconds * 1000);
  const secs = (performance.now() - i0) / 1000;
  const c1 = pids.map(cpuSeconds);
  const m1 = await Promise.all(urls.map((u) => scrape(u)));
  rss.stop();
  check();
  const rate = (i: number, name: string): number => (metric(m1, i, name) - metric(m0, i, name)) / secs;
  const nodes: IdleNode[] = servers.servers.map((s, i) => ({
    name: s.name,
    pid: s.pid,
    cpuPercent: c1[i] !== undefined && c0[i] !== undefined ? ((c1[i] - c0[i]) / secs) * 100 : undefined,
    rssBytes: vmBytes(s.pid, 'VmRSS'),
    peakRssBytes: rss.peak.get(s.pid),
    irohBytesPerSec: rate(i, 'iroh_raft_transport_sent_bytes_total'),
    irohRecordsPerSec: rate(i, 'iroh_raft_transport_records_sent_total'),
  }));
  return {
    seconds,
    measuredS: secs,
    cpuPercent: nodes.map((n) => n.cpuPercent),
    irohBytesPerSec: nodes.map((n) => n.irohBytesPerSec),
    leaderChanges: urls.reduce(
      (a, _, i) => a + metric(m1, i, 'iroh_raft_shard_leader_changes_total') - metric(m0, i, 'iroh_raft_shard_leader_changes_total'),
      0,
    ),
    nodes,
  };
}

type Idle = Awaited<ReturnType<typeof measureIdle>>;

/** Leader changes counted by all nodes so far. */
async function leaderChanges(urls: readonly string[]): Promise<number> {
  const m = await Promise.all(urls.map((u) => scrape(u)));
  return urls.reduce((a, _, i) => a + metric(m, i, 'iroh_raft_shard_leader_changes_total'), 0);
}

/** How the start's leader moves ended before an idle window (seconds from healthy). */
interface Leaders {
  /** When no node had counted a change for LEADERS_STILL_MS, or when the wait gave up. */
  readonly waitedS: number;
  /** When a poll last saw the count move (1 s polls); 0 when it never did. */
  readonly lastChangeS: number;
  readonly settled: boolean;
  readonly changes: number;
}

/**
 * Waits until no node has counted a leader change for LEADERS_STILL_MS (the start's elections and
 * leader balancing are over), at most LEADERS_SETTLE_MAX_MS.
 */
async function leadersSettled(servers: LocalServers, check: () => void): Promise<Leaders> {
  const t0 = performance.now();
  const since = (): number => (performance.now() - t0) / 1000;
  const first = await leaderChanges(servers.urls);
  let last = first;
  let lastChangeS = 0;
  progress(`[iroh-raft] waiting for the leaders to stop moving (no change for ${LEADERS_STILL_MS / 1000} s)`);
  while (since() - lastChangeS < LEADERS_STILL_MS / 1000) {
    if (since() > LEADERS_SETTLE_MAX_MS / 1000) return { waitedS: since(), lastChangeS, settled: false, changes: last - first };
    await sleep(1000);
    check();
    const now = await leaderChanges(servers.urls);
    if (now !== last) lastChangeS = since();
    last = now;
  }
  return { waitedS: since(), lastChangeS, settled: true, changes: last - first };
}

/** A fresh cluster, healthy, then measured with no load; undefined when it did not get that far (see `problems`). */
async function idleCluster(cfg: Config, problems: string[]): Promise<{ idle: Idle; leaders: Leaders } | undefined> {
  const t0 = performance.now();
  const servers = await startCluster(cfg, () => cfg.nodeFlags);
  let idle: { idle: Idle; leaders: Leaders } | undefined;
  let keep = false;
  try {
    await untilHealthy(servers, cfg.shards, t0);
    const leaders = await leadersSettled(servers, assertRunning(servers));
    progress(
      leaders.settled
        ? `[iroh-raft] leaders settled: the last change seen ${leaders.lastChangeS.toFixed(1)} s after healthy (${leaders.changes} leader changes meanwhile)`
        : `[iroh-raft] leaders still moving ${leaders.waitedS.toFixed(0)} s after healthy: measuring anyway`,
    );
    if (!leaders.settled)
      problems.push(
        `the leaders were still moving ${leaders.waitedS.toFixed(0)} s after healthy (${leaders.changes} leader changes): the window includes them`,
      );
    idle = { idle: await measureIdle(servers, cfg.durationS, assertRunning(servers)), leaders };
    await servers.stop();
  } catch (e) {
    keep = true;
    problems.push(e instanceof Error ? e.message : String(e));
  } finally {
    for (const g of servers.unexpectedExits()) problems.push(`${g.name} fell over: code ${g.exit.code}, signal ${g.exit.signal}`);
    keep ||= problems.length > 0;
    await release(servers, keep);
    if (keep) problems.push(`logs and data kept in ${servers.root}`);
  }
  return idle;
}

/** --idle: a fresh cluster, healthy, then measured with no load; prints a table and writes the result. True when it failed. */
export async function runIdle(cfg: Config): Promise<boolean> {
  const run = facts();
  const problems: string[] = [];
  const measured = await idleCluster(cfg, problems);
  const idle = measured?.idle;
  const leaders = measured?.leaders;
  const lines = [
    `\nidle: ${cfg.nodes} node(s), ${cfg.shards} shards, ${cfg.workers} worker(s) per node; ${cfg.durationS} s, no load, after the leaders stopped moving (${leaders === undefined ? '-' : leaders.changes === 0 ? 'none moved after healthy' : `the last change seen ${leaders.lastChangeS.toFixed(1)} s after healthy, ${leaders.changes} leader changes in that time`}${leaders?.settled === false ? ', not settled' : ''}) and ${IDLE_SETTLE_MS / 1000} s more`,
  ];
  if (idle) {
    const rows = [['node', 'pid', 'CPU %', 'RSS MiB', 'peak RSS MiB', 'Iroh B/s', 'Iroh records/s']];
    for (const n of idle.nodes)
      rows.push([
        n.name,
        String(n.pid),
        fmtOpt(n.cpuPercent, 1),
        fmtMiB(n.rssBytes),
        fmtMiB(n.peakRssBytes),
        fmtInt(n.irohBytesPerSec),
        n.irohRecordsPerSec.toFixed(1),
      ]);
    lines.push(table(rows), `(CPU % is of one core; leader changes during the window: ${idle.leaderChanges})`);
  }
  lines.push(...problemLines(problems));
  console.log(lines.join('\n'));
  const out = {
    name: `idle-${cfg.name}`,
    ...run,
    config: {
      nodes: cfg.nodes,
      shards: cfg.shards,
      workers: cfg.workers,
      durationS: cfg.durationS,
      settleS: IDLE_SETTLE_MS / 1000,
      leadersStillS: LEADERS_STILL_MS / 1000,
      leadersSettleMaxS: LEADERS_SETTLE_MAX_MS / 1000,
    },
    leaders: leaders ?? null,
    idle,
    problems,
    failed: problems.length > 0,
  };
  writeResult(out, run.machine.date, cfg.json);
  return out.failed;
}
