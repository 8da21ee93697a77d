/**
 * `iroh-raft roles`: the role admin API (`/v1/roles`) from a shell: which Iroh endpoint ids may
 * use the management ALPN, and as what.
 *
 *   iroh-raft roles grant <endpoint id> <admin|operator|reader> | revoke <endpoint id> | list | get <endpoint id>
 *       [--via <URL>] [--token <admin token> | --token-file <path>]
 *
 * Flags as `iroh-raft tenants` (cli-flags.ts): `--via` defaults to http://127.0.0.1:7070, the
 * token to IROH_RAFT_TOKEN. The node's JSON answer goes to stdout; exit 1 with its error line
 * (`RoleNotFound`, `BadRequest`, `Unauthorized`...) on stderr; 2 for bad usage.
 */
import { isEndpointId, isRole } from '../api/index.js';
import { UsageError, VIA_DEFAULT, adminToken, fail, parseFlags, sendAdminRequest, viaUrl } from './cli-flags.js';
import type { AdminRequest } from './cli-flags.js';

const USAGE = `usage: iroh-raft roles <grant <endpoint id> <admin|operator|reader> | revoke <endpoint id> | get <endpoint id> | list>
                      [--via <URL>] [--token <token> | --token-file <path>]
  --via         a node's HTTP API (default ${VIA_DEFAULT})
  --token       the node's admin token (default: IROH_RAFT_TOKEN)
  --token-file  a file holding it, e.g. <data>/admin.token
roles: admin (every management op), operator (status, members, tenants list and quotas),
reader (status, members); an endpoint id is printed by iroh-raft key new`;

const FLAGS = new Set(['--via', '--token', '--token-file']);

/** The request a `roles` command line makes; UsageError for anything else. */
export function parseRolesArgs(argv: readonly string[], env: NodeJS.ProcessEnv): AdminRequest {
  const { words, flags } = parseFlags(argv, FLAGS, 'roles');
  const via = viaUrl(flags.get('--via') ?? VIA_DEFAULT);
  const token = adminToken(flags, env);
  const [verb, id, role, ...extra] = words;
  const want = verb === 'grant' ? 3 : verb === 'list' ? 1 : 2;
  if (extra.length > 0 || words.length > want) throw new UsageError('InvalidFlag', `unexpected argument ${JSON.stringify(words[want])}`);
  const endpoint = (): string => {
    if (!isEndpointId(id))
      throw new UsageError('InvalidFlag', `roles ${verb} needs an endpoint id (64 lowercase hex characters), got ${JSON.stringify(id ?? '')}`);
    return id;
  };
  switch (verb) {
    case 'grant':
      if (!isRole(role)) throw new UsageError('InvalidFlag', `roles grant needs a role: admin, operator or reader, got ${JSON.stringify(role ?? '')}`);
      return { method: 'PUT', path: `/v1/roles/${endpoint()}`, body: { role }, via, token };
    case 'revoke':
      return { method: 'DELETE', path: `/v1/roles/${endpoint()}`, via, token };
    case 'get':
      return { method: 'GET', path: `/v1/roles/${endpoint()}`, via, token };
    case 'list':
      return { method: 'GET', path: '/v1/roles', via, token };
    default:
      throw new UsageError('InvalidFlag', verb === undefined ? 'roles needs a command: grant, revoke, get or list' : `unknown roles command '${verb}'`);
  }
}

/** Runs `iroh-raft roles ...`; resolves with the exit code. */
export async function rolesCommand(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  let cmd: AdminRequest;
  try {
    cmd = parseRolesArgs(argv, env);
  } catch (e) {
    if (e instanceof UsageError) return fail(e.code, e.message, 2);
    throw e;
  }
  return sendAdminRequest(cmd);
}
