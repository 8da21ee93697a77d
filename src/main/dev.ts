/**
 * `iroh-raft dev`: a local cluster of separate node processes in one command, for trying the
 * engine and watching a failover.
 *
 * Each node is a `start` process of its own, as in a deployment, so a SIGKILL hits one node only.
 * A node that exits leaves the others serving: dev prints which node exited and how (exit code or
 * signal), and two ways to bring it back with its data: `restart <n>` typed on dev's stdin, or the
 * exact command line that dev ran, for a shell. SIGINT and SIGTERM stop every node dev runs.
 *
 * When every node has exited, dev exits 1 if none of them ever served (a start-up failure that a
 * restart would only repeat) or if stdin has ended (no restart command can come); otherwise it
 * waits for `restart <n>`, and Ctrl-C quits.
 *
 * `add` on stdin starts one more node that joins the running cluster (`start --join` with a running
 * node's ticket), so a person can watch the cluster move replicas onto it. Once started it is a
 * node like the founders: restart, exit notices and Ctrl-C treat it the same.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { ConfigError } from './config.js';
import { DataDir } from './data-dir.js';
import { LOG_FORMATS } from './log.js';
import { ticketOf } from './ticket.js';

/**
 * Most nodes dev runs, founders and added ones together. Node i (1-based) serves HTTP on
 * `basePort + i - 1` and Iroh on `basePort + 100 + i - 1`: at 9, every port dev uses lies in
 * `basePort..basePort+8` and `basePort+100..basePort+108`, ranges a person can keep free.
 */
export const DEV_NODES_MAX = 9;

/** `iroh-raft dev`'s flags, validated. */
export interface DevFlags {
  /** Node processes started at once (the founders), 1-DEV_NODES_MAX; `add` starts more, up to DEV_NODES_MAX in all. */
  readonly nodes: number;
  /** Raft groups in the cluster. */
  readonly shards: number;
  /** Worker threads per node. */
  readonly workers: number;
  readonly basePort: number;
  /** Parent of the nodes' data directories `node-<i>`. */
  readonly data: string;
  /** Flags passed to every node unchanged (`--tick-ms`, `--log-level`, `--log-format`, `--replicas`). */
  readonly rest: readonly string[];
}

/** Parses `--name value` pairs. Throws ConfigError. */
export function parseDevFlags(argv: readonly string[]): DevFlags {
  const out = { nodes: 3, shards: 16, workers: 1, basePort: 7070, data: './data-dev', rest: [] as string[] };
  for (let i = 0; i < argv.length; i += 2) {
    const [name, value] = [argv[i]!, argv[i + 1]];
    if (value === undefined) throw new ConfigError('InvalidFlag', `${name} needs a value`);
    const n = Number(value);
    const int = (min: number, max: number): number => {
      if (!Number.isInteger(n) || n < min || n > max)
        throw new ConfigError('InvalidFlag', `${name}: expected an integer in [${min}, ${max}], got ${JSON.stringify(value)}`);
      return n;
    };
    if (name === '--nodes') out.nodes = int(1, DEV_NODES_MAX);
    else if (name === '--shards') out.shards = int(1, 65536);
    else if (name === '--workers') out.workers = int(1, 64);
    else if (name === '--base-port') out.basePort = int(1, 65000);
    else if (name === '--data') out.data = value;
    else if (name === '--log-format' && !(LOG_FORMATS as readonly string[]).includes(value))
      throw new ConfigError('InvalidConfig', `--log-format: expected one of ${LOG_FORMATS.join(', ')}, got ${JSON.stringify(value)}`);
    else if (['--tick-ms', '--log-level', '--log-format', '--replicas'].includes(name)) out.rest.push(name, value);
    else throw new ConfigError('UnknownFlag', `unknown flag ${name} for dev`);
  }
  return out;
}

// ------------------------------------------------------------------ commands on stdin

/** A line typed on dev's stdin, parsed. */
export type DevCommand =
  | { readonly kind: 'restart'; readonly node: number }
  | { readonly kind: 'add' }
  | { readonly kind: 'status' }
  | { readonly kind: 'help' }
  | { readonly kind: 'empty' }
  | { readonly kind: 'invalid'; readonly message: string };

export const DEV_COMMANDS =
  '"restart <n>" or "r <n>" starts exited node n again with its data; "add" or "a" starts one more node, which joins the cluster; "status" or "s" lists the nodes; "help" or "h" prints this';

