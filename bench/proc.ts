/**
 * What /proc says about a process (Linux only): CPU time and memory, read without disturbing it.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

/** Clock ticks per second of utime/stime in /proc/<pid>/stat (`getconf CLK_TCK`, usually 100). */
const CLK_TCK = ((): number => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isInteger(n) && n > 0 ? n : 100;
})();

/** utime + stime of a /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat text, seconds. */
function statCpuSeconds(stat: string): number {
  // The command name (field 2) is in parentheses and may hold spaces: count fields after it.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** User plus system CPU seconds the process has used so far (all its threads), or undefined once it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    return statCpuSeconds(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** CPU seconds so far of each live thread of a process, by thread id, with the thread's name. */
export function threadCpuSeconds(pid: number): Map<number, { readonly comm: string; readonly cpuS: number }> {
  const out = new Map<number, { comm: string; cpuS: number }>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      out.set(Number(tid), { comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), cpuS: statCpuSeconds(stat) });
    } catch {
      // the thread ended in between
    }
  }
  return out;
}

/**
 * A node's CPU split by thread: the main thread (HTTP, router, the JavaScript side of the
 * transport), Iroh's tokio threads, and the rest (shard worker threads, V8's GC helpers, libuv's
 * pool; Node does not name them apart), and the busiest of the rest alone (with one shard
 * worker, that is nearly always the worker). Seconds between two threadCpuSeconds readings.
 */
export function splitThreads(
  pid: number,
  before: Map<number, { readonly comm: string; readonly cpuS: number }>,
  after: Map<number, { readonly comm: string; readonly cpuS: number }>,
): { mainS: number; irohS: number; otherS: number; busiestOtherS: number } {
  const split = { mainS: 0, irohS: 0, otherS: 0, busiestOtherS: 0 };
  for (const [tid, a] of after) {
    const d = a.cpuS - (before.get(tid)?.cpuS ?? 0);
    if (tid === pid) split.mainS += d;
    else if (a.comm.startsWith('tokio')) split.irohS += d;
    else {
      split.otherS += d;
      split.busiestOtherS = Math.max(split.busiestOtherS, d);
    }
  }
  return split;
}

/** Busy and total CPU seconds of the whole machine so far, summed over all cores (/proc/stat). */
export function machineCpuSeconds(): { busyS: number; totalS: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
    const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    const idle = v[3]! + v[4]!;
    return { busyS: (total - idle) / CLK_TCK, totalS: total / CLK_TCK };
  } catch {
    return undefined;
  }
}

/** A `Vm*` line of /proc/<pid>/status (VmRSS: resident now, VmHWM: peak resident), bytes. */
export function vmBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Polls VmRSS of some processes and keeps each one's peak: the peak within a window (VmHWM is
 * the peak since the process started, startup and preload included).
 */
export class RssPoller {
  /** Highest VmRSS seen per pid since start(), bytes. */
  readonly peak = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly pids: number[],
    private readonly intervalMs = 200,
  ) {}

  /** Watches one more process (one started after the poller). */
  add(pid: number): void {
    this.pids.push(pid);
  }

  start(): void {
    this.poll();
    this.timer = setInterval(() => this.poll(), this.intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.poll();
  }

  private poll(): void {
    for (const pid of this.pids) {
      const rss = vmBytes(pid, 'VmRSS');
      if (rss !== undefined && rss > (this.peak.get(pid) ?? 0)) this.peak.set(pid, rss);
    }
  }
}

/**
 * How fast this machine is right now, on a fixed single-threaded JavaScript job (JSON round trips
 * of small objects: allocation, strings, parsing, like a node's own work) for about `ms`, in
 * thousands of round trips per second. On a shared VM the same job can run at different speeds
 * from one minute to the next; taken before and after a run, it tells apart runs that differ
 * only in the machine.
 */
export function cpuSpeedKops(ms = 300): number {
  const t0 = performance.now();
  let n = 0;
  let sink = 0;
  while (performance.now() - t0 < ms) {
    for (let i = 0; i < 256; i++) {
      const o = JSON.parse(JSON.stringify({ key: `k${n + i}`, version: n + i, tags: ['a', 'b', 'c'], value: 'x'.repeat(64) })) as { version: number };
      sink += o.version;
    }
    n += 256;
  }
  return sink < 0 ? 0 : n / (performance.now() - t0);
}

/**
 * The process listening on TCP `port` on this machine (IPv4 or IPv6), found through the socket's
 * inode in /proc/net/tcp*, or undefined (not local, or the process is not ours to look into).
 */
export function pidListeningOn(port: number): number | undefined {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is ADDR:PORT in hex; state 0A is LISTEN; the inode is the tenth field.
      if (f.length > 9 && f[3] === '0A' && parseInt(f[1]!.split(':')[1]!, 16) === port) inodes.add(`socket:[${f[9]}]`);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (inodes.has(readlinkSync(`/proc/${pid}/fd/${fd}`))) return Number(pid);
      } catch {
        // closed in between
      }
    }
  }
  return undefined;
}
