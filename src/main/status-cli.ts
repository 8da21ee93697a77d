/**
 * `iroh-raft status [--via <URL>] [--json] [--timeout-ms N] [--token T | --token-file F]`: what a
 * node's `GET /v1/status` says, as a table (members and their state and load, shards with leader,
 * term, commit and applied, workers down) or, with `--json`, the JSON as the node sent it. A node
 * with `--auth on` answers only its admin token (`--token`, `--token-file <data>/admin.token` or
 * `IROH_RAFT_TOKEN`). Exit 0; 2 with a JSON error line on stderr for bad flags (`InvalidFlag`,
 * `UnknownFlag`); 1 when the node does not answer in time (`Unreachable`), refuses the token or
 * its absence (`Unauthorized`, `Forbidden`), or answers something else than a status
 * (`BadResponse`).
 */
import { ConfigError } from './config.js';
import { tokenOf } from './token-flag.js';

/** The node asked when --via is not given: `iroh-raft start`'s default HTTP address. */
export const STATUS_VIA_DEFAULT = 'http://127.0.0.1:7070';
/** How long to wait for the answer when --timeout-ms is not given, in ms. */
export const STATUS_TIMEOUT_DEFAULT_MS = 5000;

export const STATUS_USAGE = `status     print a node's view of the cluster: members up or down with their load, every shard's
             leader, term, commit and applied index: [--via ${STATUS_VIA_DEFAULT}] [--json] [--timeout-ms ${STATUS_TIMEOUT_DEFAULT_MS}]
             [--token <admin token> | --token-file <data>/admin.token] (or IROH_RAFT_TOKEN; with --auth on)`;

export interface StatusFlags {
  /** The node's HTTP base URL (http: or https:). */
  readonly via: URL;
  /** Print the node's JSON as it is instead of the table. */
  readonly json: boolean;
  readonly timeoutMs: number;
  /** The bearer token sent (a node's admin token, needed with `--auth on`); undefined: none. */
  readonly token: string | undefined;
}

/**
 * Parses the flags of `status`; the token, when no flag names one, comes from `IROH_RAFT_TOKEN`
 * in `env`. Throws ConfigError `InvalidFlag` or `UnknownFlag`.
 */