/** Parses one line for a cluster of `nodes` nodes; never throws (bad input is `invalid`, with the reason). */
export function parseDevCommand(line: string, nodes: number): DevCommand {
  const [verb, ...args] = line
    .trim()
    .split(/\s+/)
    .filter((w) => w.length > 0);
  if (verb === undefined) return { kind: 'empty' };
  const noArgs = (c: DevCommand): DevCommand => (args.length === 0 ? c : { kind: 'invalid', message: `"${verb}" takes no arguments` });
  switch (verb.toLowerCase()) {
    case 'restart':
    case 'r': {
      const [n, ...more] = args;
      if (n === undefined || more.length > 0) return { kind: 'invalid', message: `"${verb}" takes one node number, 1-${nodes}: restart <n>` };
      const node = /^\d{1,3}$/.test(n) ? Number(n) : NaN;
      if (!(node >= 1 && node <= nodes)) return { kind: 'invalid', message: `no node ${JSON.stringify(n)}: the nodes are 1-${nodes}` };
      return { kind: 'restart', node };
    }
    case 'add':
    case 'a':
      return noArgs({ kind: 'add' });
    case 'status':
    case 's':
      return noArgs({ kind: 'status' });
    case 'help':
    case 'h':
    case '?':
      return noArgs({ kind: 'help' });
    default:
      return { kind: 'invalid', message: `unknown command ${JSON.stringify(verb)}; ${DEV_COMMANDS}` };
  }
}

/**
 * Why `add` cannot start node `index` (1-based) while `running` nodes have a process, or undefined
 * when it can: a new node needs a running member to admit it, and a place in the port scheme.
 */
export function addRefusal(index: number, running: number): string | undefined {
  if (index > DEV_NODES_MAX)
    return `no room for node ${index}: dev runs at most ${DEV_NODES_MAX} nodes (ports base-port+0..${DEV_NODES_MAX - 1} and +100..${100 + DEV_NODES_MAX - 1})`;
  if (running === 0) return `no node is running to admit node ${index}; "restart <n>" one first`;
  return undefined;
}

// ------------------------------------------------------------------ the printed command line

/** Quotes `arg` for a POSIX shell (sh, bash, zsh) only when it needs it. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** The environment prefix of iroh-raft's settings: without it a pasted command would miss the
 * `IROH_RAFT_*` variables that the nodes inherited from dev (a one-shot `IROH_RAFT_X=1 iroh-raft dev`). */
