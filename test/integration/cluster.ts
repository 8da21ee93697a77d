/**
 * Real nodes for integration tests: each is a separate `node dist/main/cli.js start` process
 * (the compiled build, as users run it) with its own data directory, HTTP port and Iroh port on
 * 127.0.0.1. `npm test` builds dist first.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { hashOfPlacement } from '../../src/wire/shard-hash.js';
import type { ShardHash } from '../../src/wire/shard-hash.js';

export const CLI = new URL('../../dist/main/cli.js', import.meta.url).pathname;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Whether TCP `port` on 127.0.0.1 can be bound right now. */
async function tcpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Whether UDP `port` on 127.0.0.1 can be bound right now. */
async function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => resolve(false));
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * A port free now for `kind` (TCP for HTTP, UDP for Iroh), drawn below Linux's ephemeral range
 * (32768 and up) as {@link devBasePort} does: a port the OS handed out (freePort) can be taken
 * again by another process's connection or socket before the node binds it, and a TCP check says
 * nothing of the UDP port.
 */
export async function freeLowPort(kind: 'tcp' | 'udp'): Promise<number> {
  for (;;) {
    const port = 10_000 + Math.floor(Math.random() * 22_000);
    if (kind === 'tcp' ? await tcpFree(port) : await udpFree(port)) return port;
  }
}

/**
 * A `--base-port` for `iroh-raft dev` whose ports are free now: HTTP (TCP) on `base..base+8` and
 * Iroh (UDP) on `base+100..base+108`. It is drawn below Linux's ephemeral range (32768 and up),
 * where the ports other tests and their connections take from the OS never land.
 */
export async function devBasePort(): Promise<number> {
  for (;;) {
    const base = 10_000 + Math.floor(Math.random() * 22_000);
    let free = true;
    for (let i = 0; i < 9 && free; i++) free = (await tcpFree(base + i)) && (await udpFree(base + 100 + i));
    if (free) return base;
  }
}

export interface NodeProc {
  readonly index: number;
  readonly data: string;
  httpPort: number;
  listenPort: number;
  url: string;
  ticket: string;
  /** A member's ticket this node joined by (`--join`); founders have none and start with `--peers`. */
  join?: string;
  proc: ChildProcess | undefined;
  /** Everything the process printed (stdout and stderr), for failure messages. */
  output: string;
}

export interface ClusterOptions {
  readonly nodes: number;
  readonly shards: number;
  readonly workers?: number;
  readonly tickMs?: number;
  readonly extra?: readonly string[];
  /** The nodes' `--log-level` (default warn). */
  readonly logLevel?: string;
  /** Flags for node itself, before the script (e.g. `--require` of a test hook). */
  readonly nodeArgs?: readonly string[];
}

export class TestCluster {
  readonly root = mkdtempSync(join(tmpdir(), 'iroh-raft-it-'));
  readonly nodes: NodeProc[] = [];

  constructor(private readonly opts: ClusterOptions) {}

  /** Creates keys and tickets (`iroh-raft ticket`), then starts every node. */
  async start(): Promise<void> {
    for (let i = 0; i < this.opts.nodes; i++) await this.prepare();
    await Promise.all(this.nodes.map((n) => this.startNode(n.index)));
  }

  /** A new node's directory, ports, key and ticket (not started); `join`: the member's ticket it joins by. */
  private async prepare(joinBy?: string): Promise<NodeProc> {
    const index = this.nodes.length + 1;
    const data = join(this.root, `n${index}`);
    mkdirSync(data, { recursive: true });
    const n: NodeProc = { index, data, httpPort: 0, listenPort: 0, url: '', ticket: '', proc: undefined, output: '' };
    await this.pickPorts(n);
    if (joinBy !== undefined) n.join = joinBy;
    this.nodes.push(n);
    return n;
  }

  /** Free ports for node `n`, and its ticket for them. */
  private async pickPorts(n: NodeProc): Promise<void> {
    n.httpPort = await freeLowPort('tcp');
    n.listenPort = await freeLowPort('udp');
    n.url = `http://127.0.0.1:${n.httpPort}`;
    const t = spawnSync(process.execPath, [CLI, 'ticket', '--data', n.data, '--listen', `127.0.0.1:${n.listenPort}`], { encoding: 'utf8' });
    if (t.status !== 0) throw new Error(`ticket failed: ${t.stderr}`);
    n.ticket = t.stdout.trim();
  }

