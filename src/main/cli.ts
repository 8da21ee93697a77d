#!/usr/bin/env node
/**
 * The `iroh-raft` command: `start` runs a node, `dev` a local cluster of separate processes,
 * `ticket` prints this node's join ticket. Errors are one JSON line on stderr with a stable code,
 * and exit code 2 for bad usage, 1 for a failure at run time.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { ConfigError, SETTINGS, loadConfig } from './config.js';
import type { NodeConfig } from './config.js';
import { NodeError, startNode } from './node.js';
import { encodeTicket } from '../io/ticket.js';
import { Transport } from '../io/transport.js';

const USAGE = `usage: iroh-raft <command> [flags]

commands:
  start      run a node (with no flags: a single-node cluster in ./data, HTTP on 127.0.0.1:7070)
  dev        run a local cluster of separate processes: --nodes 3 [--shards N] [--workers N]
             [--base-port 7070] [--data ./data-dev]; Ctrl-C stops them all
  ticket     print this node's ticket (give it to the other members' --peers): [--data] [--listen]
  version    print the version
  help       print this help

flags of start (each also settable by environment variable or in a JSON --config file):
${SETTINGS.map((s) => `  ${`${s.flag} <v>`.padEnd(26)} ${s.env.padEnd(30)} ${s.help}`).join('\n')}
  --config <file>            IROH_RAFT_CONFIG               JSON object with the settings above`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function fail(code: string, message: string, exit: number): number {
  console.error(JSON.stringify({ error: { code, message } }));
  return exit;
}

function usageError(e: unknown): number {
  if (e instanceof ConfigError || e instanceof NodeError) return fail(e.code, e.message, 2);
  const err = e as { code?: unknown; message?: unknown };
  return fail(typeof err.code === 'string' ? err.code : 'StartFailed', String(err.message ?? e), 1);
}

async function start(argv: readonly string[]): Promise<number> {
  let cfg: NodeConfig;
  try {
    cfg = loadConfig(argv);
  } catch (e) {
    return usageError(e);
  }
  const log = pino({ level: cfg.logLevel, base: { pid: process.pid } });
  let node: Awaited<ReturnType<typeof startNode>>;
  try {
    node = await startNode(cfg, { logger: log });
  } catch (e) {
    return usageError(e);
  }
  console.log(`iroh-raft node ${node.nodeId} listening: HTTP ${node.httpUrl}`);
  console.log(`ticket: ${node.ticket}`);
  return new Promise<number>((done) => {
    const stop = (signal: string): void => {
      log.info({ signal }, 'shutting down');
      const timer = setTimeout(() => {
        log.error({ timeoutMs: cfg.shutdownTimeoutMs }, 'graceful shutdown took too long; exiting');
        done(1);
      }, cfg.shutdownTimeoutMs);
      timer.unref();
      node.close().then(
        () => {
          clearTimeout(timer);
          done(0);
        },
        (e: unknown) => {
          log.error({ err: e }, 'shutdown failed');
          done(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

/** The node id (from its key, created if missing) with the address it will listen on. */
async function ticketOf(data: string, listen: { host: string; port: number }): Promise<string> {
  const t = await Transport.start({ keyPath: join(data, 'node.key'), bindAddr: '127.0.0.1:0', isMember: () => false, onRecords: () => undefined });
  const id = t.id;
  await t.destroy();
  return encodeTicket({ id, addrs: [`${listen.host}:${listen.port}`] });
}

async function ticket(argv: readonly string[]): Promise<number> {
  let cfg: NodeConfig;
  try {
    cfg = loadConfig(argv);
  } catch (e) {
    return usageError(e);
  }
  const { mkdirSync } = await import('node:fs');
  mkdirSync(cfg.data, { recursive: true });
  console.log(await ticketOf(cfg.data, cfg.listen));
  return 0;
}

