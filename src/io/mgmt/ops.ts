/**
 * The management operations, who may call each, and how each one's arguments are checked. Every
 * operation calls the node's own services (the router's tenant and role directories, its status),
 * so there is one implementation of each thing, whichever API asks.
 *
 * | op               | args                           | admin | operator | reader |
 * |------------------|--------------------------------|-------|----------|--------|
 * | status           | -                              | yes   | yes      | yes    |
 * | members.list     | -                              | yes   | yes      | yes    |
 * | members.join     | {addrs}                        | yes   | yes      |        |
 * | members.remove   | {node}                         | yes   | yes      |        |
 * | members.rejoin   | {addrs, old}                   | (members only)              |
 * | members.self     | -                              | (anyone)                    |
 * | tenants.list     | -                              | yes   | yes      |        |
 * | tenants.setQuota | {name, quota}                  | yes   | yes      |        |
 * | tenants.create   | {name, quota?}                 | yes   |          |        |
 * | tenants.delete   | {name}                         | yes   |          |        |
 * | tenants.rotate   | {name}                         | yes   |          |        |
 * | roles.list       | -                              | yes   |          |        |
 * | roles.grant      | {endpointId, role}             | yes   |          |        |
 * | roles.revoke     | {endpointId}                   | yes   |          |        |
 *
 * `members.join` admits the caller's own endpoint (never another's) as a new member, with the
 * addresses it gives. With the node's auth off (a loopback cluster), anyone may call it
 * (`MgmtServices.joinOpen`); with auth on, only an endpoint that an admin granted a role.
 * Members of the cluster are recognised by membership, not a role (`member` below).
 * `members.self` answers anyone, members and strangers alike, with what the cluster's record
 * says of the caller's own endpoint and nothing else: a member that was removed while it was
 * down or cut off (its raft traffic is refused from then on) learns it that way and stops.
 */
import { INVITE_TTL_DEFAULT_MS, INVITE_TTL_MAX_MS, ServiceErrorCode, isInviteSecret, isRole } from '../../api/index.js';
import type { Failure, Result, Role, RoleService, TenantQuota, TenantService } from '../../api/index.js';

/** What the operations call: the node's services. */
export interface MgmtServices {
  /** What `GET /v1/status` answers. */
  status(): Promise<unknown>;
  /** The cluster's members: raft id and endpoint id (and, once the meta group answered, addresses and state). */
  members(): readonly { readonly node: number; readonly id: string }[];
  /**
   * Admits `endpointId` (the caller) as a member, spending the invite whose secret is `invite` when
   * given; what it needs to start (see src/main/cluster-join.ts). Forbidden for a bad invite.
   */
  join(endpointId: string, addrs: readonly string[], invite?: string): Promise<Result<unknown>>;
  /** A join invite valid for `ttlMs` (src/router/invites.ts): `{join, expires}`. */
  invite(ttlMs: number): Promise<Result<unknown>>;
  /** Admits member `endpointId` (the caller), which ran as raft id `old` and lost its stores, as a new replica. */
  rejoin(endpointId: string, addrs: readonly string[], old: number): Promise<Result<unknown>>;
  /**
   * The entries of endpoint `endpointId` (the caller) in the cluster's record as this node last
   * read it: raft id and state, oldest first; none for an endpoint that never was a member.
   */
  selfEntries(endpointId: string): readonly { readonly node: number; readonly state: string }[];
  /** Starts removing member `node` (a raft id or an endpoint id): its replicas move away first. */
  removeMember(node: number | string): Promise<Result<unknown>>;
  /** Whether anyone may call members.join (auth off). */
  readonly joinOpen: boolean;
  /** Whether `endpointId` is a member of the cluster (asked per request). */
  isMember(endpointId: string): boolean;
  /** The role bindings (replicated). */
  readonly roles: RoleService;
  /** The tenant directory; undefined with auth off (tenant ops answer NotFound). */
  readonly tenants?: TenantService;
}

/** Who asks: the role bound to the connection's endpoint id, and whether it is a member. */
export interface Caller {
  readonly endpointId: string;
  readonly role: Role | undefined;
  readonly member: boolean;
}

interface OpRule {
  /** Roles allowed. */
  readonly roles: readonly Role[];
  /** Whether members (by membership alone) may call it. */
  readonly member: boolean;
  /** Whether anyone may call it while the node's joins are open (MgmtServices.joinOpen), or with an invite. */
  readonly open?: boolean;
  /** Whether anyone may call it, always: it reveals only what concerns the caller itself. */
  readonly anyone?: boolean;
  /** Checks the args and runs the op; a bad arg is a BadRequest (or InvalidTenant) Failure. */
  run(args: unknown, s: MgmtServices, caller: Caller): Promise<Result<unknown>>;
}

