/**
 * The cluster's metadata: who the members are and where every shard's replicas go. It lives in a
 * raft group of its own, the meta group, with shard id `shards` (one past the data shards, so no
 * key is ever placed there), replicated on up to {@link META_REPLICAS_MAX} members and moved like
 * any shard. The whole state is one record, `meta/cluster` of the reserved tenant `_system`,
 * changed only by compare-and-set on its version: two changes made at once (two joins, a join
 * and a removal) cannot both win, and whoever loses reads again and retries.
 *
 * The record holds the targets: `placement[s]` is where shard s's replicas should be. Each shard's
 * own raft configuration is where they are; the shard's leader moves the one toward the other
 * (src/router/moves.ts), so the record never claims more than a target.
 *
 * Value: JSON {@link ClusterMeta}.
 */
import { Buffer } from 'node:buffer';
import type { NodeId, ShardId } from '../shards/raft/index.js';
import { replicasOf } from './placement.js';

/** Key of the record in `_system` on the meta group. */
export const META_RECORD_KEY = 'meta/cluster';
/** Most replicas of the meta group: more only slow its writes, which are rare. */
export const META_REPLICAS_MAX = 5;

/**
 * A member's state. `joining`: admitted, not yet heard from by the meta group's leader; it gets no
 * replica, so a join whose node never starts holds no shard's moves (silent past the dead-node
 * timeout, it is declared dead and then removed). `up`: holds replicas. `leaving`: asked to go (`members remove`); its
 * replicas move away, then it becomes `removed`. `dead`: unreachable past the dead-node timeout
 * (or removed while unreachable); its replicas are rebuilt elsewhere, then it becomes `removed`.
 * `removed`: gone for good; its raft id and endpoint id are never admitted again.
 */
export type MemberState = 'joining' | 'up' | 'leaving' | 'dead' | 'removed';

export interface MetaMember {
  /** Raft id, never reused. */
  readonly node: number;
  /** Iroh endpoint id (64 hex). */
  readonly id: string;
  /** Addresses it last gave (`ip:port`); discovery keeps fresher ones. */
  readonly addrs: readonly string[];
  readonly state: MemberState;
}

/** An invite to join (src/router/invites.ts): the SHA-256 of its secret, and when it expires. */
export interface MetaInvite {
  /** SHA-256 of the secret, 64 hex. */
  readonly hash: string;
  /** Expiry, ms since the epoch. */
  readonly expires: number;
}

export interface ClusterMeta {
  /** Random id of the cluster, fixed at its first start. */
  readonly cluster: string;
  /** Data shards (keys are placed by this count). */
  readonly shards: number;
  /** Replicas per data shard, when there are that many members up. */
  readonly replicas: number;
  /** The raft id the next member gets. */
  readonly nextNode: number;
  readonly members: readonly MetaMember[];
  /** Target replica set per shard, `shards + 1` of them: the last is the meta group's. */
  readonly placement: readonly (readonly number[])[];
  /**
   * `meta`: the reserved tenant `_system` lives on the meta group (clusters created by this version);
   * absent: on the data shards, placed by the unkeyed hash (clusters created before).
   */
  readonly system?: 'meta';
  /** Join invites not yet spent (absent: none). */
  readonly invites?: readonly MetaInvite[];
}

/** The meta group's shard id in a cluster of `shards` data shards. */
export const metaShardOf = (shards: number): ShardId => shards as ShardId;

/** Members whose replicas count: state `up`. */
export const upMembers = (m: ClusterMeta): NodeId[] => m.members.filter((x) => x.state === 'up').map((x) => x.node as NodeId);

/** Replicas the target wants for `shard`: the meta group up to {@link META_REPLICAS_MAX}, the others `replicas`. */
export const factorOf = (m: Pick<ClusterMeta, 'shards' | 'replicas'>, shard: number): number => (shard === m.shards ? META_REPLICAS_MAX : m.replicas);

/**
 * The founding replicas of every shard and of the meta group, from the founding members (raft ids
 * 1..n): the data shards as {@link replicasOf} always placed them, the meta group on up to five of
 * them. Every founder computes the same, so their first stores agree without talking.
 */
export function genesisPlacement(founders: readonly NodeId[], shards: number, replicas: number): NodeId[][] {
  const out: NodeId[][] = [];
  for (let s = 0; s < shards; s++) out.push(replicasOf(s as ShardId, founders, replicas));
  out.push(replicasOf(metaShardOf(shards), founders, Math.min(META_REPLICAS_MAX, founders.length)));
  return out;
}

/** The record's bytes. */
export function encodeMeta(m: ClusterMeta): Uint8Array {
  return Buffer.from(JSON.stringify(m), 'utf8');
}

/** The record's state, or a reason it is not one this version wrote. */
export function decodeMeta(bytes: Uint8Array): ClusterMeta | string {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    return `not JSON: ${(e as Error).message}`;
  }
  return checkMeta(v);
}

const STATES: readonly string[] = ['joining', 'up', 'leaving', 'dead', 'removed'];
const isCount = (x: unknown, min: number): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= min;

/** `v` as a ClusterMeta when every field is what this version writes, else why not. */
export function checkMeta(v: unknown): ClusterMeta | string {
  const o = v as Partial<Record<keyof ClusterMeta, unknown>> | null;
  if (typeof o !== 'object' || o === null) return 'not an object';
  if (typeof o.cluster !== 'string' || !isCount(o.shards, 1) || !isCount(o.replicas, 1) || !isCount(o.nextNode, 1))
    return 'bad cluster, shards, replicas or nextNode';
  if (!Array.isArray(o.members) || !Array.isArray(o.placement)) return 'members and placement must be arrays';
  const nodes = new Set<number>();
  for (const m of o.members as unknown[]) {
    const x = m as Partial<Record<keyof MetaMember, unknown>> | null;
    if (
      typeof x !== 'object' ||
      x === null ||
      !isCount(x.node, 1) ||
      typeof x.id !== 'string' ||
      !Array.isArray(x.addrs) ||
      !STATES.includes(x.state as string)
    )
      return 'bad member';
    if (x.node >= o.nextNode || nodes.has(x.node)) return `member ${x.node}: id taken or not below nextNode`;
    nodes.add(x.node);
  }
  if (o.placement.length !== o.shards + 1) return `placement has ${o.placement.length} sets for ${o.shards} shards and the meta group`;
  for (const set of o.placement as unknown[]) {
    if (!Array.isArray(set) || !set.every((n) => nodes.has(n as number))) return 'placement names a node that is not a member';
  }
  if (o.system !== undefined && o.system !== 'meta') return 'bad system';
  if (o.invites !== undefined) {
    if (!Array.isArray(o.invites)) return 'invites must be an array';
    for (const i of o.invites as unknown[]) {
      const x = i as Partial<Record<keyof MetaInvite, unknown>> | null;
      if (typeof x !== 'object' || x === null || typeof x.hash !== 'string' || !/^[0-9a-f]{64}$/.test(x.hash) || !isCount(x.expires, 0)) return 'bad invite';
    }
  }
  return o as unknown as ClusterMeta;
}