function parseDevFlags(argv: readonly string[]): { nodes: number; shards: number; workers: number; basePort: number; data: string; rest: string[] } {
  const out = { nodes: 3, shards: 16, workers: 1, basePort: 7070, data: './data-dev', rest: [] as string[] };
  for (let i = 0; i < argv.length; i += 2) {
    const [name, value] = [argv[i]!, argv[i + 1]];
    if (value === undefined) throw new ConfigError('InvalidFlag', `${name} needs a value`);
    const n = Number(value);
    const int = (min: number, max: number): number => {
      if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError('InvalidFlag', `${name}: expected an integer in [${min}, ${max}], got ${JSON.stringify(value)}`);
      return n;
    };
    if (name === '--nodes') out.nodes = int(1, 9);
    else if (name === '--shards') out.shards = int(1, 65536);
    else if (name === '--workers') out.workers = int(1, 64);
    else if (name === '--base-port') out.basePort = int(1, 65000);
    else if (name === '--data') out.data = value;
    else if (name === '--tick-ms' || name === '--log-level' || name === '--replicas') out.rest.push(name, value);
    else throw new ConfigError('UnknownFlag', `unknown flag ${name} for dev`);
  }
  return out;
}

async function dev(argv: readonly string[]): Promise<number> {
  let f: ReturnType<typeof parseDevFlags>;
  try {
    f = parseDevFlags(argv);
  } catch (e) {
    return usageError(e);
  }
  const cli = fileURLToPath(import.meta.url);
  const nodes = Array.from({ length: f.nodes }, (_, i) => ({
    data: resolve(f.data, `node-${i + 1}`),
    http: { host: '127.0.0.1', port: f.basePort + i },
    listen: { host: '127.0.0.1', port: f.basePort + 100 + i },
  }));
  const { mkdirSync } = await import('node:fs');
  const tickets: string[] = [];
  for (const n of nodes) {
    mkdirSync(n.data, { recursive: true });
    tickets.push(await ticketOf(n.data, n.listen));
  }
  const children: ChildProcess[] = nodes.map((n, i) => {
    const args = [
      cli,
      'start',
      '--data', n.data,
      '--http', `${n.http.host}:${n.http.port}`,
      '--listen', `${n.listen.host}:${n.listen.port}`,
      '--shards', String(f.shards),
      '--workers', String(f.workers),
      ...(f.nodes > 1 ? ['--peers', tickets.filter((_, j) => j !== i).join(',')] : []),
      ...f.rest,
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const prefix = `[node ${i + 1}] `;
    const pipe = (src: NodeJS.ReadableStream, dst: NodeJS.WriteStream): void => {
      let buf = '';
      src.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          dst.write(prefix + buf.slice(0, nl + 1));
          buf = buf.slice(nl + 1);
        }
      });
    };
    pipe(child.stdout, process.stdout);
    pipe(child.stderr, process.stderr);
    return child;
  });
  console.log(`iroh-raft dev: ${f.nodes} nodes, ${f.shards} shards`);
  nodes.forEach((n, i) => console.log(`  node ${i + 1}: http://${n.http.host}:${n.http.port}  data ${n.data}`));
  console.log('Ctrl-C stops them all.');
  const exits = children.map((c) => new Promise<number>((r) => c.once('exit', (code) => r(code ?? 1))));
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    for (const c of children) c.kill('SIGTERM');
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // If one node dies on its own, stop the others too.
  void Promise.race(exits).then(stop);
  const codes = await Promise.all(exits);
  return codes.every((c) => c === 0) ? 0 : 1;
}

export async function main(argv: readonly string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return 0;
    case 'version':
    case '--version':
      console.log(version());
      return 0;
    case 'start':
      return start(rest);
    case 'ticket':
      return ticket(rest);
    case 'dev':
      return dev(rest);
    default:
      console.error(JSON.stringify({ error: { code: 'UnknownCommand', message: `unknown command '${cmd}'` } }));
      console.error(USAGE);
      return 2;
  }
}

process.exit(await main(process.argv.slice(2)));
