/**
 * `iroh-raft members`: the cluster's members from a shell, through a node's admin API
 * (`/v1/members`).
 *
 *   iroh-raft members [--via <URL>] [--json] [--token <admin token> | --token-file <path>]
 *       lists the members: raft id, state (joining, up, leaving, dead, removed), endpoint id, addresses,
 *       and the replica moves under way; `--json` prints the node's JSON answer.
 *   iroh-raft members remove <raft id | endpoint id> [--via <URL>] [...]
 *       starts removing a member: one that is heard from moves its replicas away, then stops; one
 *       that is not is declared dead and its replicas are rebuilt from the others.
 *   iroh-raft members invite [--ttl-ms <ms>] [--via <URL>] [...]
 *       prints a join string for one new node (`iroh-raft start --join <it>`), valid once, for
 *       `--ttl-ms` (default 1 hour): how a node joins a cluster that runs with auth on.
 *
 * `--via` defaults to http://127.0.0.1:7070; the token (needed when the node runs with auth on)
 * to IROH_RAFT_TOKEN. Exit 1 with the node's error line on stderr; 2 for bad usage.
 */
import { isEndpointId } from '../api/index.js';
import { UsageError, VIA_DEFAULT, fail, optionalAdminToken, parseFlags, sendAdminRequest, viaUrl } from './cli-flags.js';
import type { AdminRequest } from './cli-flags.js';

const USAGE = `usage: iroh-raft members [remove <raft id | endpoint id> | invite [--ttl-ms <ms>]] [--via <URL>]
                        [--json] [--token <token> | --token-file <path>]
  (no command)  list the members and their state (joining, up, leaving, dead, removed), and moves under way
  remove        move a member's replicas away, then remove it (a member not heard from: rebuild
                its replicas from the others at once)
  invite        print a join string for one new node: iroh-raft start --join <it> (with auth on,
                a stranger joins only so); valid once, for --ttl-ms (default 3600000: 1 hour)
  --via         a node's HTTP API (default ${VIA_DEFAULT})
  --json        print the node's JSON answer
  --token       the node's admin token when it runs with auth on (default: IROH_RAFT_TOKEN)
  --token-file  a file holding it, e.g. <data>/admin.token`;

const FLAGS = new Set(['--via', '--token', '--token-file', '--json', '--ttl-ms']);

/**
 * The request a `members` command line makes, and how to print the answer: the node's JSON, the
 * table, or (invite) the join string alone; UsageError otherwise.
 */
export function parseMembersArgs(argv: readonly string[], env: NodeJS.ProcessEnv): { req: AdminRequest; json: boolean; invite?: true } {
  const json = argv.includes('--json');
  const { words, flags } = parseFlags(
    argv.filter((a) => a !== '--json'),
    FLAGS,
    'members',
  );
  const via = viaUrl(flags.get('--via') ?? VIA_DEFAULT);
  // A node with auth off needs no token.
  const token = optionalAdminToken(flags, env);
  const auth = token === undefined ? {} : { token };
  if (flags.has('--ttl-ms') && words[0] !== 'invite') throw new UsageError('InvalidFlag', '--ttl-ms goes with members invite only');
  if (words.length === 0 || (words.length === 1 && words[0] === 'list')) return { req: { method: 'GET', path: '/v1/members', via, ...auth }, json };
  const [verb, ref, ...extra] = words;
  if (verb === 'invite') {
    if (ref !== undefined) throw new UsageError('InvalidFlag', `unexpected argument ${JSON.stringify(ref)}`);
    const ttl = flags.get('--ttl-ms');
    if (ttl !== undefined && !/^[1-9][0-9]{3,9}$/.test(ttl))
      throw new UsageError('InvalidFlag', `--ttl-ms takes whole milliseconds (at least 1000), got ${JSON.stringify(ttl)}`);
    return {
      req: { method: 'POST', path: '/v1/members/invites', via, ...auth, ...(ttl === undefined ? {} : { body: { ttlMs: Number(ttl) } }) },
      json,
      invite: true,
    };
  }
  if (verb !== 'remove') throw new UsageError('InvalidFlag', `unknown members command '${verb}' (list, remove or invite)`);
  if (extra.length > 0) throw new UsageError('InvalidFlag', `unexpected argument ${JSON.stringify(extra[0])}`);
  if (ref === undefined || !(/^[1-9][0-9]{0,9}$/.test(ref) || isEndpointId(ref)))
    throw new UsageError('InvalidFlag', `members remove needs a raft id or an endpoint id (64 lowercase hex characters), got ${JSON.stringify(ref ?? '')}`);
  return { req: { method: 'DELETE', path: `/v1/members/${ref}`, via, ...auth }, json: true };
}

/** Runs `iroh-raft members ...`; resolves with the exit code. */
export async function membersCommand(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  let cmd: ReturnType<typeof parseMembersArgs>;
  try {
    cmd = parseMembersArgs(argv, env);
  } catch (e) {
    if (e instanceof UsageError) return fail(e.code, e.message, 2);
    throw e;
  }
  if (cmd.json) return sendAdminRequest(cmd.req);
  let out = '';
  const code = await sendAdminRequest(cmd.req, (text) => (out = text));
  if (code !== 0) return code;
  if (cmd.invite) {
    const a = JSON.parse(out) as { join: string; expires: string };
    console.log(a.join);
    console.error(`valid once, until ${a.expires}: iroh-raft start --data <dir> --join <the line above>`);
    return 0;
  }
  console.log(membersTable(JSON.parse(out) as ListAnswer));
  return 0;
}

interface ListAnswer {
  members: { node: number; id: string; state?: string; addrs?: string[] }[];
  moves?: { shard: number; voters: number[]; learners: number[]; target: number[] }[];
}

/** The members as a table, then one line per move under way. */
export function membersTable(a: ListAnswer): string {
  const rows = [['NODE', 'STATE', 'ENDPOINT', 'ADDRESSES'], ...a.members.map((m) => [String(m.node), m.state ?? '?', m.id, (m.addrs ?? []).join(',')])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
  const moves = a.moves ?? [];
  lines.push(moves.length === 0 ? 'no replica moves under way' : `${moves.length} shards moving:`);
  for (const m of moves)
    lines.push(`  shard ${m.shard}: voters ${m.voters.join(',')}${m.learners.length > 0 ? ` learners ${m.learners.join(',')}` : ''} -> ${m.target.join(',')}`);
  return lines.join('\n');
}
