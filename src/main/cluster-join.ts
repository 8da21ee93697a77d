/**
 * Joining a cluster, both sides.
 *
 * The new node (`iroh-raft start --join <ticket>` on an empty data directory) starts its transport,
 * connects to the ticket's member over `iroh-raft-mgmt/0` with its own endpoint (so the member
 * sees who asks), and sends `members.join` with the addresses it listens on. The member admits it
 * in the meta group's record (the next raft id, state up, targets replanned) and answers with the
 * record; the new node keeps it (`meta.json`), records its raft id in `cluster.json`, and starts
 * as a member that hosts nothing yet: the meta group's targets then give it replicas, which the
 * shards' leaders add as learners and promote once caught up.
 *
 * A join retried after an answer was lost is admitted once: the member finds the endpoint already
 * listed and answers the same raft id. With auth on, a stranger's join must carry an invite
 * (src/router/invites.ts), which `--join` takes after the ticket.
 */
import { ServiceErrorCode } from '../api/index.js';
import type { Failure, Result } from '../api/index.js';
import { MGMT_ALPN_BYTES, MgmtClient, MgmtClientError } from '../io/mgmt/index.js';
import { joinString, normalizeAddr } from '../io/ticket.js';
import type { Transport } from '../io/transport/index.js';
import { admit, memberOf, readmit, setState } from '../router/meta.js';
import type { MetaChange, MetaClient, MetaView } from '../router/meta.js';
import { addInvite, admitByInvite, inviteHash, newInviteSecret } from '../router/invites.js';
import { checkMeta } from '../router/meta-record.js';
import type { ClusterMeta } from '../router/meta-record.js';
import { NodeError } from './node-error.js';

/** What a member answers a join with. */
export interface JoinInfo {
  /** The new member's raft id. */
  readonly node: number;
  /** The meta record's version and state after the admission. */
  readonly version: number;
  readonly meta: ClusterMeta;
}

const fail = (code: ServiceErrorCode, message: string): Failure => ({ ok: false, code, message });

/**
 * The member's side of `members.join`: admits `endpointId` with `addrs` (checked and normalized),
 * spending the invite whose secret is `invite` when one is given (src/router/invites.ts).
 */
export function admitJoin(meta: MetaClient, endpointId: string, addrs: readonly string[], invite?: string): Promise<Result<JoinInfo>> {
  if (invite === undefined) return admitWith(meta, endpointId, addrs, (cur, clean) => admit(cur, endpointId, clean));
  const hash = inviteHash(invite);
  return admitWith(meta, endpointId, addrs, (cur, clean) => admitByInvite(cur, endpointId, clean, hash, Date.now()));
}

/**
 * A new invite, valid for `ttlMs`: recorded (hashed) in the meta record, answered as the string to
 * pass to `--join` (`ticket`, a dot, the secret) with its expiry.
 */
export async function createInvite(meta: MetaClient, ticket: string, ttlMs: number): Promise<Result<{ join: string; expires: string }>> {
  const secret = newInviteSecret();
  const now = Date.now();
  const expires = now + ttlMs;
  const w = await meta.update((cur) =>
    cur === undefined ? fail(ServiceErrorCode.NotReady, 'the cluster has no meta record yet: try again') : addInvite(cur, inviteHash(secret), expires, now),
  );
  if (!w.ok) return w;
  return { ok: true, value: { join: joinString(ticket, secret), expires: new Date(expires).toISOString() } };
}

/** The member's side of `members.rejoin`: member `endpointId`, raft id `old`, back as a new replica (meta.ts readmit). */
export function admitRejoin(meta: MetaClient, endpointId: string, addrs: readonly string[], old: number): Promise<Result<JoinInfo>> {
  return admitWith(meta, endpointId, addrs, (cur, clean) => readmit(cur, endpointId, clean, old));
}

async function admitWith(
  meta: MetaClient,
  endpointId: string,
  addrs: readonly string[],
  change: (cur: ClusterMeta, clean: string[]) => MetaChange,
): Promise<Result<JoinInfo>> {
  let clean: string[];
  try {
    clean = [...new Set(addrs.map(normalizeAddr))];
  } catch (e) {
    return fail(ServiceErrorCode.BadRequest, `args.addrs: ${(e as Error).message}`);
  }
  const w = await meta.update((cur) =>
    cur === undefined ? fail(ServiceErrorCode.NotReady, 'the cluster has no meta record yet: try again') : change(cur, clean),
  );
  if (!w.ok) return w;
  const me = memberOf(w.value.meta, endpointId);
  if (me === undefined) return fail(ServiceErrorCode.Internal, 'the admitted endpoint is missing from the meta record');
  return { ok: true, value: { node: me.node, version: w.value.version, meta: w.value.meta } };
}

/**
 * The member side of `members.remove`: member `ref` (raft id or endpoint id) starts leaving (its
 * replicas move away, then it is removed), or, when this node did not hear from it when asked, is
 * declared dead (its replicas are rebuilt from the others at once). `upNow` gives the members
 * this node hears from; it is read before the record, since reading the record may wait for the
 * meta group to elect a leader (its leader may be the member in question) longer than the
 * liveness timeout. `learn` takes the record as written (or read, when there was nothing to change).
 */
