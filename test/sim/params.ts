/**
 * Swarm testing: every seed draws its own cluster shape, network, fault rates and core limits, so
 * the seeds together cover combinations no hand-written scenario would (Groce et al., "Swarm
 * Testing"). Some knobs are often zero on purpose: a fault that is always on hides the bugs that
 * need calm stretches to show.
 */
import { rebalance } from '../../src/router/moves.js';
import type { Prng } from '../../src/shards/raft/prng.js';
import { nodeId } from '../../src/shards/raft/types.js';

export interface SimParams {
  readonly nodes: number;
  readonly groups: number;
  /** Initial voters of each group (node ids). */
  readonly votersOf: readonly (readonly number[])[];

  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  /** Idle ticks before a group goes quiet (0: never); see RaftConfig.quiesceAfterTicks. */
  readonly quiesceAfterTicks?: number;
  /** Idle ticks before a new leader with nothing proposed goes quiet; see RaftConfig.quiesceNewLeaderAfterTicks. */
  readonly quiesceNewLeaderAfterTicks?: number;
  /** Extra ticks per rank before a replica's first campaign after a start; see RaftConfig.campaignStaggerTicks. */
  readonly campaignStaggerTicks?: number;
  /**
   * Chance that a node's tick runs late: it moves its replicas' clocks but none of their timers
   * (RawNode.elapse), as the shard host's catch-up after a stall does. Drawn from `lateTickSeed`.
   */
  readonly lateTickP?: number;
  readonly lateTickSeed?: number;
  readonly appendBytesMax: number | undefined;
  readonly inflightMessagesMax: number | undefined;
  readonly inflightBytesMax: number | undefined;
  readonly uncommittedBytesMax: number | undefined;
  /** Small values split a batch of committed entries over several Readies. */
  readonly committedBytesPerReadyMax: number | undefined;
  readonly readQueueMax: number | undefined;

  readonly delayMinMs: number;
  readonly delayMaxMs: number;
  /** Chance that one message is held up far longer than the others (heavy reordering). */
  readonly delaySpikeP: number;
  readonly dropP: number;
  readonly dupP: number;
  readonly fsyncMinMs: number;
  readonly fsyncMaxMs: number;

  readonly crashPerSec: number;
  /** Chance that a fresh leader's node crashes moments after it wins (partial replication, Raft fig. 8). */
  readonly crashNewLeaderP: number;
  /** Chance that a crash or a partition aims at a leader rather than at random. */
  readonly targetLeaderP: number;
  /** Nodes down at the same time at most. */
  readonly maxDown: number;
  readonly downMinMs: number;
  readonly downMaxMs: number;
  readonly partitionPerSec: number;
  readonly partitionMinMs: number;
  readonly partitionMaxMs: number;
  readonly snapshotPerSec: number;
  readonly confChangePerSec: number;
  readonly transferPerSec: number;
  readonly campaignPerSec: number;
  /** Cuts of one link between a leader and one of its followers, both ways (0 or absent: none). */
  readonly linkCutPerSec?: number;
  /**
   * Chance that a follower going quiet soon receives a late copy of a campaign message addressed
   * to it earlier (a duplicate, or one held up on a replaced connection), mostly its leader's own.
   */
  readonly lateCampaignP?: number;
  /**
   * Chance that, when a group elects a new leader, a client with an old hint asks the previous
   * leader (if it still thinks it leads, typically quiet) for a lease read moments later.
   */
  readonly staleHintReadP?: number;

  readonly clientsPerGroup: number;
  readonly keysPerGroup: number;
  readonly thinkMaxMs: number;
  readonly readP: number;
  readonly casP: number;
  readonly leaseReadP: number;
  readonly clientTimeoutMs: number;

  /**
   * Moves mode: membership changes come from the planner (src/router/moves.ts) instead of at
   * random, while nodes join, leave and die for good (see test/sim/moves.ts).
   */
  readonly moves?: MovesParams;
}