function settingsPrefix(env: NodeJS.ProcessEnv): string {
  return Object.entries(env)
    .filter((e): e is [string, string] => e[0].startsWith('IROH_RAFT_') && e[1] !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${shellQuote(v)} `)
    .join('');
}

// ------------------------------------------------------------------ the cluster

/** Part of the line `iroh-raft start` prints once its HTTP API listens (cli.ts): the node serves. */
const LISTENING = 'listening: HTTP';

/** One node of the dev cluster: how to run it, and the process running it now. */
interface DevNode {
  /** 1-based, as printed. */
  readonly index: number;
  readonly url: string;
  readonly data: string;
  /** This node's join ticket (its endpoint id and Iroh address): `add` gives it to a new node. */
  readonly ticket: string;
  /** `node` arguments that start this node with its data directory, ports, peers (or the ticket it joins by) and flags. */
  readonly args: readonly string[];
  /** The process running this node; undefined once it has exited, until a restart. */
  proc: ChildProcess | undefined;
  /** How its last process ended ("was killed by SIGKILL"); undefined while none has. */
  lastExit: string | undefined;
  /** Whether any process of this node has printed its listening line; only goes false -> true. */
  served: boolean;
}

/** Copies `src` to `dst` line by line with `prefix` before each, so nodes' lines do not interleave mid-line. */
function forwardLines(src: Readable, dst: NodeJS.WritableStream, prefix: string, onLine?: (line: string) => void): void {
  let buf = '';
  src.setEncoding('utf8'); // a multi-byte character split over two chunks stays whole
  src.on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      onLine?.(line);
      dst.write(`${prefix}${line}\n`);
    }
  });
  src.on('end', () => {
    if (buf.length > 0) dst.write(`${prefix}${buf}\n`);
  });
}

function say(message: string): void {
  console.log(`[dev] ${message}`);
}

function complain(message: string): void {
  console.error(`[dev] ${message}`);
}

/**
 * The node processes of one dev run and what happens to them: launches, exit notices, commands
 * from stdin, and the stop on SIGINT or SIGTERM. Decides dev's exit code once (`done`).
 */
class DevCluster {
  /** Set by SIGINT or SIGTERM; from then on nodes are only stopped, never restarted. */
  private stopping = false;
  /** Whether stdin may still bring commands; false once it has ended or failed. */
  private stdinOpen = true;
  /** Exit code once stopped: 1 if a node did not stop cleanly. */
  private stopCode = 0;
  /** Set once dev's exit code is decided; nothing is reported after it. */
  private finished = false;
  /**
   * `add`s accepted but not yet in `nodes` (their key and ticket are being made). Counted against
   * DEV_NODES_MAX when an `add` is typed: `nodes.length + adding <= DEV_NODES_MAX`.
   */
  private adding = 0;
  /** The `add`s in progress, one after another, so nodes are appended in index order. */
  private adds: Promise<void> = Promise.resolve();
  /** Called once the process of an added node has printed its listening line or has ended; then removed. */
  private readonly settled = new Map<DevNode, () => void>();

  constructor(
    /** Founders first, then added nodes in the order added; node i is `nodes[i - 1]`. Only grows. */
    private readonly nodes: DevNode[],
    /** The nodes' environment: dev's own, which the printed command lines reproduce. */
    private readonly env: NodeJS.ProcessEnv,
    /**
     * Makes node `index` (key, ticket, arguments), to join the cluster by `joinTicket`; starts
     * nothing. `member`: its data directory already belongs to a cluster (an earlier dev run on the
     * same `--data`), so the node will ignore `--join` and start with its data.
     */
    private readonly prepare: (index: number, joinTicket: string) => Promise<{ node: DevNode; member: boolean }>,
    private readonly done: (code: number) => void,
  ) {}

  private finish(code: number): void {
    if (this.finished) return;
    this.finished = true;
    this.done(code);
  }

  /** Starts a process for node `n`, which has none. */
  launch(n: DevNode): ChildProcess {
    assert(n.proc === undefined);
    assert(!this.stopping);
    const proc = spawn(process.execPath, n.args, { stdio: ['ignore', 'pipe', 'pipe'], env: this.env });
    n.proc = proc;
    const prefix = `[node ${n.index}] `;
    forwardLines(proc.stdout, process.stdout, prefix, (line) => {
      if (!line.includes(LISTENING)) return;
      n.served = true;
      this.settled.get(n)?.();
    });
    forwardLines(proc.stderr, process.stderr, prefix);
    // 'close' rather than 'exit': it comes after the node's last output line, so the notice follows it.
    proc.once('close', (code, signal) => this.exited(n, proc, signal !== null ? `was killed by ${signal}` : `exited with code ${code}`, code === 0));
    proc.once('error', (e) => {
      if (proc.pid === undefined) this.exited(n, proc, `could not start (${e.message})`, false);
    });
    return proc;
  }

  /** The command line that runs node `n` as dev does, from any directory and shell. */
  commandLine(n: DevNode): string {
    return settingsPrefix(this.env) + [process.execPath, ...n.args].map(shellQuote).join(' ');
  }

  private exited(n: DevNode, proc: ChildProcess, how: string, clean: boolean): void {
    if (n.proc !== proc) return; // already reported (a failed spawn reports 'error', then maybe 'close')
    this.settled.get(n)?.();
    n.proc = undefined;
    n.lastExit = how;
    if (this.finished) return;
    if (this.stopping) {
      if (!clean) this.stopCode = 1;
      this.finishIfStopped();
      return;
    }
    const running = this.nodes.filter((m) => m.proc !== undefined);
    const left = running.length > 0 ? ` (${running.map((m) => m.index).join(', ')})` : '';
    say(`node ${n.index} (pid ${proc.pid ?? '-'}) ${how}; ${running.length} of ${this.nodes.length} nodes running${left}`);
    const typed = this.stdinOpen ? `type "restart ${n.index}" (or "r ${n.index}") and Enter here, or ` : '';
    say(`bring node ${n.index} back with its data: ${typed}run in a shell:`);
    console.log(`  ${this.commandLine(n)}`);
    if (running.length === 0) this.allExited();
  }

  private allExited(): void {
    if (!this.nodes.some((m) => m.served)) {
      say('every node exited before it served (see the errors above); stopping');
      this.finish(1);
    } else if (!this.stdinOpen) {
      say('every node has exited and stdin has ended, so no restart command can come; stopping');
      this.finish(1);
    } else {
      say('every node has exited; "restart <n>" starts one again, Ctrl-C quits');
    }
  }

  stdinEnded(): void {
    if (!this.stdinOpen) return;
    this.stdinOpen = false;
    if (!this.finished && !this.stopping && this.nodes.every((m) => m.proc === undefined)) this.allExited();
  }

  command(line: string): void {
    if (this.finished) return;
    const c = parseDevCommand(line, this.nodes.length);
    switch (c.kind) {
      case 'empty':
        return;
      case 'invalid':
        complain(c.message);
        return;
      case 'help':
        say(DEV_COMMANDS);
        return;
      case 'status':
        for (const n of this.nodes) {
          const state = n.proc ? `running, pid ${n.proc.pid ?? '-'}` : `down (${n.lastExit === undefined ? 'not started' : `it ${n.lastExit}`})`;
          say(`node ${n.index}: ${state}; ${n.url}`);
        }
        return;
      case 'add':
        this.add();
        return;
      case 'restart': {
        const n = this.nodes[c.node - 1]!;
        if (this.stopping) complain(`stopping; node ${n.index} is not restarted`);
        else if (n.proc) complain(`node ${n.index} is running (pid ${n.proc.pid ?? '-'}); "restart" starts a node that has exited`);
        else {
          const proc = this.launch(n);
          say(`node ${n.index} starting again with its data: pid ${proc.pid ?? '-'}`);
        }
        return;
      }
    }
  }

  /** Starts one more node, which joins the cluster by the ticket of a running node (the first running one). */
  private add(): void {
    if (this.stopping) {
      complain('stopping; no node is added');
      return;
    }
    const index = this.nodes.length + this.adding + 1;
    const refused = addRefusal(index, this.nodes.filter((m) => m.proc !== undefined).length);
    if (refused !== undefined) {
      complain(refused);
      return;
    }
    this.adding++;
    this.adds = this.adds.then(() => this.addNext());
  }

  private async addNext(): Promise<void> {
    try {
      await this.addOne();
    } finally {
      this.adding--;
      assert(this.adding >= 0);
    }
  }

  private async addOne(): Promise<void> {
    if (this.stopping || this.finished) return;
    const index = this.nodes.length + 1;
    // Chosen now rather than when typed: the node picked then may have exited since.
    const via = this.nodes.find((m) => m.proc !== undefined);
    if (via === undefined) {
      complain(addRefusal(index, 0)!);
      return;
    }
    let n: DevNode;
    let member: boolean;
    try {
      ({ node: n, member } = await this.prepare(index, via.ticket));
    } catch (e) {
      complain(`node ${index} could not be prepared: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    if (this.stopping || this.finished) return;
    assert(n.index === index);
    assert(this.nodes.length === index - 1);
    this.nodes.push(n);
    assert(this.nodes.length <= DEV_NODES_MAX);
    // The next add waits until this node listens (it was admitted) or has exited: members get raft
    // ids in the order they are admitted, so one join at a time gives added node i the raft id i
    // (the founders hold 1..nodes), and the printed lines tell one join after the other.
    const admitted = new Promise<void>((r) => this.settled.set(n, r));
    const proc = this.launch(n);
    say(
      member
        ? `node ${index} starts with its data, which already belongs to a cluster (the --join is ignored):`
        : `node ${index} joins the cluster by the ticket of node ${via.index} (--join):`,
    );
    console.log(`  node ${index}: ${n.url}  data ${n.data}  pid ${proc.pid ?? '-'}`);
    await admitted;
    this.settled.delete(n);
  }

  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    for (const n of this.nodes) n.proc?.kill('SIGTERM');
    this.finishIfStopped();
  }

  private finishIfStopped(): void {
    assert(this.stopping);
    if (this.nodes.every((m) => m.proc === undefined)) this.finish(this.stopCode);
  }
}

