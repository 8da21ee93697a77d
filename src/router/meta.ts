/**
 * Reading and changing the cluster's metadata record (src/router/meta-record.ts) through the
 * router: every change is a compare-and-set on the record's version, retried from a fresh read
 * when another change won in between, so changes made on different nodes at once all land, one
 * after the other, each on the state the previous one left.
 */
import { randomBytes } from 'node:crypto';
import { ServiceErrorCode } from '../api/index.js';
import type { Failure, Result } from '../api/index.js';
import type { NodeId } from '../shards/raft/index.js';
import { checkMeta, decodeMeta, encodeMeta, factorOf, genesisPlacement, upMembers } from './meta-record.js';
import type { ClusterMeta, MetaMember } from './meta-record.js';
import { rebalance } from './moves.js';
import type { Router } from './router.js';

/** The record as read: its state and version. */
export interface MetaView {
  readonly meta: ClusterMeta;
  readonly version: number;
}

/** What a change returns: the new state, `undefined` for "nothing to change", or a refusal. */
export type MetaChange = ClusterMeta | undefined | Failure;

/** Tries of one change that keeps meeting concurrent ones before it gives up (Conflict). */
const UPDATE_TRIES = 8;

const fail = (code: ServiceErrorCode, message: string): Failure => ({ ok: false, code, message });

export class MetaClient {
  /**
   * The last record decoded, with its version and bytes: cluster life reads the record every round
   * (each second), and decoding every shard's replica set each time was a large share of an idle
   * node's main thread. A read that finds the same version and the same bytes returns this view
   * (the same object: callers treat records as immutable).
   */
  private last: { readonly bytes: Uint8Array; readonly view: MetaView } | undefined;
  /** Reads answered from {@link last} without decoding; only grows. */
  decodesSkipped = 0;

  constructor(private readonly router: Pick<Router, 'metaGet' | 'metaPut'>) {}

  /**
   * The record, `undefined` before it was first written; Internal for a record this version
   * cannot read. Linearizable by default; `stale` (a replica's applied state, no quorum round, so
   * an idle meta group stays quiet) for watching it: what is read may lag, never goes back, and
   * every change is made by {@link update} on a linearizable read anyway.
   */
  async read(consistency: 'linearizable' | 'stale' = 'linearizable'): Promise<Result<MetaView | undefined>> {
    const r = await this.router.metaGet(consistency);
    if (!r.ok) return r;
    if (!r.value.found) return { ok: true, value: undefined };
    const bytes = r.value.value;
    const last = this.last;
    if (last !== undefined && last.view.version === r.value.version && Buffer.compare(last.bytes, bytes) === 0) {
      this.decodesSkipped++;
      return { ok: true, value: last.view };
    }
    const m = decodeMeta(bytes);
    if (typeof m === 'string') return fail(ServiceErrorCode.Internal, `the cluster's meta record is unreadable: ${m}`);
    const view = { meta: m, version: r.value.version };
    this.last = { bytes: Uint8Array.from(bytes), view };
    return { ok: true, value: view };
  }

  /**
   * Applies `change` to the current record and writes the result if nobody changed it meanwhile,
   * retrying from a fresh read otherwise. `change` sees `undefined` before the first write. The
   * view written (or read, when `change` had nothing to change), or the refusal; Conflict after
   * {@link UPDATE_TRIES} lost races.
   */
  async update(change: (cur: ClusterMeta | undefined) => MetaChange): Promise<Result<MetaView>> {
    for (let i = 0; i < UPDATE_TRIES; i++) {
      const cur = await this.read();
      if (!cur.ok) return cur;
      const next = change(cur.value?.meta);
      if (next !== undefined && 'ok' in next) return next;
      if (next === undefined) {
        if (cur.value === undefined) return fail(ServiceErrorCode.NotFound, 'the cluster has no meta record yet');
        return { ok: true, value: cur.value };
      }
      const bad = checkMeta(next);
      if (typeof bad === 'string') return fail(ServiceErrorCode.Internal, `refusing to write a bad meta record: ${bad}`);
      const w = await this.router.metaPut(encodeMeta(next), cur.value?.version ?? 0);
      if (!w.ok) return w;
      if (w.value.swapped) return { ok: true, value: { meta: next, version: w.value.version } };
    }
    return fail(ServiceErrorCode.MemberConflict, `the meta record kept changing: gave up after ${UPDATE_TRIES} tries`);
  }
}

