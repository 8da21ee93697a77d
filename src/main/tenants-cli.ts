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
import { ConfigError } from './config.js';
import { tokenOf } from './token-flag.js';

const USAGE = `usage: iroh-raft tenants <create <name> [--rate <req/s>] [--bytes-max <N>] [--keys-max <N>]
                         | list | delete <name> | rotate <name>>
                        [--via <URL>] [--token <token> | --token-file <path>]
  --via         a node's HTTP API (default http://127.0.0.1:7070)
  --token       the node's admin token (default: IROH_RAFT_TOKEN)
  --token-file  a file holding it, e.g. <data>/admin.token
  --rate        create: the tenant's requests per second on each node (no limit when left out)
  --bytes-max   create: most bytes of keys + values the tenant may hold (no limit when left out)
  --keys-max    create: most keys the tenant may hold (no limit when left out)`;

const VIA_DEFAULT = 'http://127.0.0.1:7070';
/** How long one admin request may take, in ms. */
const REQUEST_TIMEOUT_MS = 15_000;

class UsageError extends Error {
  constructor(
    readonly code: 'InvalidFlag' | 'UnknownFlag',
    message: string,
  ) {
    super(message);
  }
}

interface Command {
  readonly method: 'GET' | 'POST' | 'DELETE';
  readonly path: string;
  readonly body?: unknown;
  readonly via: string;
  readonly token: string;
}

const FLAGS = new Set(['--via', '--token', '--token-file', '--rate', '--bytes-max', '--keys-max']);
/** Flags that only `create` takes. */
const CREATE_FLAGS = ['--rate', '--bytes-max', '--keys-max'] as const;

/** The request a `tenants` command line makes; UsageError for anything else. */
export function parseTenantsArgs(argv: readonly string[], env: NodeJS.ProcessEnv): Command {
  const words: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) {
      words.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(0, eq) : a;
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (!FLAGS.has(name)) throw new UsageError('UnknownFlag', `unknown flag ${name} (see iroh-raft tenants --help)`);
    if (value === undefined || value === '' || (eq < 0 && value.startsWith('--'))) throw new UsageError('InvalidFlag', `${name} needs a value`);
    if (flags.has(name)) throw new UsageError('InvalidFlag', `${name} is given twice`);
    flags.set(name, value);
  }
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

function viaUrl(text: string): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new UsageError('InvalidFlag', `--via must be a URL such as ${VIA_DEFAULT}, got ${JSON.stringify(text)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError('InvalidFlag', `--via must be an http or https URL, got ${JSON.stringify(text)}`);
  return u.origin;
}

/** The admin token, read as every client command reads its token (token-flag.ts); required here. */
function adminToken(flags: ReadonlyMap<string, string>, env: NodeJS.ProcessEnv): string {
  let token: string | undefined;
  try {
    token = tokenOf(flags.get('--token'), flags.get('--token-file'), env);
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError('InvalidFlag', e.message);
    throw e;
  }
  if (token === undefined) throw new UsageError('InvalidFlag', 'an admin token is needed: --token, --token-file or IROH_RAFT_TOKEN');
  return token;
}

function fail(code: string, message: string, exit: number): number {
  console.error(JSON.stringify({ error: { code, message } }));
  return exit;
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
  let res: Response;
  try {
    res = await fetch(`${cmd.via}${cmd.path}`, {
      method: cmd.method,
      headers: { authorization: `Bearer ${cmd.token}`, ...(cmd.body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(cmd.body === undefined ? {} : { body: JSON.stringify(cmd.body) }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (e) {
    const cause = (e as { cause?: { message?: string } }).cause?.message ?? (e as Error).message;
    return fail('Unreachable', `${cmd.method} ${cmd.via}${cmd.path}: ${cause}`, 1);
  }
  const text = await res.text();
  if (res.ok) {
    console.log(text);
    return 0;
  }
  // The server's own error line when it sent one, else one made from the status.
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown } };
    if (typeof body.error?.code === 'string') {
      console.error(JSON.stringify(body));
      return 1;
    }
  } catch {
    // not JSON
  }
  return fail('HttpError', `${cmd.method} ${cmd.path}: HTTP ${res.status}`, 1);
}