/** Moves mode: node ids 1..startNodes found the cluster; the ids above them up to `nodes` may join. */
export interface MovesParams {
  /** Replicas each group aims for. */
  readonly factor: number;
  readonly startNodes: number;
  readonly joinPerSec: number;
  readonly leavePerSec: number;
  readonly diePerSec: number;
  /** Entries a learner may lag behind the leader's last index and still be promoted. */
  readonly lagMax: number;
  /** Virtual time between two planner rounds. */
  readonly planEveryMs: number;
  /**
   * Disk losses (amnesia): a member crashes and loses every group's durable raft state (log,
   * hard state, snapshots, applied state), its identity kept. Rate per virtual second (0 or
   * absent: none), at most `amnesiaMax` per run; each one is drawn only when the member could
   * also die for good (every group settled, each keeps a quorum without it).
   */
  readonly amnesiaPerSec?: number;
  /** Disk losses per run at most; the ids above `startNodes` + the joinable ones are kept for them. */
  readonly amnesiaMax?: number;
  /**
   * How a node that lost its disk comes back. Guarded (false or absent, what the product does:
   * src/main/cluster-start.ts): its old id is declared dead in the meta group, so the planner
   * rebuilds its replicas on the others, and it joins under a spare id, hosting nothing until the
   * planner adds it as a learner. Unguarded (true, the bug the guard prevents): it restarts under
   * its old id with empty storage, a voter of the configuration it last knew, term 1, empty log.
   */
  readonly amnesiaUnguarded?: boolean;
}

export function drawParams(p: Prng): SimParams {
  const nodes = p.pick([3, 5]);
  const groups = p.pick([1, 2, 3]);
  const votersOf: number[][] = [];
  for (let g = 0; g < groups; g++) {
    const all = Array.from({ length: nodes }, (_, i) => i + 1);
    const chosen: number[] = [];
    while (chosen.length < 3) chosen.push(all.splice(p.int(0, all.length), 1)[0]!);
    votersOf.push(chosen.sort((a, b) => a - b));
  }
  const delayMinMs = p.pick([0.05, 0.3, 1, 3]);
  const fsyncMaxMs = p.pick([0.5, 1, 2, 5]);
  const downMinMs = p.pick([20, 100, 300]);
  const partitionMinMs = p.pick([50, 200, 500]);
  return {
    nodes,
    groups,
    votersOf,
    tickMs: 10,
    electionTicks: 10,
    heartbeatTicks: p.pick([1, 2]),
    preVote: p.chance(0.85),
    checkQuorum: p.chance(0.85),
    appendBytesMax: p.chance(0.3) ? p.pick([60, 120, 300]) : undefined,
    inflightMessagesMax: p.chance(0.3) ? p.pick([1, 2, 4]) : undefined,
    inflightBytesMax: p.chance(0.2) ? p.pick([200, 1000]) : undefined,
    uncommittedBytesMax: p.chance(0.25) ? p.pick([100, 300, 1000]) : undefined,
    committedBytesPerReadyMax: p.chance(0.2) ? p.pick([60, 200]) : undefined,
    readQueueMax: p.chance(0.1) ? p.pick([1, 3]) : undefined,

    delayMinMs,
    delayMaxMs: delayMinMs + p.pick([0.5, 2, 8, 25]),
    delaySpikeP: p.pick([0, 0, 0.01, 0.05]),
    dropP: p.pick([0, 0, 0.01, 0.05, 0.15, 0.3]),
    dupP: p.pick([0, 0, 0.01, 0.05, 0.2]),
    fsyncMinMs: 0.2,
    fsyncMaxMs,

    crashPerSec: p.pick([0, 0.3, 1, 3]),
    crashNewLeaderP: p.pick([0, 0, 0.1, 0.3]),
    targetLeaderP: p.pick([0, 0.5, 0.8]),
    maxDown: p.chance(0.2) ? nodes : Math.floor((nodes - 1) / 2),
    downMinMs,
    downMaxMs: downMinMs + p.pick([100, 500, 2000]),
    partitionPerSec: p.pick([0, 0.3, 1, 3]),
    partitionMinMs,
    partitionMaxMs: partitionMinMs + p.pick([200, 1000, 3000]),
    snapshotPerSec: p.pick([0, 1, 5, 20]),
    confChangePerSec: p.pick([0, 0.5, 2, 5]),
    transferPerSec: p.pick([0, 0, 0.5, 2]),
    campaignPerSec: p.pick([0, 0, 0, 0.5, 2]),

    clientsPerGroup: p.pick([2, 3, 4]),
    keysPerGroup: p.int(3, 7),
    thinkMaxMs: p.pick([0, 5, 20, 60]),
    readP: p.pick([0.2, 0.4, 0.6]),
    casP: p.pick([0.2, 0.4]),
    leaseReadP: p.pick([0, 0.2, 0.7]),
    clientTimeoutMs: p.int(2000, 3001),
  };
}