  /**
   * A new node started with `--join` and the ticket of member `via` (or `by`, e.g. the join string
   * of an invite), as a user adds a machine; resolves with its index once its HTTP API listens (it
   * was admitted).
   */
  async join(via: number, by?: string): Promise<number> {
    const n = await this.prepare(by ?? this.node(via).ticket);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.startNode(n.index);
        return n.index;
      } catch (e) {
        // A port picked free was taken before the node bound it (another process's outgoing
        // connection, say): a new node can take other ports, since nobody knows its ticket yet.
        if (attempt >= 3 || !/BindFailed|EADDRINUSE/.test(String(e))) throw e;
        await this.pickPorts(n);
      }
    }
  }

  args(n: NodeProc): string[] {
    const founders = this.nodes.filter((m) => m.join === undefined);
    const peers = n.join === undefined ? founders.filter((m) => m !== n).map((m) => m.ticket) : [];
    return [
      CLI,
      'start',
      '--data',
      n.data,
      '--http',
      `127.0.0.1:${n.httpPort}`,
      '--listen',
      `127.0.0.1:${n.listenPort}`,
      '--shards',
      String(this.opts.shards),
      '--workers',
      String(this.opts.workers ?? 1),
      '--tick-ms',
      String(this.opts.tickMs ?? 20),
      '--log-level',
      this.opts.logLevel ?? 'warn',
      ...(peers.length > 0 ? ['--peers', peers.join(',')] : []),
      ...(n.join === undefined ? [] : ['--join', n.join]),
      ...(this.opts.extra ?? []),
    ];
  }

  /** Starts node `index` and resolves once its HTTP API listens. */
  async startNode(index: number): Promise<void> {
    const n = this.node(index);
    n.output = '';
    const proc = spawn(process.execPath, [...(this.opts.nodeArgs ?? []), ...this.args(n)], { stdio: ['ignore', 'pipe', 'pipe'] });
    n.proc = proc;
    proc.stderr.on('data', (d: Buffer) => (n.output += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const lines = createInterface({ input: proc.stdout });
      lines.on('line', (line) => {
        n.output += `${line}\n`;
        if (line.includes('listening: HTTP')) resolve();
      });
      proc.once('exit', (code, signal) => reject(new Error(`node ${index} exited (${code ?? signal}) before listening:\n${n.output}`)));
    });
  }

  node(index: number): NodeProc {
    return this.nodes[index - 1]!;
  }

  /** SIGKILL: no chance to flush or say goodbye. */
  async kill(index: number): Promise<void> {
    const n = this.node(index);
    const p = n.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
    n.proc = undefined;
  }

  /** SIGTERM and wait; resolves with the exit code. */
  async stop(index: number): Promise<number | null> {
    const n = this.node(index);
    const p = n.proc;
    if (!p || p.exitCode !== null) return p?.exitCode ?? null;
    const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    p.kill('SIGTERM');
    const code = await exited;
    n.proc = undefined;
    return code;
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((n) => this.kill(n.index)));
    rmSync(this.root, { recursive: true, force: true });
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Retries `f` until it returns true or `ms` pass. */
export async function eventually(f: () => Promise<boolean>, ms = 30_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if (await f()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${ms} ms`);
    await sleep(100);
  }
}

/**
 * The cluster's key -> shard function as the node at `url` reports it once it knows it (auth off:
 * `GET /v1/placement` gives the placement key), for tests that choose keys by shard.
 */
export async function clusterHash(url: string): Promise<ShardHash> {
  let p: { hash?: string; placementKey?: string } = {};
  await eventually(
    async () => {
      p = (await (await fetch(`${url}/v1/placement`)).json()) as typeof p;
      return p.hash !== 'pending';
    },
    60_000,
    "the cluster's placement",
  );
  const fn = hashOfPlacement(p.hash ?? '', p.placementKey);
  if (fn !== undefined) return fn;
  throw new Error(`a placement this test does not know: ${JSON.stringify(p)}`);
}

/** `GET /v1/status` of the node at `url`, its meta group replica (`metaGroup`) counted among its `shards`. */
export async function statusWithMeta<S extends { shards: unknown[] }>(url: string, token?: string): Promise<S> {
  const headers = token === undefined ? {} : { authorization: `Bearer ${token}` };
  const s = (await (await fetch(`${url}/v1/status`, { headers })).json()) as S & { metaGroup: S['shards'][number] | null };
  return { ...s, shards: s.metaGroup === null ? s.shards : [...s.shards, s.metaGroup] };
}

/**
 * Every acknowledged write (`acked`: key -> value) as the node at `url` holds it in its own
 * replica (a stale read, no forwarding): undefined when all read back, else one that does not.
 * Reads 8 at a time.
 */
export async function staleReadsBack(url: string, acked: ReadonlyMap<string, string>): Promise<string | undefined> {
  const all = [...acked];
  let next = 0;
  let bad: string | undefined;
  const lane = async (): Promise<void> => {
    while (bad === undefined && next < all.length) {
      const [k, v] = all[next++]!;
      const res = await fetch(`${url}/v1/kv/${k}?consistency=stale`);
      const got = res.status === 200 ? await res.text() : `HTTP ${res.status} ${(await res.text()).slice(0, 200)}`;
      if (got !== v) bad ??= `${k} at ${url}: ${got.slice(0, 240)}`;
    }
  };
  await Promise.all(Array.from({ length: 8 }, lane));
  return bad;
}