export async function startRemoval(
  meta: MetaClient,
  ref: number | string,
  upNow: () => ReadonlySet<number>,
  learn: (v: MetaView) => void = () => undefined,
): Promise<Result<{ node: number; state: string }>> {
  const up = upNow();
  const cur = await meta.read();
  if (!cur.ok) return cur;
  const m = cur.value === undefined ? undefined : typeof ref === 'number' ? cur.value.meta.members.find((x) => x.node === ref) : memberOf(cur.value.meta, ref);
  if (m === undefined) return fail(ServiceErrorCode.NotFound, `no member ${JSON.stringify(ref)}`);
  const state = up.has(m.node) ? 'leaving' : 'dead';
  const w = await meta.update((c) => (c === undefined ? undefined : setState(c, m.node, state)));
  if (!w.ok) return w;
  learn(w.value);
  const now = w.value.meta.members.find((x) => x.node === m.node);
  return { ok: true, value: { node: m.node, state: now?.state ?? state } };
}

/** One entry of an endpoint in the cluster's record, as `members.self` answers it. */
export interface SelfEntry {
  readonly node: number;
  readonly state: string;
}

/**
 * What `members` (endpoint ids, dialed at `addrsOf`) say of this node's endpoint (`members.self`
 * over `iroh-raft-mgmt/0`, asked of all of them at once): every entry each one that answers
 * within `timeoutMs` (connect included) gives. Members that do not answer, or answer something else, are left out;
 * none answering gives an empty list.
 */
export async function askSelf(
  transport: Transport,
  members: readonly string[],
  addrsOf: (id: string) => readonly string[],
  timeoutMs: number,
): Promise<SelfEntry[]> {
  const asks = members.map(async (id): Promise<SelfEntry[]> => {
    const conn = await transport.connect(id, addrsOf(id), MGMT_ALPN_BYTES);
    const client = MgmtClient.over(conn);
    try {
      const reply = await client.call('members.self', undefined, timeoutMs);
      return reply.ok ? selfEntriesOf(reply.result) : [];
    } finally {
      await client.close();
    }
  });
  // A connect to an unreachable member fails only after tens of seconds: none may hold the others.
  const answers = await Promise.allSettled(
    asks.map(async (ask) => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('no answer in time')), timeoutMs)));
      try {
        return await Promise.race([ask, late]);
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return answers.flatMap((a) => (a.status === 'fulfilled' ? a.value : []));
}

function selfEntriesOf(v: unknown): SelfEntry[] {
  const entries = (v as { entries?: unknown } | null)?.entries;
  if (!Array.isArray(entries)) return [];
  return entries.filter((e): e is SelfEntry => typeof (e as SelfEntry | null)?.node === 'number' && typeof (e as SelfEntry).state === 'string');
}

/**
 * The new node's side: asks the member at `ticket` to admit this node's endpoint (the transport's)
 * with `addrs`, trying again for up to `timeoutMs` while the member cannot answer yet. NodeError
 * `JoinFailed` with the member's reason otherwise.
 */
export async function requestJoin(
  transport: Transport,
  ticket: { id: string; addrs: string[]; invite?: string },
  addrs: readonly string[],
  timeoutMs: number,
  rejoinAs?: number,
): Promise<JoinInfo> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const conn = await transport.connect(ticket.id, ticket.addrs, MGMT_ALPN_BYTES);
      const client = MgmtClient.over(conn);
      try {
        const left = Math.max(1000, deadline - Date.now());
        const reply =
          rejoinAs === undefined
            ? await client.call('members.join', ticket.invite === undefined ? { addrs } : { addrs, invite: ticket.invite }, left)
            : await client.call('members.rejoin', { addrs, old: rejoinAs }, left);
        if (reply.ok) return joinInfoOf(reply.result);
        last = `${reply.error.code}: ${reply.error.message}`;
        // Only a member that is not ready yet is worth asking again.
        if (!['NotReady', 'Timeout', 'NotLeader', 'Unreachable', 'ShuttingDown'].includes(reply.error.code)) break;
      } finally {
        await client.close();
      }
    } catch (e) {
      last = e instanceof MgmtClientError || e instanceof Error ? e.message : String(e);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new NodeError('JoinFailed', `--join: the member ${ticket.id.slice(0, 12)}... did not admit this node: ${last}`);
}

function joinInfoOf(v: unknown): JoinInfo {
  const o = v as { node?: unknown; version?: unknown; meta?: unknown } | null;
  const meta = checkMeta(o?.meta);
  if (typeof o?.node !== 'number' || typeof o.version !== 'number' || typeof meta === 'string')
    throw new NodeError('JoinFailed', `--join: the member answered something that is not an admission${typeof meta === 'string' ? ` (${meta})` : ''}`);
  return { node: o.node, version: o.version, meta };
}