/** Disk losses per run at most when a seed draws them (each uses up one spare node id). */
const AMNESIA_MAX = 2;

function diskLosses(perSec: number): Pick<MovesParams, 'amnesiaPerSec' | 'amnesiaMax'> {
  return perSec > 0 ? { amnesiaPerSec: perSec, amnesiaMax: AMNESIA_MAX } : {};
}

/**
 * Moves mode on top of drawn parameters: 1 or 3 founding nodes, up to 3 more that join, members
 * leaving and dying for good, every membership change from the planner (the random ones are off).
 */
export function withMoves(s: SimParams, p: Prng): SimParams {
  const startNodes = p.pick([1, 3, 3]);
  const joinable = p.pick([2, 3]);
  const moves: MovesParams = {
    factor: 3,
    startNodes,
    joinPerSec: p.pick([0.3, 1, 3]),
    leavePerSec: p.pick([0, 0.2, 0.5]),
    diePerSec: p.pick([0, 0.2, 0.5]),
    // A learner trails a busy leader by what the network holds in flight (tens of entries with
    // clients that never pause); much below that it would wait for a lull that may never come.
    lagMax: p.pick([20, 50, 200]),
    planEveryMs: p.pick([10, 30, 100]),
    // Drawn last, so every other draw of a seed stays what it was before disk losses existed.
    ...diskLosses(p.pick([0, 0, 0.2, 0.5])),
  };
  return {
    ...s,
    nodes: startNodes + joinable + (moves.amnesiaMax ?? 0),
    votersOf: rebalance(
      Array.from({ length: s.groups }, () => []),
      Array.from({ length: startNodes }, (_, i) => nodeId(i + 1)),
      () => moves.factor,
    ),
    confChangePerSec: 0,
    maxDown: 1,
    moves,
  };
}