export function parseStatusFlags(argv: readonly string[], env: NodeJS.ProcessEnv = {}): StatusFlags {
  let via = STATUS_VIA_DEFAULT;
  let json = false;
  let timeoutMs = STATUS_TIMEOUT_DEFAULT_MS;
  let token: string | undefined;
  let tokenFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const name = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const inline = a.startsWith('--') && eq > 0 ? a.slice(eq + 1) : undefined;
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new ConfigError('InvalidFlag', `${name} needs a value`);
      return v;
    };
    if (name === '--json' && inline === undefined) json = true;
    else if (name === '--via') via = value();
    else if (name === '--token' || name === '--token-file') {
      if ((name === '--token' ? token : tokenFile) !== undefined) throw new ConfigError('InvalidFlag', `${name} is given twice`);
      if (name === '--token') token = value();
      else tokenFile = value();
    } else if (name === '--timeout-ms') {
      const v = value();
      timeoutMs = /^[0-9]{1,7}$/.test(v) ? Number(v) : 0;
      if (timeoutMs < 1) throw new ConfigError('InvalidFlag', `--timeout-ms: expected an integer in [1, 9999999], got ${JSON.stringify(v)}`);
    } else if (!a.startsWith('--')) throw new ConfigError('InvalidFlag', `unexpected argument ${JSON.stringify(a)}`);
    else throw new ConfigError('UnknownFlag', `unknown flag ${name} for status`);
  }
  let url: URL;
  try {
    url = new URL(via);
  } catch {
    throw new ConfigError('InvalidFlag', `--via: expected a URL like ${STATUS_VIA_DEFAULT}, got ${JSON.stringify(via)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new ConfigError('InvalidFlag', `--via: expected an http: or https: URL, got ${JSON.stringify(via)}`);
  return { via: url, json, timeoutMs, token: tokenOf(token, tokenFile, env) };
}

/** A failure at run time: `Unreachable` or `BadResponse`. */
export class StatusError extends Error {
  override readonly name = 'StatusError';
  constructor(
    readonly code: 'Unreachable' | 'BadResponse' | 'Unauthorized' | 'Forbidden',
    message: string,
  ) {
    super(message);
  }
}

/** The parts of `GET /v1/status` the table shows. */
interface StatusDoc {
  node: number;
  members: { node: number; id: string }[];
  nodes?: {
    node: number;
    self: boolean;
    up: boolean;
    workers: number;
    workersDown: number[];
    requestsPerSec: number | null;
    p99Ms: number | null;
    httpUrl: string | null;
    heardMsAgo: number;
  }[];
  shards: { shard: number; role: string; leader: number; term: number; commit: number; applied: number }[];
  workersDown: number[];
  snapshots?: { sending: number; receiving: number } | null;
  moves?: { supported: boolean; active: unknown[] };
}

/**
 * Asks `flags.via` for its status, with `flags.token` as the bearer token when there is one.
 * Throws StatusError `Unreachable`, `Unauthorized` (401: no token, or one the node does not
 * hold), `Forbidden` (403: a tenant's token) or `BadResponse`.
 */
export async function fetchStatus(flags: StatusFlags): Promise<{ text: string; doc: StatusDoc }> {
  const url = new URL('/v1/status', flags.via);
  let res: Response;
  let text: string;
  try {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (flags.token !== undefined) headers.authorization = `Bearer ${flags.token}`;
    res = await fetch(url, { signal: AbortSignal.timeout(flags.timeoutMs), headers });
    text = await res.text();
  } catch (e) {
    const err = e as { name?: string; cause?: { code?: string; message?: string }; message?: string };
    const why = err.name === 'TimeoutError' ? `no answer within ${flags.timeoutMs} ms` : (err.cause?.code ?? err.cause?.message ?? err.message ?? String(e));
    throw new StatusError('Unreachable', `${url.href}: ${why}`);
  }
  if (res.status === 401) {
    const why =
      flags.token === undefined
        ? 'this node requires its admin token: give --token, --token-file <data>/admin.token or IROH_RAFT_TOKEN'
        : 'the node refused the token (not its admin token, or malformed)';
    throw new StatusError('Unauthorized', `${url.href} answered 401: ${why}`);
  }
  if (res.status === 403) throw new StatusError('Forbidden', `${url.href} answered 403: the status needs the node's admin token, not a tenant's`);
  if (res.status !== 200) throw new StatusError('BadResponse', `${url.href} answered ${res.status}: ${text.slice(0, 200)}`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new StatusError('BadResponse', `${url.href} answered something that is not JSON`);
  }
  const d = doc as Partial<StatusDoc> | null;
  if (d === null || typeof d !== 'object' || typeof d.node !== 'number' || !Array.isArray(d.shards) || !Array.isArray(d.members)) {
    throw new StatusError('BadResponse', `${url.href} answered JSON that is not a node status`);
  }
  return { text, doc: d as StatusDoc };
}

/** Left-aligned columns, two spaces apart; columns named in `right` are right-aligned. */
function table(head: readonly string[], rows: readonly (readonly string[])[], right: ReadonlySet<number> = new Set()): string {
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: readonly string[]): string =>
    r
      .map((cell, c) => (right.has(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

/** The table `iroh-raft status` prints for `doc`, as asked of `via`. */
export function renderStatus(doc: StatusDoc, via: string): string {
  const nodes =
    doc.nodes ??
    doc.members.map((m) => ({
      node: m.node,
      self: m.node === doc.node,
      up: m.node === doc.node,
      workers: 0,
      workersDown: [],
      requestsPerSec: null,
      p99Ms: null,
      httpUrl: null,
      heardMsAgo: 0,
    }));
  const up = nodes.filter((n) => n.up).length;
  const led = doc.shards.filter((s) => s.leader !== 0).length;
  const fmt = (v: number | null, digits: number): string => (v === null ? '-' : v.toFixed(digits));
  const members = table(
    ['MEMBER', 'STATE', 'WORKERS', 'REQ/S', 'P99 MS', 'HEARD', 'HTTP'],
    nodes.map((n) => [
      `${n.node}${n.self ? ' (this)' : ''}`,
      n.up ? 'up' : 'DOWN',
      n.workersDown.length > 0 ? `down: ${n.workersDown.join(',')}` : n.workers > 0 ? `${n.workers} running` : '-',
      fmt(n.requestsPerSec, 1),
      fmt(n.p99Ms, 2),
      n.self ? '-' : `${(n.heardMsAgo / 1000).toFixed(1)} s ago`,
      n.httpUrl ?? '-',
    ]),
    new Set([3, 4, 5]),
  );
  const shards = table(
    ['SHARD', 'LEADER', 'ROLE HERE', 'TERM', 'COMMIT', 'APPLIED', 'LAG'],
    doc.shards.map((s) => [
      String(s.shard),
      s.leader === 0 ? 'none' : String(s.leader),
      s.role,
      String(s.term),
      String(s.commit),
      String(s.applied),
      String(s.commit - s.applied),
    ]),
    new Set([3, 4, 5, 6]),
  );
  const snap = doc.snapshots;
  const snapshots = snap ? (snap.sending + snap.receiving === 0 ? 'none in progress' : `sending ${snap.sending}, receiving ${snap.receiving}`) : 'not reported';
  const moves = doc.moves && doc.moves.active.length > 0 ? `${doc.moves.active.length} in progress` : 'none';
  return [
    `node ${doc.node} at ${via}: ${up} of ${nodes.length} members up; ${doc.shards.length} shards hosted here, ${led} with a leader` +
      (doc.workersDown.length > 0 ? `; workers down here: ${doc.workersDown.join(', ')}` : ''),
    '',
    members,
    '',
    shards,
    '',
    `snapshots: ${snapshots}; moves: ${moves}`,
  ].join('\n');
}

/** Runs `iroh-raft status`; returns the exit code. */
export async function runStatus(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let flags: StatusFlags;
  try {
    flags = parseStatusFlags(argv, env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    console.error(JSON.stringify({ error: { code: e.code, message: e.message } }));
    return 2;
  }
  try {
    const { text, doc } = await fetchStatus(flags);
    console.log(flags.json ? text : renderStatus(doc, flags.via.origin));
    return 0;
  } catch (e) {
    if (!(e instanceof StatusError)) throw e;
    console.error(JSON.stringify({ error: { code: e.code, message: e.message } }));
    return 1;
  }
}