/**
 * `--log-format pretty` for the nodes, unless the format was chosen by a flag of dev or by
 * IROH_RAFT_LOG_FORMAT (which the nodes inherit and the printed command lines repeat).
 */
function nodeLogFlags(f: DevFlags, env: NodeJS.ProcessEnv = process.env): string[] {
  const chosen = f.rest.includes('--log-format') || (env.IROH_RAFT_LOG_FORMAT ?? '') !== '';
  return chosen ? [] : ['--log-format', 'pretty'];
}

/** Where node `index` (1-based) keeps its data and listens. */
interface NodePlace {
  readonly index: number;
  readonly data: string;
  /** HTTP `host:port`. */
  readonly http: string;
  readonly listen: { readonly host: string; readonly port: number };
}

function placeOf(f: DevFlags, index: number): NodePlace {
  assert(index >= 1 && index <= DEV_NODES_MAX);
  return {
    index,
    data: resolve(f.data, `node-${index}`),
    http: `127.0.0.1:${f.basePort + index - 1}`,
    listen: { host: '127.0.0.1', port: f.basePort + 100 + index - 1 },
  };
}

/** The `node` arguments that run `start` for `p`; `cluster`: `--peers ...` for a founder, `--join ...` for an added node, none alone. */
function startArgs(f: DevFlags, cli: string, p: NodePlace, cluster: readonly string[]): string[] {
  return [
    cli,
    'start',
    '--data',
    p.data,
    '--http',
    p.http,
    '--listen',
    `${p.listen.host}:${p.listen.port}`,
    '--shards',
    String(f.shards),
    '--workers',
    String(f.workers),
    ...cluster,
    ...f.rest,
    ...nodeLogFlags(f),
  ];
}

