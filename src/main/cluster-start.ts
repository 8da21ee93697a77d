/**
 * Who this node is in its cluster at start, and which replicas it opens, in the three ways a
 * node starts:
 *
 * - **A founder** (`--peers`, or alone): the members are this node and the tickets' nodes, raft
 *   ids 1..n in endpoint id order, as always. At its first start it creates the founding replicas
 *   (src/router/meta-record.ts genesisPlacement), the meta group's among them when it is one of
 *   the first five.
 * - **A new node** (`--join <ticket>` on an empty directory): a member admits it
 *   (src/main/cluster-join.ts); it records its raft id in `cluster.json` and opens nothing yet.
 * - **A restart**: it opens exactly the replicas its stores hold. Never a founding replica again:
 *   a replica that moved away and was dropped must not come back as a founding voter (it would
 *   vote with a configuration and a log it no longer has). A founder's directory from before the
 *   meta group gets the meta group's founding replica once (`cluster.json` `meta: true` after).
 *
 * Members and replica sets come from `meta.json` (the meta group's record as last read) when there
 * is one, so a restart dials members that joined later.
 */
import type { Logger } from 'pino';
import type { ShardSpec } from '../shards/host.js';
import type { NodeId, ShardId } from '../shards/raft/index.js';
import type { Member } from '../router/router.js';
import { genesisPlacement, metaShardOf } from '../router/meta-record.js';
import { memberOf } from '../router/meta.js';
import type { ClusterMeta } from '../router/meta-record.js';
import type { Transport } from '../io/transport/index.js';
import { parseJoin } from '../io/ticket.js';
import type { NodeConfig } from './config.js';
import type { DataDir } from './data-dir.js';
import { NodeError } from './node-error.js';
import { DataDirError, syncDir } from './data-dir.js';
import type { ClusterLayout } from './data-dir.js';
import { readPeersFile } from './peers-file.js';
import { mkdirSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { PLACEMENT_PENDING, startingPlacement } from './placement.js';
import type { StartingPlacement } from './placement.js';
import { readMetaFile, writeMetaFile } from './meta-file.js';
import { askSelf, requestJoin } from './cluster-join.js';
import type { JoinInfo, SelfEntry } from './cluster-join.js';

export interface ClusterStart {
  readonly self: NodeId;
  /** The members to route to and accept raft traffic from until the meta group answers. */
  readonly members: readonly Member[];
  /** Founding members when this node is one: it may write the meta group's first record. */
  readonly founders: readonly { node: NodeId; id: string }[] | undefined;
  readonly shards: number;
  /** Replicas per shard wanted (the meta record's; the founders' `--replicas`). */
  readonly replicas: number;
  /** Every shard's replica set (`shards + 1`, the meta group's last) until the meta group answers. */
  readonly sets: NodeId[][];
  readonly placement: StartingPlacement;
  /** Replicas to create or open at the pool's start. */
  readonly specs: ShardSpec[];
  /** Open every replica the stores hold (a restart). */
  readonly openStored: boolean;
  /** The meta group's founding replica, to create once in a founder's directory from before it. */
  readonly createMeta: ShardSpec | undefined;
}

/** The start of a node on `dir` (see the module comment). NodeError `JoinFailed`, `Removed`; DataDirError from the checks. */
export async function clusterStart(
  cfg: NodeConfig,
  p: {
    dir: DataDir;
    transport: Transport;
    peers: readonly { id: string; addrs: string[] }[];
    log: Logger;
    layout: (selfPeer: string, peers: readonly { id: string }[]) => { members: Member[]; self: NodeId };
  },
): Promise<ClusterStart> {
  const { dir, log } = p;
  let have = dir.readCluster();
  if (have === undefined && dir.keyServed()) {
    // Everything but the key is gone: this identity has served, so it comes back as a new replica.
    await rejoin(
      cfg,
      p,
      undefined,
      readMetaFile(cfg.data).stored?.meta,
      `${dir.clusterPath} is gone, but ${dir.keyPath} says this identity has served a replica`,
    );
    return joinedStart(cfg, p, readMetaFile(cfg.data).stored?.meta);
  }
  if (have === undefined && cfg.join !== undefined) {
    const ticket = decodeJoinTicket(cfg.join);
    const info = await requestJoin(p.transport, ticket, p.transport.addrs(), 60_000);
    writeMetaFile(cfg.data, info.version, info.meta);
    dir.writeCluster(joinedLayout(info));
    log.info({ node: info.node, cluster: info.meta.cluster, members: info.meta.members.length }, 'joined the cluster');
    have = dir.readCluster();
  } else if (have !== undefined && cfg.join !== undefined) {
    log.info('--join ignored: this data directory already belongs to a cluster');
  }
  const stored = readMetaFile(cfg.data);
  if (stored.why !== undefined) log.warn({ err: stored.why }, 'ignoring the stored cluster metadata');
  const meta = stored.stored?.meta;
  try {
    if (have?.node !== undefined) return joinedStart(cfg, p, meta);
    return founderStart(cfg, p, meta);
  } catch (e) {
    if (!(e instanceof DataDirError && e.code === 'StoresLost') || have === undefined || (have.node === undefined && p.peers.length === 0)) throw e;
    await rejoin(cfg, p, have, meta, e.message);
    return joinedStart(cfg, p, readMetaFile(cfg.data).stored?.meta);
  }
}

/**
 * The amnesia guard's way back: this node's stores are gone (a lost disk) but its key is here, so
 * it must never vote as the replica it was (it forgot its votes and the entries it acknowledged).
 * What is left of its stores is moved aside (`retired-<ms>/`: they hold replicas of its old raft
 * id), and a member readmits its endpoint under a new raft id (`members.rejoin`): the old id is
 * declared dead, its replicas are rebuilt from the others, and this node gets new replicas that
 * catch up from their leaders.
 *
 * With `cluster.json` lost as well (`have` undefined), the old raft id is what the members say
 * this endpoint is now (`members.self`), and the members asked are those of `--peers` and `--join`.
 * NodeError `JoinFailed` when no member readmits it, `Removed` when they say it was removed;
 * DataDirError `StoresLost` when there is no member to ask.
 */
async function rejoin(
  cfg: NodeConfig,
  p: Parameters<typeof clusterStart>[1],
  have: ClusterLayout | undefined,
  meta: ClusterMeta | undefined,
  why: string,
): Promise<void> {
  const { dir, log, transport } = p;
  const asked = new Map<string, string[]>();
  const ask = (id: string, addrs: readonly string[]): void => {
    if (id !== transport.id) asked.set(id, [...new Set([...(asked.get(id) ?? []), ...addrs])]);
  };
  for (const m of meta?.members ?? []) if (m.state !== 'removed' && m.addrs.length > 0) ask(m.id, m.addrs);
  for (const t of p.peers) ask(t.id, t.addrs);
  for (const [id, g] of Object.entries(readPeersFile(cfg.data).stored?.members ?? {})) ask(id, g.addrs);
  if (cfg.join !== undefined) {
    const t = decodeJoinTicket(cfg.join);
    ask(t.id, t.addrs);
  }
  if (asked.size === 0)
    throw new DataDirError(
      'StoresLost',
      `${why}; it has no member to readmit it: start it with its --peers or --join <ticket of a member>, or restore the directory from a backup`,
    );
  const old = have === undefined ? await currentId(transport, asked, why) : (have.node ?? p.layout(transport.id, p.peers).self);
  const retired = join(dir.path, `retired-${Date.now()}`);
  mkdirSync(retired, { mode: 0o700 });
  for (const f of readdirSync(dir.path)) if (/^worker-\d+$/.test(f)) renameSync(join(dir.path, f), join(retired, f));
  syncDir(dir.path);
  log.warn({ node: old, retired, why }, 'this node lost its stores: it rejoins its cluster as a new replica under a new raft id');
  let last: unknown;
  for (const [id, addrs] of asked) {
    try {
      const info = await requestJoin(transport, { id, addrs }, transport.addrs(), 20_000, old);
      writeMetaFile(cfg.data, info.version, info.meta);
      if (have !== undefined) {
        const { workers: _gone, ...rest } = have;
        dir.writeCluster({ ...rest, node: info.node, meta: true });
      } else dir.writeCluster({ ...joinedLayout(info), meta: true });
      log.warn({ old, node: info.node }, 'rejoined as a new replica');
      return;
    } catch (e) {
      last = e;
    }
  }
  throw last instanceof NodeError ? last : new NodeError('JoinFailed', `${why}; no member readmitted this node (${asked.size} asked)`);
}

/**
 * This endpoint's raft id now, as the members in `asked` say (its newest entry in their records).
 * NodeError `JoinFailed` when none answers or none lists it, `Removed` when it was removed.
 */
async function currentId(transport: Transport, asked: ReadonlyMap<string, string[]>, why: string): Promise<number> {
  const entries = await askSelf(transport, [...asked.keys()], (id) => asked.get(id) ?? [], 10_000);
  const newest = entries.reduce<SelfEntry | undefined>((a, e) => (a === undefined || e.node > a.node ? e : a), undefined);
  if (newest === undefined)
    throw new NodeError(
      'JoinFailed',
      `${why}; none of the ${asked.size} members asked lists this endpoint, so it cannot rejoin as a new replica: is it up, and of this cluster?`,
    );
  if (newest.state === 'removed')
    throw new NodeError('Removed', `node ${newest.node} was removed from its cluster; start a new node with another --data directory and --join`);
  return newest.node;
}

/** `cluster.json` of a node a member just admitted (`info`): it hosts nothing yet. */
function joinedLayout(info: JoinInfo): ClusterLayout {
  return {
    shards: info.meta.shards,
    members: [],
    replicas: info.meta.replicas,
    node: info.node,
    placement: PLACEMENT_PENDING,
    // The cluster's choice of where `_system` lives, not this version's.
    ...(info.meta.system === 'meta' ? { system: 'meta' as const } : {}),
  };
}

/** The start of a node that joined (`cluster.json` has its raft id), from `meta`, the record it last read. */
function joinedStart(cfg: NodeConfig, p: Parameters<typeof clusterStart>[1], meta: ClusterMeta | undefined): ClusterStart {
  const { dir, log } = p;
  const selfId = p.transport.id;
  const have = dir.readCluster()!;
  const self = have.node as NodeId;
  const shards = have.shards;
  dir.checkStores(have);
  if (meta === undefined)
    throw new NodeError('JoinFailed', `${dir.path}: cluster.json says this node joined as ${self}, but meta.json, the cluster's members, is missing`);
  const me = memberOf(meta, selfId);
  if (me?.state === 'removed')
    throw new NodeError('Removed', `node ${self} was removed from cluster ${meta.cluster}; start a new node with another --data directory and --join`);
  return {
    self,
    members: membersOf(meta),
    founders: undefined,
    shards,
    replicas: meta.replicas,
    sets: meta.placement.map((s) => [...s] as NodeId[]),
    placement: startingPlacement(dir, log, have.system === 'meta', cfg.unkeyedPlacement === 'allow'),
    specs: [],
    openStored: true,
    createMeta: undefined,
  };
}

function founderStart(cfg: NodeConfig, p: Parameters<typeof clusterStart>[1], meta: ClusterMeta | undefined): ClusterStart {
  const { dir, log } = p;
  const { members, self } = p.layout(p.transport.id, p.peers);
  const founders = members.map((m) => ({ node: m.nodeId, id: m.peerId }));
  const replicas = Math.min(cfg.replicas, members.length);
  const before = dir.readCluster();
  const first = before?.workers === undefined;
  // A cluster founded by this version keeps `_system` on its meta group; one founded before keeps it
  // where its records are (checkCluster writes `system` into a new directory only).
  const systemOnMeta = before === undefined || before.system === 'meta';
  const placement = startingPlacement(dir, log, systemOnMeta, cfg.unkeyedPlacement === 'allow');
  dir.checkCluster({ shards: cfg.shards, members: members.map((m) => m.peerId), replicas, placement: PLACEMENT_PENDING, system: 'meta' });
  if (meta !== undefined && memberOf(meta, p.transport.id)?.state === 'removed')
    throw new NodeError('Removed', `node ${self} was removed from cluster ${meta.cluster}; start a new node with another --data directory and --join`);
  const genesis = genesisPlacement(
    founders.map((f) => f.node),
    cfg.shards,
    cfg.replicas,
  );
  const metaShard = metaShardOf(cfg.shards);
  const specs: ShardSpec[] = [];
  if (first) genesis.forEach((voters, s) => voters.includes(self) && specs.push({ shard: s as ShardId, voters }));
  const metaGenesis = genesis[metaShard]!;
  const createMeta = !first && before?.meta !== true && metaGenesis.includes(self) ? { shard: metaShard, voters: metaGenesis } : undefined;
  return {
    self,
    members: meta === undefined ? members : membersOf(meta),
    founders,
    shards: cfg.shards,
    replicas: meta?.replicas ?? cfg.replicas,
    sets: meta === undefined ? genesis : meta.placement.map((s) => [...s] as NodeId[]),
    placement,
    specs,
    openStored: !first,
    createMeta,
  };
}

/** The members a node talks to: every one not removed. */
export function membersOf(meta: ClusterMeta): Member[] {
  return meta.members.filter((m) => m.state !== 'removed').map((m) => ({ nodeId: m.node as NodeId, peerId: m.id }));
}

function decodeJoinTicket(t: string): { id: string; addrs: string[]; invite?: string } {
  try {
    return parseJoin(t);
  } catch (e) {
    throw new NodeError('InvalidTicket', `--join: ${e instanceof Error ? e.message : String(e)}`);
  }
}
