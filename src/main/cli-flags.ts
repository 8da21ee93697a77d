/**
 * Flag parsing shared by the admin commands (`tenants`, `roles`, `mgmt`): words and `--flag
 * value` (or `--flag=value`) pairs, each flag once, `--via` as an http(s) origin, the admin token
 * as every client command reads it (token-flag.ts), and one admin HTTP request with the node's
 * JSON answer printed. Usage errors are exit 2 with `InvalidFlag` or `UnknownFlag`.
 */
import { ConfigError } from './config.js';
import { tokenOf } from './token-flag.js';

/** A node's HTTP API when `--via` is not given. */
export const VIA_DEFAULT = 'http://127.0.0.1:7070';
/** How long one admin request may take, in ms. */
const REQUEST_TIMEOUT_MS = 15_000;

export class UsageError extends Error {
  constructor(
    readonly code: 'InvalidFlag' | 'UnknownFlag',
    message: string,
  ) {
    super(message);
  }
}

/** Words and flags of a command line; UsageError for an unknown flag, one without a value or given twice. */
export function parseFlags(argv: readonly string[], known: ReadonlySet<string>, command: string): { words: string[]; flags: Map<string, string> } {
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
    if (!known.has(name)) throw new UsageError('UnknownFlag', `unknown flag ${name} (see iroh-raft ${command} --help)`);
    if (value === undefined || value === '' || (eq < 0 && value.startsWith('--'))) throw new UsageError('InvalidFlag', `${name} needs a value`);
    if (flags.has(name)) throw new UsageError('InvalidFlag', `${name} is given twice`);
    flags.set(name, value);
  }
  return { words, flags };
}

/** The origin of a `--via` URL; UsageError unless it is http or https. */
export function viaUrl(text: string): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new UsageError('InvalidFlag', `--via must be a URL such as ${VIA_DEFAULT}, got ${JSON.stringify(text)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError('InvalidFlag', `--via must be an http or https URL, got ${JSON.stringify(text)}`);
  return u.origin;
}

/** The admin token (`--token`, `--token-file`, else IROH_RAFT_TOKEN); required here. */
export function adminToken(flags: ReadonlyMap<string, string>, env: NodeJS.ProcessEnv): string {
  const token = optionalAdminToken(flags, env);
  if (token === undefined) throw new UsageError('InvalidFlag', 'an admin token is needed: --token, --token-file or IROH_RAFT_TOKEN');
  return token;
}

/** The admin token given by `--token`, `--token-file` or IROH_RAFT_TOKEN, if any; UsageError for a file that cannot be read. */
export function optionalAdminToken(flags: ReadonlyMap<string, string>, env: NodeJS.ProcessEnv): string | undefined {
  try {
    return tokenOf(flags.get('--token'), flags.get('--token-file'), env);
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError('InvalidFlag', e.message);
    throw e;
  }
}

/** Prints `{"error":{code,message}}` on stderr; returns `exit`. */
export function fail(code: string, message: string, exit: number): number {
  console.error(JSON.stringify({ error: { code, message } }));
  return exit;
}

/** One admin request to a node's HTTP API. */
export interface AdminRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  readonly path: string;
  readonly body?: unknown;
  readonly via: string;
  /** The admin token; none: sent without one (a node with auth off needs none). */
  readonly token?: string;
}

/**
 * Sends `cmd`; the node's JSON answer goes to stdout (exit 0), its error line to stderr (exit 1),
 * `Unreachable` when it does not answer.
 */
export async function sendAdminRequest(cmd: AdminRequest, onOk: (text: string) => void = (t) => console.log(t)): Promise<number> {
  let res: Response;
  try {
    res = await fetch(`${cmd.via}${cmd.path}`, {
      method: cmd.method,
      headers: {
        ...(cmd.token === undefined ? {} : { authorization: `Bearer ${cmd.token}` }),
        ...(cmd.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(cmd.body === undefined ? {} : { body: JSON.stringify(cmd.body) }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (e) {
    const cause = (e as { cause?: { message?: string } }).cause?.message ?? (e as Error).message;
    return fail('Unreachable', `${cmd.method} ${cmd.via}${cmd.path}: ${cause}`, 1);
  }
  const text = await res.text();
  if (res.ok) {
    onOk(text);
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
