/**
 * Who the members are and where each shard's replicas are placed, as this node knows them now
 * (the founding placement at start, then the meta group's record): the router's lookups by raft
 * id, by endpoint id and by shard, replaced whole at every change.
 */
import type { NodeId, ShardId } from '../shards/raft/index.js';

export interface Member {
  readonly nodeId: NodeId;
  /** The member's Iroh endpoint id. */
  readonly peerId: string;
}

export class Layout {
  private members: readonly Member[] = [];
  private readonly byNode = new Map<NodeId, Member>();
  private readonly byPeer = new Map<string, Member>();
  /** Per shard (the meta group last), its replica set as placed. */
  private sets: (readonly NodeId[])[] = [];
  /**
   * Per shard: the replicas to try when its leader is unknown or cannot be reached, this node
   * first when it is placed here, then the placement order.
   */
  private order: NodeId[][] = [];

  /** `shards`: data shards; every layout has one more set, the meta group's. */
  constructor(
    private readonly self: NodeId,
    private readonly shards: number,
  ) {}

  /**
   * Replaces the members and the replica sets (`shards + 1`). Members are listed by raft id, so a
   * member that rejoined under a new raft id (same endpoint) is found by its endpoint as the new one.
   */
  set(members: readonly Member[], sets: readonly (readonly NodeId[])[]): void {
    if (sets.length !== this.shards + 1) throw new RangeError(`router: ${sets.length} replica sets for ${this.shards} shards and the meta group`);
    this.members = [...members];
    this.byNode.clear();
    this.byPeer.clear();
    for (const m of members) {
      this.byNode.set(m.nodeId, m);
      this.byPeer.set(m.peerId, m);
    }
    const self = this.self;
    this.sets = sets.map((r) => [...r]);
    this.order = sets.map((r) => (r.includes(self) ? [self, ...r.filter((id) => id !== self)] : [...r]));
  }

  /** Every member, in raft id order. */
  all(): readonly Member[] {
    return this.members;
  }

  /** Member `node`; undefined for one that is not a member now. */
  byRaftId(node: NodeId): Member | undefined {
    return this.byNode.get(node);
  }

  /** The member with endpoint id `peerId`; undefined for a stranger. */
  byEndpoint(peerId: string): Member | undefined {
    return this.byPeer.get(peerId);
  }

  /** Whether `shard` is placed on this node. */
  placedHere(shard: ShardId): boolean {
    return this.sets[shard]?.includes(this.self) === true;
  }

  /** The replicas of `shard` to try, this node first when placed here. */
  replicaOrder(shard: ShardId): readonly NodeId[] {
    return this.order[shard] ?? [];
  }

  /** Shards (the meta group among them) placed on this node, with their replica sets. */
  placed(): { shard: ShardId; voters: NodeId[] }[] {
    const out: { shard: ShardId; voters: NodeId[] }[] = [];
    this.sets.forEach((voters, s) => {
      if (voters.includes(this.self)) out.push({ shard: s as ShardId, voters: [...voters] });
    });
    return out;
  }
}
