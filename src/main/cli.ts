#!/usr/bin/env node
/**
 * The `iroh-raft` command: `start` runs a node, `dev` a local cluster of separate processes,
 * `ticket` prints this node's join ticket, `kv` reads and writes keys of a running cluster,
 * `tenants` manages tenants through a node's admin API (tenants-cli.ts), `roles` the roles of the
 * management ALPN (roles-cli.ts), `key` and `mgmt` speak it over Iroh (mgmt-cli.ts). Errors are one JSON line
 * on stderr with a stable code,
 * and exit code 2 for bad usage, 1 for a failure at run time.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError, SETTINGS, loadConfig } from './config.js';
import type { NodeConfig } from './config.js';
import { parseDevFlags, runDev } from './dev.js';
import type { DevFlags } from './dev.js';
import { DataDir, DataDirError } from './data-dir.js';
import { KV_USAGE, readStdin, runKv } from './kv-cli.js';
import { createLogger } from './log.js';
import { NodeError } from './node-error.js';
import type { RunningNode } from './node.js';
import { tenantsCommand } from './tenants-cli.js';
import { STATUS_USAGE, runStatus } from './status-cli.js';
import { rolesCommand } from './roles-cli.js';
import { membersCommand } from './members-cli.js';

const USAGE = `usage: iroh-raft <command> [flags]

commands:
  start      run a node (with no flags: a single-node cluster in ./data, HTTP on 127.0.0.1:7070)
  dev        run a local cluster of separate processes: --nodes 3 [--shards N] [--workers N]
             [--base-port 7070] [--data ./data-dev] [--tick-ms N] [--replicas N] [--log-level L]
             [--log-format F] (nodes log pretty lines unless told otherwise);
             a node that exits (kill it to watch a failover) leaves the others serving, and dev
             prints the command line that restarts it with its data; typed on dev's stdin:
             "restart <n>" (or "r <n>") restarts exited node n, "status" lists the nodes;
             Ctrl-C stops them all; with every node exited dev waits for "restart" (exits 1 if
             stdin has ended or no node ever served)
  ${STATUS_USAGE}
  ticket     print this node's ticket (give it to the other members' --peers): [--data] [--listen]
  kv         put, get, del or scan keys of a running cluster (iroh-raft kv help)
  tenants    create <name> [--rate <req/s>] [--bytes-max N] [--keys-max N] | list | delete <name> | rotate <name>, with
             [--via <URL>] [--token <admin token> | --token-file <data>/admin.token] (or
             IROH_RAFT_TOKEN); prints the node's JSON answer (see iroh-raft tenants --help)
  roles      grant <endpoint id> <admin|operator|reader> | revoke <endpoint id> | get <endpoint id> | list,
             with [--via <URL>] [--token ... | --token-file ...]: who may use the management ALPN
  members    [remove <raft id | endpoint id> | invite [--ttl-ms <ms>]] [--via <URL>] [--json]: list
             the members and the replica moves under way, remove a member (its replicas move away
             first), or print a one-time join string for a new node (auth on)
  key        new --out <file>: a new Iroh secret key (mode 0600); prints its endpoint id
  mgmt       <op> [<JSON args>] --ticket <node ticket> --key <file>: one management request over
             Iroh as the key's endpoint (iroh-raft mgmt --help lists the ops)
  version    print the version
  help       print this help

flags of start (each also settable by environment variable or in a JSON --config file):
${SETTINGS.map((s) => `  ${`${s.flag} <v>`.padEnd(26)} ${s.env.padEnd(30)} ${s.help}`).join('\n')}
  --config <file>            IROH_RAFT_CONFIG               JSON object with the settings above

${KV_USAGE}`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function fail(code: string, message: string, exit: number): number {
  console.error(JSON.stringify({ error: { code, message } }));
  return exit;
}

function usageError(e: unknown): number {
  if (e instanceof ConfigError || e instanceof NodeError || e instanceof DataDirError) return fail(e.code, e.message, 2);
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
  const log = createLogger({ level: cfg.logLevel, format: cfg.logFormat });
  // The engine (LMDB, Iroh, workers) loads only for the commands that run it: `kv`, `status` and
  // `tenants` start in a fraction of the time.
  const { startNode } = await import('./node.js');
  // This process is the node's own: its helper threads may stop taking the event loop's core.
  // A shard worker restarted after a crash is a new thread of the event loop's, so the policy is
  // applied again then.
  const batched = cfg.helperThreads === 'batch' ? await import('./thread-policy.js') : undefined;
  let node: RunningNode;
  try {
    node = await startNode(cfg, {
      logger: log,
      onWorkerRestart: (worker) => {
        const outcome = batched?.batchHelperThreads();
        if (outcome?.applied === false) log.warn({ worker, why: outcome.why }, 'restarted worker keeps the default scheduling');
      },
    });
  } catch (e) {
    return usageError(e);
  }
  if (batched !== undefined) {
    const outcome = batched.batchHelperThreads();
    if (outcome.applied) log.info({ threads: outcome.threads }, 'helper threads scheduled SCHED_BATCH (--helper-threads batch)');
    else log.warn({ why: outcome.why }, 'helper threads keep the default scheduling');
  }
  const stopped = new Promise<number>((done) => {
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
          done(signal === 'removed' ? 3 : 0);
        },
        (e: unknown) => {
          log.error({ err: e }, 'shutdown failed');
          done(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    // Removed from its cluster: it stops, and says why (exit 3, so a supervisor does not restart it).
    void node.removed.then((why) => {
      console.error(JSON.stringify({ error: { code: 'Removed', message: why } }));
      stop('removed');
    });
  });
  // Only now say that the node listens: a supervisor (or a test) that sends SIGTERM as soon as it
  // reads this line must find the handlers in place. Installed after the print, they were missing
  // for some signals sent at once, and the node died by SIGTERM without a graceful stop.
  if (node.adminTokenPath !== undefined) console.log(`admin token: ${node.adminTokenPath}`);
  console.log(`iroh-raft node ${node.nodeId} listening: HTTP ${node.httpUrl}`);
  console.log(`ticket: ${node.ticket}`);
  return stopped;
}

async function ticket(argv: readonly string[]): Promise<number> {
  let cfg: NodeConfig;
  try {
    cfg = loadConfig(argv);
  } catch (e) {
    return usageError(e);
  }
  const { ticketOf } = await import('./ticket.js');
  console.log(await ticketOf(DataDir.open(cfg.data), cfg.listen));
  return 0;
}

async function dev(argv: readonly string[]): Promise<number> {
  let flags: DevFlags;
  try {
    flags = parseDevFlags(argv);
  } catch (e) {
    return usageError(e);
  }
  try {
    return await runDev(flags, fileURLToPath(import.meta.url));
  } catch (e) {
    return usageError(e);
  }
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
    case 'tenants':
      return tenantsCommand(rest);
    case 'status':
      return runStatus(rest);
    case 'roles':
      return rolesCommand(rest);
    case 'members':
      return membersCommand(rest);
    case 'key':
    case 'mgmt': {
      // Loaded only here: the Iroh binding is not needed by the other client commands.
      const m = await import('./mgmt-cli.js');
      return cmd === 'key' ? m.keyCommand(rest) : m.mgmtCommand(rest);
    }
    case 'kv':
      return runKv(rest, {
        out: (b) => process.stdout.write(b),
        err: (line) => console.error(line),
        stdin: readStdin,
        env: process.env,
      });
    default:
      console.error(JSON.stringify({ error: { code: 'UnknownCommand', message: `unknown command '${cmd}'` } }));
      console.error(USAGE);
      return 2;
  }
}

process.exit(await main(process.argv.slice(2)));