const ok = <T>(value: T): Result<T> => ({ ok: true, value });
const fail = (code: ServiceErrorCode, message: string): Failure => ({ ok: false, code, message });
const ALL: readonly Role[] = ['admin', 'operator', 'reader'];
const OPERATORS: readonly Role[] = ['admin', 'operator'];
const ADMINS: readonly Role[] = ['admin'];

export const OPS = {
  status: { roles: ALL, member: false, run: (a, s) => noArgs(a, async () => ok(await s.status())) },
  'members.list': { roles: ALL, member: false, run: (a, s) => noArgs(a, () => Promise.resolve(ok({ members: s.members() }))) },
  'members.join': {
    roles: OPERATORS,
    member: false,
    open: true,
    run: (a, s, caller) =>
      withArgs(a, ['addrs', 'invite'], ['addrs'], (v) => {
        if (v.invite !== undefined && !isInviteSecret(v.invite)) throw new ArgError('args.invite must be the secret of an invite (43 base64url characters)');
        return s.join(caller.endpointId, addrsOf(v.addrs), v.invite);
      }),
  },
  'members.invite': {
    roles: OPERATORS,
    member: false,
    run: (a, s) =>
      withArgs(a, ['ttlMs'], [], (v) => {
        const ttl = v.ttlMs ?? INVITE_TTL_DEFAULT_MS;
        if (typeof ttl !== 'number' || !Number.isSafeInteger(ttl) || ttl < 1000 || ttl > INVITE_TTL_MAX_MS)
          throw new ArgError(`args.ttlMs must be whole milliseconds from 1000 to ${INVITE_TTL_MAX_MS}`);
        return s.invite(ttl);
      }),
  },
  'members.rejoin': {
    roles: [],
    member: true,
    run: (a, s, caller) =>
      withArgs(a, ['addrs', 'old'], ['addrs', 'old'], (v) => {
        const old = v.old;
        if (typeof old !== 'number' || !Number.isSafeInteger(old) || old < 1) throw new ArgError('args.old must be a raft id');
        return s.rejoin(caller.endpointId, addrsOf(v.addrs), old);
      }),
  },
  'members.self': {
    roles: ALL,
    member: true,
    anyone: true,
    run: (a, s, caller) => noArgs(a, () => Promise.resolve(ok({ entries: s.selfEntries(caller.endpointId) }))),
  },
  'members.remove': {
    roles: OPERATORS,
    member: false,
    run: (a, s) =>
      withArgs(a, ['node'], ['node'], (v) => {
        const n = v.node;
        if (!(typeof n === 'string' || (typeof n === 'number' && Number.isSafeInteger(n) && n > 0)))
          throw new ArgError('args.node must be a raft id or an endpoint id');
        return s.removeMember(n);
      }),
  },
  'tenants.list': {
    roles: OPERATORS,
    member: false,
    run: (a, s) => noArgs(a, () => withTenants(s, async (t) => mapOk(await t.list(), (tenants) => ({ tenants })))),
  },
  'tenants.setQuota': {
    roles: OPERATORS,
    member: false,
    run: (a, s) => withArgs(a, ['name', 'quota'], ['name', 'quota'], (v) => withTenants(s, (t) => t.setQuota(nameOf(v), quotaOf(v.quota)))),
  },
  'tenants.create': {
    roles: ADMINS,
    member: false,
    run: (a, s) => withArgs(a, ['name', 'quota'], ['name'], (v) => withTenants(s, (t) => t.create(nameOf(v), v.quota === undefined ? {} : quotaOf(v.quota)))),
  },
  'tenants.delete': { roles: ADMINS, member: false, run: (a, s) => withArgs(a, ['name'], ['name'], (v) => withTenants(s, (t) => t.delete(nameOf(v)))) },
  'tenants.rotate': { roles: ADMINS, member: false, run: (a, s) => withArgs(a, ['name'], ['name'], (v) => withTenants(s, (t) => t.rotate(nameOf(v)))) },
  'roles.list': { roles: ADMINS, member: false, run: (a, s) => noArgs(a, async () => mapOk(await s.roles.list(), (roles) => ({ roles }))) },
  'roles.grant': {
    roles: ADMINS,
    member: false,
    run: (a, s) =>
      withArgs(a, ['endpointId', 'role'], ['endpointId', 'role'], (v) => {
        if (!isRole(v.role)) throw new ArgError('role must be admin, operator or reader');
        return s.roles.grant(stringOf(v.endpointId, 'endpointId'), v.role);
      }),
  },
  'roles.revoke': {
    roles: ADMINS,
    member: false,
    run: (a, s) => withArgs(a, ['endpointId'], ['endpointId'], (v) => s.roles.revoke(stringOf(v.endpointId, 'endpointId'))),
  },
} satisfies Record<string, OpRule>;

export type MgmtOp = keyof typeof OPS;