function devNode(p: NodePlace, ticket: string, args: string[]): DevNode {
  return { index: p.index, url: `http://${p.http}`, data: p.data, ticket, args, proc: undefined, lastExit: undefined, served: false };
}

/**
 * Runs the cluster until SIGINT or SIGTERM (exit code 0 when every running node stopped cleanly)
 * or until no node is left to restart (1). `cli` is the path of the `iroh-raft` script the nodes run.
 */
export async function runDev(f: DevFlags, cli: string): Promise<number> {
  const places = Array.from({ length: f.nodes }, (_, i) => placeOf(f, i + 1));
  const tickets: string[] = [];
  for (const p of places) tickets.push(await ticketOf(DataDir.open(p.data), p.listen));
  const nodes: DevNode[] = places.map((p, i) =>
    devNode(p, tickets[i]!, startArgs(f, cli, p, f.nodes > 1 ? ['--peers', tickets.filter((_, j) => j !== i).join(',')] : [])),
  );
  // A node added later joins by ticket instead of --peers: the founders' membership is fixed at
  // their first start, and a join is what `add` is there to show.
  const prepare = async (index: number, joinTicket: string): Promise<{ node: DevNode; member: boolean }> => {
    const p = placeOf(f, index);
    const dir = DataDir.open(p.data);
    const member = dir.readCluster() !== undefined;
    return { node: devNode(p, await ticketOf(dir, p.listen), startArgs(f, cli, p, ['--join', joinTicket])), member };
  };
  // A relative config path would name another file once the printed command runs elsewhere.
  const env = { ...process.env };
  // The nodes write to pipes, so they would pick JSON and no colors: dev is for people, so its
  // nodes log pretty lines (nodeLogFlags), colored when dev itself writes to a terminal.
  if (process.stdout.isTTY && env.NO_COLOR === undefined) env.FORCE_COLOR ??= '1';
  if (env.IROH_RAFT_CONFIG) env.IROH_RAFT_CONFIG = resolve(env.IROH_RAFT_CONFIG);

  return new Promise<number>((done) => {
    const cluster = new DevCluster(nodes, env, prepare, done);
    const procs = nodes.map((n) => cluster.launch(n));
    console.log(`iroh-raft dev: ${f.nodes} nodes, ${f.shards} shards`);
    nodes.forEach((n, i) => console.log(`  node ${n.index}: ${n.url}  data ${n.data}  pid ${procs[i]!.pid ?? '-'}`));
    console.log('Ctrl-C stops them all. A node that exits leaves the others serving; dev reads commands on stdin:');
    console.log(`  ${DEV_COMMANDS}`);
    if (f.nodes < DEV_NODES_MAX) {
      const next = placeOf(f, f.nodes + 1);
      console.log(
        `Watch a join: "add" starts node ${f.nodes + 1} on http://${next.http} with --join, and GET /v1/status shows the replicas move onto it (up to ${DEV_NODES_MAX} nodes).`,
      );
    }
    // terminal: false keeps a terminal in cooked mode, so Ctrl-C stays a SIGINT to dev and every node.
    const lines = createInterface({ input: process.stdin, terminal: false });
    lines.on('line', (l) => cluster.command(l));
    lines.on('close', () => cluster.stdinEnded());
    // stdin closed or unreadable (stdio 'ignore', a failed pipe) is not a reason to stop the nodes.
    process.stdin.on('error', () => cluster.stdinEnded());
    // on, not once: a second Ctrl-C must not kill dev (the default action) while its nodes stop.
    process.on('SIGINT', () => cluster.stop());
    process.on('SIGTERM', () => cluster.stop());
  });
}
