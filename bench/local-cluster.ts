/**
 * Server processes for bench/cluster.ts on this machine: a cluster of real `node dist/main/cli.js
 * start` processes (each with its own data directory, HTTP port and Iroh port on 127.0.0.1, as in
 * test/integration/cluster.ts), or the ceiling server (bench/ceiling.ts). Each process's output
 * goes to a log file in the run's temporary directory, and its last lines are kept for reports.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { freePort } from '../test/integration/cluster.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const ROOT = new URL('..', import.meta.url).pathname;
export const CLI = join(ROOT, 'dist/main/cli.js');
const CEILING = join(ROOT, 'bench/ceiling.ts');

/** Every server process started and not yet exited: killed if the bench itself exits first. */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

/** Output kept per process for reports, characters (the full log is in its file). */
const TAIL_CHARS_MAX = 16 * 1024;

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Seconds since the process was spawned. */
  readonly afterS: number;
}

export class ServerProcess {
  url = '';
  /** Seconds from spawn to its "listening: HTTP" line. */
  listeningS = 0;
  /** Set when the process has exited, whether we stopped it or not. */
  exit: Exit | undefined;
  /** True once stop() asked it to go: an exit after that is expected. */
  stopping = false;
  private tailText = '';
  private readonly log: WriteStream;
  private readonly t0 = performance.now();
  readonly exited: Promise<Exit>;

  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
    readonly logPath: string,
  ) {
    this.log = createWriteStream(logPath);
    live.add(proc);
    const take = (d: Buffer): void => {
      this.log.write(d);
      this.tailText = (this.tailText + d.toString()).slice(-TAIL_CHARS_MAX);
    };
    proc.stdout?.on('data', take);
    proc.stderr?.on('data', take);
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        live.delete(proc);
        this.exit = { code, signal, afterS: (performance.now() - this.t0) / 1000 };
        this.log.end();
        resolve(this.exit);
      });
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  tail(lines = 20): string {
    return this.tailText
      .split('\n')
      .slice(-lines - 1)
      .join('\n');
  }

  /** Resolves with the URL printed in the "listening: HTTP <url>" line. */
  async listening(): Promise<void> {
    const stdout = this.proc.stdout!;
    await new Promise<void>((resolve, reject) => {
      const lines = createInterface({ input: stdout });
      lines.on('line', (line) => {
        const m = /listening: HTTP (\S+)/.exec(line);
        if (m && this.url === '') {
          this.url = m[1]!.replace(/\/$/, '');
          this.listeningS = (performance.now() - this.t0) / 1000;
          resolve();
        }
      });
      void this.exited.then((e) => reject(new Error(`${this.name} exited (${e.code ?? e.signal}) before listening:\n${this.tail()}`)));
    });
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves with how it exited. */
  async stop(graceMs: number): Promise<Exit & { killed: boolean }> {
    // One that already fell over stays counted as such.
    if (this.exit) return { ...this.exit, killed: false };
    this.stopping = true;
    this.proc.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = await Promise.race([this.exited.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs)))]);
    clearTimeout(timer);
    if (killed) this.proc.kill('SIGKILL');
    return { ...(await this.exited), killed };
  }
}

/** A set of server processes started together, in one temporary directory. */
export class LocalServers {
  readonly servers: ServerProcess[] = [];

  private constructor(readonly root: string) {}

  /** Processes started elsewhere (e.g. bench/etcd-local.ts), owned from now on: destroy() removes `root`. */
  static of(root: string, servers: readonly ServerProcess[]): LocalServers {
    const ls = new LocalServers(root);
    ls.servers.push(...servers);
    return ls;
  }

  get urls(): string[] {
    return this.servers.map((s) => s.url);
  }

  /**
   * A fresh cluster of `nodes` node processes: creates each node's key and ticket, then starts
   * them all with each other's tickets. Resolves once every process listens (not yet healthy).
   */
  static async cluster(opts: {
    nodes: number;
    shards: number;
    workers: number;
    extraArgs?: readonly string[];
    nodeFlags?: (dataDir: string) => readonly string[];
  }): Promise<LocalServers> {
    const ls = new LocalServers(mkdtempSync(join(tmpdir(), 'iroh-raft-bench-')));
    try {
      const specs: { data: string; http: number; listen: number; ticket: string }[] = [];
      for (let i = 0; i < opts.nodes; i++) {
        const data = join(ls.root, `n${i + 1}`);
        mkdirSync(data, { recursive: true });
        const http = await freePort();
        const listen = await freePort();
        const t = spawnSync(process.execPath, [CLI, 'ticket', '--data', data, '--listen', `127.0.0.1:${listen}`], { encoding: 'utf8' });
        if (t.status !== 0) throw new Error(`iroh-raft ticket failed: ${t.stderr}`);
        specs.push({ data, http, listen, ticket: t.stdout.trim() });
      }
      specs.forEach((s, i) => {
        const peers = specs.filter((o) => o !== s).map((o) => o.ticket);
        const args = [
          ...(opts.nodeFlags?.(s.data) ?? []),
          CLI,
          'start',
          '--data',
          s.data,
          '--http',
          `127.0.0.1:${s.http}`,
          '--listen',
          `127.0.0.1:${s.listen}`,
          '--shards',
          String(opts.shards),
          '--workers',
          String(opts.workers),
          '--log-level',
          'warn',
          ...(peers.length > 0 ? ['--peers', peers.join(',')] : []),
          ...(opts.extraArgs ?? []),
        ];
        const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        ls.servers.push(new ServerProcess(`node ${i + 1}`, proc, join(ls.root, `n${i + 1}.log`)));
      });
      await Promise.all(ls.servers.map((s) => s.listening()));
      return ls;
    } catch (e) {
      await ls.destroy();
      throw e;
    }
  }

  /** The ceiling server (bench/ceiling.ts) in a process of its own. */
  static async ceiling(): Promise<LocalServers> {
    const ls = new LocalServers(mkdtempSync(join(tmpdir(), 'iroh-raft-bench-ceiling-')));
    try {
      // `node --import tsx` rather than the tsx command: the pid is then the server's own.
      const proc = spawn(process.execPath, ['--import', 'tsx', CEILING, '--http', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
      ls.servers.push(new ServerProcess('ceiling', proc, join(ls.root, 'ceiling.log')));
      await ls.servers[0]!.listening();
      return ls;
    } catch (e) {
      await ls.destroy();
      throw e;
    }
  }

  /** Processes that exited without being asked to. */
  unexpectedExits(): { name: string; exit: Exit; tail: string }[] {
    return this.servers.filter((s) => s.exit && !s.stopping).map((s) => ({ name: s.name, exit: s.exit!, tail: s.tail() }));
  }

  /** Graceful stop of every process (SIGTERM; SIGKILL after `graceMs`). */
  async stop(graceMs = 15_000): Promise<{ name: string; code: number | null; signal: string | null; killed: boolean; stopS: number }[]> {
    return Promise.all(
      this.servers.map(async (s) => {
        const t0 = performance.now();
        const e = await s.stop(graceMs);
        return { name: s.name, code: e.code, signal: e.signal, killed: e.killed, stopS: (performance.now() - t0) / 1000 };
      }),
    );
  }

  /** SIGKILL whatever still runs and remove the directory (unless `keep`: logs and data for a post-mortem). */
  async destroy(keep = false): Promise<void> {
    await Promise.all(
      this.servers.map(async (s) => {
        s.stopping = true;
        if (!s.exit) {
          s.proc.kill('SIGKILL');
          await s.exited;
        }
      }),
    );
    if (!keep) rmSync(this.root, { recursive: true, force: true });
  }
}
