/**
 * `iroh-raft tenants`: the tenant admin API from a shell.
 *
 *   iroh-raft tenants create <name> [--rate <req/s>] [--bytes-max <N>] [--keys-max <N>] | list | delete <name> | rotate <name>
 *       [--via <URL>] [--token <admin token> | --token-file <path>]
 *
 * `--via` defaults to http://127.0.0.1:7070; the token to `IROH_RAFT_TOKEN` (a node's admin
 * token is in `<data>/admin.token`: `--token-file data/admin.token`). The server's JSON answer goes
 * to stdout (create and rotate: `{"tenant","token"}`, the only time the token is shown). Exit 0 on
 * success; 1 with the server's `{"error":{"code","message"}}` (or `Unreachable` when the node
 * does not answer) on stderr; 2 for bad usage (`InvalidFlag`, `UnknownFlag`).
 */
import { UsageError, VIA_DEFAULT, adminToken, fail, parseFlags, sendAdminRequest, viaUrl } from './cli-flags.js';
import type { AdminRequest } from './cli-flags.js';

const USAGE = `usage: iroh-raft tenants <create <name> [--rate <req/s>] [--bytes-max <N>] [--keys-max <N>]
                         | list | delete <name> | rotate <name>>
                        [--via <URL>] [--token <token> | --token-file <path>]
  --via         a node's HTTP API (default http://127.0.0.1:7070)
  --token       the node's admin token (default: IROH_RAFT_TOKEN)
  --token-file  a file holding it, e.g. <data>/admin.token
  --rate        create: the tenant's requests per second on each node (no limit when left out)
  --bytes-max   create: most bytes of keys + values the tenant may hold (no limit when left out)
  --keys-max    create: most keys the tenant may hold (no limit when left out)`;

type Command = AdminRequest;

const FLAGS = new Set(['--via', '--token', '--token-file', '--rate', '--bytes-max', '--keys-max']);
/** Flags that only `create` takes. */
const CREATE_FLAGS = ['--rate', '--bytes-max', '--keys-max'] as const;

/** The request a `tenants` command line makes; UsageError for anything else. */
export function parseTenantsArgs(argv: readonly string[], env: NodeJS.ProcessEnv): Command {
  const { words, flags } = parseFlags(argv, FLAGS, 'tenants');
  const via = viaUrl(flags.get('--via') ?? VIA_DEFAULT);
  const token = adminToken(flags, env);
  const [verb, name, ...extra] = words;
  if (extra.length > 0) throw new UsageError('InvalidFlag', `unexpected argument ${JSON.stringify(extra[0])}`);
  for (const f of CREATE_FLAGS) if (flags.has(f) && verb !== 'create') throw new UsageError('InvalidFlag', `${f} goes with create`);
  const named = (): string => {
    if (name === undefined) throw new UsageError('InvalidFlag', `tenants ${verb} needs a tenant name`);
    return encodeURIComponent(name);
  };
  switch (verb) {
    case 'create': {
      const rate = flags.get('--rate');
      const rps = rate === undefined ? undefined : Number(rate);
      if (rps !== undefined && !(Number.isFinite(rps) && rps > 0))
        throw new UsageError('InvalidFlag', `--rate must be a positive number, got ${JSON.stringify(rate)}`);
      const bytesMax = positiveInteger(flags, '--bytes-max');
      const keysMax = positiveInteger(flags, '--keys-max');
      named();
      const quota = {
        ...(rps === undefined ? {} : { requestsPerSec: rps }),
        ...(bytesMax === undefined ? {} : { bytesMax }),
        ...(keysMax === undefined ? {} : { keysMax }),
      };
      return { method: 'POST', path: '/v1/tenants', body: { name, quota }, via, token };
    }
    case 'list':
      if (name !== undefined) throw new UsageError('InvalidFlag', `unexpected argument ${JSON.stringify(name)}`);
      return { method: 'GET', path: '/v1/tenants', via, token };
    case 'delete':
      return { method: 'DELETE', path: `/v1/tenants/${named()}`, via, token };
    case 'rotate':
      return { method: 'POST', path: `/v1/tenants/${named()}/rotate`, via, token };
    default:
      throw new UsageError('InvalidFlag', verb === undefined ? 'tenants needs a command: create, list, delete or rotate' : `unknown tenants command '${verb}'`);
  }
}

/** The flag's value as a positive safe integer (digits only); undefined when absent. */
function positiveInteger(flags: ReadonlyMap<string, string>, flag: string): number | undefined {
  const text = flags.get(flag);
  if (text === undefined) return undefined;
  const n = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!(Number.isSafeInteger(n) && n > 0)) throw new UsageError('InvalidFlag', `${flag} must be a positive integer, got ${JSON.stringify(text)}`);
  return n;
}

/** Runs `iroh-raft tenants ...`; resolves with the exit code. */
export async function tenantsCommand(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  let cmd: Command;
  try {
    cmd = parseTenantsArgs(argv, env);
  } catch (e) {
    if (e instanceof UsageError) return fail(e.code, e.message, 2);
    throw e;
  }
  return sendAdminRequest(cmd);
}
