/**
 * A node's liveness in the simulator's moves mode, by the router's own bookkeeping
 * (src/router/liveness.ts) instead of a perfect failure detector: peers are the members, each
 * heard at every tick of this node while it runs and both directions of the link deliver; a peer
 * silent for longer than the timeout is gone, and the wake rounds it owes name the quiet replicas
 * here to wake, as a node's router names them to its workers. The layout (members and the targets'
 * replica sets) follows the planner's at each tick, as a node follows its meta group.
 *
 * Modeled this way, the shards a wake names come from the same code as in a node: a peer that the
 * targets already moved off (leaving, dead) while it still leads quiet groups here is what the
 * perfect detector could not show.
 */
import { Liveness } from '../../src/router/liveness.js';
import type { WakeRequest } from '../../src/router/liveness.js';
import type { NodeId, ShardId } from '../../src/shards/raft/types.js';
import { nodeId } from '../../src/shards/raft/types.js';

/** What the node's liveness reads of the simulated cluster. */
export interface ShellLivenessHost {
  /** Members a node's router knows (every member but those not joined yet). */
  members(): readonly number[];
  /** The targets' replica set of every group. */
  targets(): readonly (readonly number[])[];
  /** The leader the replica of `group` on this node last reported (0 when none); undefined when not hosted. */
  leadOf(group: number): number | undefined;
  /** Groups hosted on this node. */
  hosted(): readonly number[];
  /** `peer` runs and the link between it and this node delivers both ways. */
  hears(peer: number): boolean;
}

export class ShellLiveness {
  private readonly liveness: Liveness;
  /** The layout last handed to the bookkeeping, to hand it a new one only when it changed. */
  private layoutKey: string;

  constructor(
    private readonly self: number,
    private readonly host: ShellLivenessHost,
    timeoutMs: number,
    now: number,
  ) {
    const { peers, local, key } = this.layout();
    this.layoutKey = key;
    this.liveness = new Liveness({
      self: nodeId(self),
      peers,
      local,
      localLead: (s) => host.leadOf(s),
      ledBy: (peer) => host.hosted().filter((g) => host.leadOf(g) === peer) as ShardId[],
      timeoutMs,
      wakeGapMs: timeoutMs,
      now,
    });
  }

  /** One tick of this node at `now`: the layout followed, peers heard, the wake rounds due. */
  tick(now: number): WakeRequest[] {
    const { peers, local, key } = this.layout();
    if (key !== this.layoutKey) {
      this.layoutKey = key;
      this.liveness.setLayout(peers, local, now);
    }
    for (const p of peers) if (p !== this.self && this.host.hears(p)) this.liveness.onTraffic(p, now);
    this.liveness.check(now);
    return this.liveness.due(now);
  }

  private layout(): { peers: NodeId[]; local: { shard: ShardId; voters: NodeId[] }[]; key: string } {
    const peers = this.host.members().map(nodeId);
    const local = this.host.targets().flatMap((t, g) => (t.includes(this.self) ? [{ shard: g as ShardId, voters: t.map(nodeId) }] : []));
    return { peers, local, key: JSON.stringify([peers, local]) };
  }
}