/** Whether `op` names an operation (false for `__proto__` and the like). */
export function isMgmtOp(op: string): op is MgmtOp {
  return Object.hasOwn(OPS, op);
}

/** Whether `caller` may call `op` (`joinOpen`: anyone may call the open ops). */
/**
 * Whether `caller` may call `op`. `joinOpen`: anyone may call an `open` op, as while joins are open
 * (auth off) or when the request carries an invite, which the op itself then checks.
 */
export function allowed(op: MgmtOp, caller: Caller, joinOpen = false): boolean {
  const rule: OpRule = OPS[op];
  return (
    rule.anyone === true ||
    (caller.role !== undefined && rule.roles.includes(caller.role)) ||
    (caller.member && rule.member) ||
    (joinOpen && rule.open === true)
  );
}

/** Whether an endpoint with no role that is not a member may call `op` (an unknown op: no). */
export function strangerMay(op: string, joinOpen: boolean): boolean {
  if (!isMgmtOp(op)) return false;
  const rule: OpRule = OPS[op];
  return rule.anyone === true || (joinOpen && rule.open === true);
}

/** Runs `op` (already allowed) with `args`; bad args answer BadRequest or InvalidTenant. */
export async function runOp(op: MgmtOp, args: unknown, s: MgmtServices, caller: Caller): Promise<Result<unknown>> {
  const rule: OpRule = OPS[op];
  try {
    return await rule.run(args, s, caller);
  } catch (e) {
    if (e instanceof ArgError) return fail(e.code, e.message);
    throw e;
  }
}

/** A bad argument, thrown by the checks below and answered as a Failure by runOp. */
class ArgError extends Error {
  constructor(
    message: string,
    readonly code: ServiceErrorCode = ServiceErrorCode.BadRequest,
  ) {
    super(message);
  }
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function noArgs(args: unknown, run: () => Promise<Result<unknown>>): Promise<Result<unknown>> {
  if (args !== undefined && args !== null && !(isMap(args) && Object.keys(args).length === 0)) throw new ArgError('this op takes no args');
  return run();
}

function withArgs(
  args: unknown,
  known: readonly string[],
  required: readonly string[],
  run: (v: Record<string, unknown>) => Promise<Result<unknown>>,
): Promise<Result<unknown>> {
  if (!isMap(args)) throw new ArgError(`args must be a map {${known.join(', ')}}`);
  const extra = Object.keys(args).filter((k) => !known.includes(k));
  if (extra.length > 0) throw new ArgError(`unknown args ${JSON.stringify(extra.slice(0, 3)).slice(0, 100)} (known: ${known.join(', ')})`);
  for (const k of required) if (args[k] === undefined) throw new ArgError(`args.${k} is required`);
  return run(args);
}

function stringOf(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new ArgError(`args.${what} must be a string`);
  return v;
}

/** 1..16 addresses `ip:port`, each at most 64 characters (the node checks them further). */
function addrsOf(v: unknown): string[] {
  if (!Array.isArray(v) || v.length < 1 || v.length > 16 || !v.every((a) => typeof a === 'string' && a.length > 0 && a.length <= 64))
    throw new ArgError('args.addrs must be 1 to 16 addresses (strings of at most 64 characters)');
  return v as string[];
}

function nameOf(v: Record<string, unknown>): string {
  if (typeof v.name !== 'string') throw new ArgError('args.name must be a string', ServiceErrorCode.InvalidTenant);
  return v.name;
}

/** `{requestsPerSec?, bytesMax?, keysMax?}`; the values' ranges are the directory's to check. */
function quotaOf(v: unknown): TenantQuota {
  if (!isMap(v)) throw new ArgError('args.quota must be a map {requestsPerSec?, bytesMax?, keysMax?}');
  const known = ['requestsPerSec', 'bytesMax', 'keysMax'];
  const extra = Object.keys(v).filter((k) => !known.includes(k));
  if (extra.length > 0) throw new ArgError(`args.quota has unknown fields ${JSON.stringify(extra.slice(0, 3)).slice(0, 100)}`);
  const out: { requestsPerSec?: number; bytesMax?: number; keysMax?: number } = {};
  for (const k of known as ('requestsPerSec' | 'bytesMax' | 'keysMax')[]) {
    const n = v[k];
    if (n === undefined) continue;
    if (typeof n !== 'number') throw new ArgError(`args.quota.${k} must be a number`);
    out[k] = n;
  }
  return out;
}

function withTenants<T>(s: MgmtServices, run: (t: TenantService) => Promise<Result<T>>): Promise<Result<T>> {
  if (s.tenants === undefined) return Promise.resolve(fail(ServiceErrorCode.NotFound, 'no tenants to manage: this node runs with --auth off'));
  return run(s.tenants);
}

function mapOk<T, U>(r: Result<T>, f: (v: T) => U): Result<U> {
  return r.ok ? ok(f(r.value)) : r;
}