export function describeParams(s: SimParams): string {
  const parts = [
    `N=${s.nodes} G=${s.groups} voters=${s.votersOf.map((v) => `[${v.join(',')}]`).join('')}`,
    `hb=${s.heartbeatTicks} preVote=${s.preVote} checkQuorum=${s.checkQuorum} quiesce=${s.quiesceAfterTicks ?? 0}/${s.quiesceNewLeaderAfterTicks ?? s.quiesceAfterTicks ?? 0} stagger=${s.campaignStaggerTicks ?? 0} lateTick=${s.lateTickP ?? 0}`,
    `appendBytesMax=${s.appendBytesMax ?? '-'} inflight=${s.inflightMessagesMax ?? '-'}/${s.inflightBytesMax ?? '-'}B uncommitted=${s.uncommittedBytesMax ?? '-'} committedPerReady=${s.committedBytesPerReadyMax ?? '-'} readQueue=${s.readQueueMax ?? '-'}`,
    `delay=${s.delayMinMs}..${s.delayMaxMs}ms spike=${s.delaySpikeP} drop=${s.dropP} dup=${s.dupP} fsync=${s.fsyncMinMs}..${s.fsyncMaxMs}ms`,
    `crash/s=${s.crashPerSec} newLeaderCrash=${s.crashNewLeaderP} targetLeader=${s.targetLeaderP} maxDown=${s.maxDown} partition/s=${s.partitionPerSec} linkCut/s=${s.linkCutPerSec ?? 0} snapshot/s=${s.snapshotPerSec} conf/s=${s.confChangePerSec} transfer/s=${s.transferPerSec} campaign/s=${s.campaignPerSec}`,
    `lateCampaign=${s.lateCampaignP ?? 0} staleHintRead=${s.staleHintReadP ?? 0}`,
    ...(s.moves
      ? [
          `moves: factor=${s.moves.factor} start=${s.moves.startNodes} join/s=${s.moves.joinPerSec} leave/s=${s.moves.leavePerSec} die/s=${s.moves.diePerSec} lagMax=${s.moves.lagMax} planEvery=${s.moves.planEveryMs}ms amnesia/s=${s.moves.amnesiaPerSec ?? 0} amnesiaMax=${s.moves.amnesiaMax ?? 0}${s.moves.amnesiaUnguarded === true ? ' UNGUARDED' : ''}`,
        ]
      : []),
    `clients=${s.clientsPerGroup}x${s.keysPerGroup}keys think<=${s.thinkMaxMs}ms read=${s.readP} cas=${s.casP} lease=${s.leaseReadP}`,
  ];
  return parts.join('\n');
}

/**
 * Leaders under fire: new leaders often crash at once, crashes and partitions aim at leaders, one
 * entry per App, lossy links. This is where an old leader's entries get half-replicated and then
 * overwritten, the ground on which Raft's Figure 8 (commit only entries of one's own term) and
 * truncation bugs show their consequences end to end.
 */
export function leaderChurn(p: SimParams): SimParams {
  return {
    ...p,
    appendBytesMax: 60,
    crashNewLeaderP: 0.8,
    crashPerSec: 6,
    targetLeaderP: 0.9,
    maxDown: Math.max(1, p.maxDown),
    downMinMs: 20,
    downMaxMs: 200,
    dropP: 0.15,
    partitionPerSec: 3,
  };
}

/**
 * Disk losses under fire: three founding nodes in moves mode that neither join, leave nor die,
 * members losing their disk often (`amnesiaUnguarded` says how they come back), crashes and
 * partitions aimed at leaders, one entry per App, lossy links; so a member that lost its disk
 * often held commits another voter lacks, and the leader that had them goes down or is cut off
 * soon after. New leaders crash less often than in {@link leaderChurn}: a disk loss waits for a
 * moment when every group has a settled leader. At most `lossesMax` disk losses (a spare id
 * each). The scenario of the amnesia test
 * (test/unit/sim/sim-amnesia.test.ts).
 */
export function diskLossUnderFire(p: SimParams, unguarded: boolean, lossesMax: number = AMNESIA_MAX): SimParams {
  const moves: MovesParams = {
    factor: 3,
    startNodes: 3,
    joinPerSec: 0,
    leavePerSec: 0,
    diePerSec: 0,
    lagMax: 50,
    planEveryMs: 30,
    amnesiaPerSec: 2,
    amnesiaMax: lossesMax,
    amnesiaUnguarded: unguarded,
  };
  return {
    ...p,
    nodes: moves.startNodes + lossesMax,
    groups: 1,
    votersOf: [[1, 2, 3]],
    appendBytesMax: 60,
    crashPerSec: 3,
    crashNewLeaderP: 0.3,
    targetLeaderP: 0.9,
    maxDown: 2,
    downMinMs: 20,
    downMaxMs: 200,
    dropP: 0.15,
    partitionPerSec: 3,
    confChangePerSec: 0,
    moves,
  };
}