/** The first record of a cluster founded by `founders` (raft ids 1..n in endpoint id order). */
export function foundingMeta(p: { founders: readonly { node: NodeId; id: string }[]; shards: number; replicas: number; systemOnMeta?: boolean }): ClusterMeta {
  const ids = p.founders.map((f) => f.node);
  return {
    cluster: randomBytes(8).toString('hex'),
    shards: p.shards,
    replicas: p.replicas,
    nextNode: Math.max(...ids) + 1,
    members: p.founders.map((f) => ({ node: f.node, id: f.id, addrs: [], state: 'up' })),
    placement: genesisPlacement(ids, p.shards, p.replicas),
    ...(p.systemOnMeta === true ? { system: 'meta' as const } : {}),
  };
}

/** `m` with the targets recomputed for its members now up (few moves: src/router/moves.ts). */
export function replan(m: ClusterMeta): ClusterMeta {
  const placement = rebalance(m.placement as NodeId[][], upMembers(m), (s) => factorOf(m, s));
  return { ...m, placement };
}

/**
 * `m` with endpoint `id` admitted as a new member: the next raft id, state `joining` (the meta
 * group's leader makes it `up`, and the targets give it replicas, once it hears from it); `m` unchanged (undefined) when it is a member already (a retried join). Forbidden
 * for an endpoint that was removed: a removed member never comes back under its old identity.
 */
export function admit(m: ClusterMeta, id: string, addrs: readonly string[]): MetaChange {
  const had = memberOf(m, id);
  if (had !== undefined) {
    if (had.state === 'removed')
      return fail(ServiceErrorCode.Forbidden, `endpoint ${id} was removed from this cluster (raft id ${had.node}); start it with a new key to join again`);
    return undefined;
  }
  const member: MetaMember = { node: m.nextNode, id, addrs: [...addrs], state: 'joining' };
  return { ...m, nextNode: m.nextNode + 1, members: [...m.members, member] };
}

/**
 * The member entry of endpoint `id`: its latest (highest raft id), since an endpoint that came
 * back without its stores has a new raft id beside its old, dead one. Undefined for a stranger.
 */
export function memberOf(m: Pick<ClusterMeta, 'members'>, id: string): MetaMember | undefined {
  let out: MetaMember | undefined;
  for (const x of m.members) if (x.id === id && (out === undefined || x.node > out.node)) out = x;
  return out;
}

/**
 * `m` with member endpoint `id`, which ran as raft id `old`, back as a new replica: a node that
 * lost its stores but kept its key must never vote as the replica it was (it forgot its votes and
 * the entries it acknowledged). Raft id `old` is declared dead (its replicas are rebuilt from the
 * others; it is removed once no target names it) and the endpoint is admitted again under the next
 * raft id, with `addrs`. Unchanged (undefined) when that happened already (the endpoint's latest
 * entry is newer than `old`: a retried request); NotFound for an endpoint that is not a member,
 * Forbidden for a removed one.
 */
export function readmit(m: ClusterMeta, id: string, addrs: readonly string[], old: number): MetaChange {
  const had = memberOf(m, id);
  if (had === undefined) return fail(ServiceErrorCode.NotFound, `endpoint ${id} is not a member of this cluster`);
  if (had.state === 'removed') return fail(ServiceErrorCode.Forbidden, `endpoint ${id} was removed from this cluster (raft id ${had.node})`);
  if (had.node > old) return undefined;
  if (had.node !== old) return fail(ServiceErrorCode.NotFound, `endpoint ${id} is member ${had.node}, not ${old}`);
  const members = m.members.map((x) => (x.node === old ? { ...x, state: 'dead' as const } : x));
  const member: MetaMember = { node: m.nextNode, id, addrs: [...addrs], state: 'joining' };
  return replan({ ...m, nextNode: m.nextNode + 1, members: [...members, member] });
}

/**
 * `m` with `node` set to `state` and the targets replanned. NotFound for a node that is not a
 * member, Conflict when removing it would leave no member up.
 */
export function setState(m: ClusterMeta, node: number, state: MetaMember['state']): MetaChange {
  const had = m.members.find((x) => x.node === node);
  if (had === undefined) return fail(ServiceErrorCode.NotFound, `node ${node} is not a member`);
  if (had.state === state || had.state === 'removed') return undefined;
  const members = m.members.map((x) => (x.node === node ? { ...x, state } : x));
  if (state !== 'up' && !members.some((x) => x.state === 'up')) return fail(ServiceErrorCode.MemberConflict, `node ${node} is the last member up`);
  return replan({ ...m, members });
}
