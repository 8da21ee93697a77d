/**
 * Leaders spread over the nodes. Elections put leaders wherever a campaign won first (one run of
 * 16 shards on three nodes ended with 3 / 6 / 7), and a node that leads more shards does more of
 * the cluster's work: it appends and replicates every write of those shards, and answers their
 * linearizable reads. So every node, every round, looks at the shards it hosts and hands
 * leadership of a shard it leads to another voter of that shard that leads at least two fewer of
 * them (raft's leadership transfer: the target is caught up, then campaigns at once; proposals
 * wait meanwhile and the router retries them). Each node moves only its own leaderships, a few
 * per round, so nodes never fight over one shard; counts settle within one of each other.
 *
 * A node that hosts every shard (as many replicas as members, the usual three nodes) counts every
 * node's leads itself: its counts are every node's true counts, and each move lowers the spread
 * for good (a move from a count x to a count y <= x - 2 lowers the sum of squared counts), so
 * rounds end. With more members than replicas a node sees only part of the others' leads: it
 * then uses the counts the others report about once a second on their liveness records
 * (`leadsOf`), and its own exact count; a voter whose count it has not heard lately is passed
 * over. Reports may be a second old, so two nodes may both move toward one node in a round; the
 * next rounds even that out, since every move still goes from a count x to one at most x - 2.
 */
import type { NodeId, ShardId } from '../shards/raft/index.js';
import type { TransferAnswer } from '../workers/pool.js';

/** What a round needs to know and do. */
export interface BalanceParts {
  readonly self: NodeId;
  /** Shards in the cluster. */
  readonly shardCount: number;
  /** The shards hosted here, each with its voters (this node among them). */
  readonly shards: () => readonly { readonly shard: ShardId; readonly voters: readonly NodeId[] }[];
  /** The shard's leader as this replica knows it; 0 or undefined when unknown. */
  readonly leaderOf: (shard: ShardId) => number | undefined;
  /** Whether `node` is up and can lead `shard` (its worker for it runs). */
  readonly canLead: (node: NodeId, shard: ShardId) => boolean;
  /**
   * Whether this node is streaming (or about to stream) a snapshot of `shard` to one of its
   * replicas. Its leadership then stays here: the follower drops a snapshot sent in an older term,
   * so after a transfer the new leader would stream the whole snapshot again (and the follower,
   * still receiving this one, would answer it Busy until it ends).
   */
  readonly streaming: (shard: ShardId) => boolean;
  /**
   * How many data shards another node leads, as it reported lately; undefined when not known.
   * Used when this node hosts only some of the shards. Default: never known (no balancing then).
   */
  readonly leadsOf?: (node: NodeId) => number | undefined;
  /** Starts the transfer; `started` when it did. */
  readonly transfer: (shard: ShardId, to: NodeId) => Promise<TransferAnswer>;
  /** A transfer whose call failed (rejected): told here, for the log; the round goes on. */
  readonly failed?: (shard: ShardId, to: NodeId, err: unknown) => void;
}

/** A planned move: shard `shard`'s leadership from this node to `to`. */
export interface Transfer {
  readonly shard: ShardId;
  readonly to: NodeId;
}

/**
 * The moves of one round, at most `max`: for each shard this node leads (in shard order) and
 * streams no snapshot of, the
 * voter leading the fewest of the hosted shards (lowest id on ties) that can lead it, if it leads
 * at least two fewer than this node; the counts are updated as moves are planned.
 */
export function planTransfers(parts: Omit<BalanceParts, 'transfer'>, max: number): Transfer[] {
  const shards = parts.shards();
  const partial = shards.length < parts.shardCount;
  if (partial && parts.leadsOf === undefined) return [];
  const leads = leadCounts(parts, shards, partial);
  // A voter whose count is not known (partial view, not reported lately) is passed over.
  const count = (n: number): number => leads.get(n) ?? (partial && n !== parts.self ? Number.POSITIVE_INFINITY : 0);
  const out: Transfer[] = [];
  for (const { shard, voters } of shards) {
    if (out.length >= max) break;
    if (parts.leaderOf(shard) !== parts.self || parts.streaming(shard)) continue;
    let best: NodeId | undefined;
    for (const v of voters) {
      if (v === parts.self || !parts.canLead(v, shard)) continue;
      if (best === undefined || count(v) < count(best) || (count(v) === count(best) && v < best)) best = v;
    }
    if (best === undefined || count(parts.self) - count(best) < 2) continue;
    out.push({ shard, to: best });
    leads.set(parts.self, count(parts.self) - 1);
    leads.set(best, count(best) + 1);
  }
  return out;
}

/**
 * Data shards each node leads as seen from here: counted over the shards hosted here when they are
 * all of them, else this node's own count and what the voters of its shards reported (`leadsOf`).
 * A voter that leads none of the hosted shards (full view) is absent.
 */
function leadCounts(parts: Omit<BalanceParts, 'transfer'>, shards: ReturnType<BalanceParts['shards']>, partial: boolean): Map<number, number> {
  const leads = new Map<number, number>();
  for (const { shard } of shards) {
    const l = parts.leaderOf(shard);
    if (l !== undefined && l !== 0 && (!partial || l === parts.self)) leads.set(l, (leads.get(l) ?? 0) + 1);
  }
  if (partial)
    for (const { voters } of shards)
      for (const v of voters)
        if (v !== parts.self && !leads.has(v)) {
          const c = parts.leadsOf?.(v);
          if (c !== undefined) leads.set(v, c);
        }
  return leads;
}

/**
 * Share of the data shards led here that one round may move at most, when that is more than
 * `transfersPerRound`. After a start of a large cluster the first elections may leave a node
 * hundreds of leaderships off the mean (10,000 shards on three nodes); at two moves per round the
 * nodes went on handing leaderships over for many minutes, every move waking a quiet group and
 * electing in it, so an idle cluster was never still (all of its leader changes). A twentieth
 * per round settles such a start within a few rounds; a node leading under 60 shards moves as
 * before.
 */
export const TRANSFERS_SHARE_PER_ROUND = 1 / 20;

export class LeaderBalancer {
  /**
   * Transfers started, those the shard refused (it no longer led, or the target was no voter), and
   * those whose call failed (a worker restarting, an error thrown across the thread boundary).
   */
  readonly counters = { transfersStarted: 0, transfersRefused: 0, transfersFailed: 0, rounds: 0 };
  private running = false;

  /**
   * `transfersPerRound`: moves one round may start at least; a few, so leadership shifts gradually
   * (a node leading many shards may move more, see {@link TRANSFERS_SHARE_PER_ROUND}).
   */
  constructor(
    readonly parts: BalanceParts,
    private readonly transfersPerRound = 2,
  ) {}

  /**
   * Moves one round may start: `transfersPerRound`, or more when this node leads many shards: up
   * to a {@link TRANSFERS_SHARE_PER_ROUND} of them, and no more than it leads above the mean of the
   * nodes it counts (not down to one more than the node leading fewest, where a round of two moves
   * stops). The other nodes above the mean plan their rounds on the same counts and may hand
   * theirs to the same node: with three nodes their excesses together are what the one below the
   * mean lacks, so it ends at the mean, not past it handing leaderships back. With more nodes a
   * node may pass the mean by what several gave it, and gives that back in a later round. While a
   * shard hosted here knows no leader, `transfersPerRound`.
   */
  movesPerRound(): number {
    const shards = this.parts.shards();
    // While shards here still elect their first leaders, counts move by themselves and the extra
    // transfers would only add campaigns to a busy start.
    if (shards.some(({ shard }) => !this.parts.leaderOf(shard))) return this.transfersPerRound;
    const partial = shards.length < this.parts.shardCount;
    const leads = leadCounts(this.parts, shards, partial);
    const nodes = new Set<number>([this.parts.self]);
    for (const { voters } of shards) for (const v of voters) if (!partial || leads.has(v)) nodes.add(v);
    let total = 0;
    for (const n of nodes) total += leads.get(n) ?? 0;
    const mine = leads.get(this.parts.self) ?? 0;
    const excess = mine - total / nodes.size;
    return Math.max(this.transfersPerRound, Math.min(Math.floor(mine * TRANSFERS_SHARE_PER_ROUND), Math.floor(excess)));
  }

  /**
   * One round: plans and starts the moves; resolves with how many started. Rounds never overlap.
   * A transfer whose call fails is counted and the round goes on: the caller runs rounds on a
   * timer, where a rejection would go unhandled and stop the node.
   */
  async round(): Promise<number> {
    if (this.running) return 0;
    this.running = true;
    try {
      this.counters.rounds++;
      let started = 0;
      for (const t of planTransfers(this.parts, this.movesPerRound())) {
        const r = await tryTransfer(this.parts, t.shard, t.to);
        if (r === 'started') started++;
        else if (r === 'failed') this.counters.transfersFailed++;
        else this.counters.transfersRefused++;
      }
      this.counters.transfersStarted += started;
      return started;
    } finally {
      this.running = false;
    }
  }
}

/**
 * Hands every leadership this node holds to another voter (the one leading fewest, that can lead
 * it) and waits until none is led here or `waitMs` passes: a node stopping gracefully leaves no
 * shard waiting an election timeout for a new leader. Resolves with the leaderships handed over
 * and those still here at the end.
 */
export async function handOffLeaders(parts: BalanceParts, waitMs: number): Promise<{ handed: number; left: number }> {
  const shards = parts.shards();
  const leads = new Map<number, number>();
  for (const { shard } of shards) {
    const l = parts.leaderOf(shard);
    if (l !== undefined && l !== 0) leads.set(l, (leads.get(l) ?? 0) + 1);
  }
  const mine = shards.filter((s) => parts.leaderOf(s.shard) === parts.self);
  // Only shards with another voter able to lead can be handed over (a single-node cluster has none).
  const moving: { shard: ShardId; to: NodeId }[] = [];
  await Promise.all(
    mine.map(async ({ shard, voters }) => {
      const targets = voters.filter((v) => v !== parts.self && parts.canLead(v, shard));
      // Ranked before the first answer, counting the shards ranked before this one as handed to
      // their first choice: otherwise every shard would go to the same least loaded node.
      targets.sort((a, b) => (leads.get(a) ?? 0) - (leads.get(b) ?? 0) || a - b);
      // The first target that is caught up takes it; a lagging one would hold the shard's writes.
      for (const to of targets) {
        leads.set(to, (leads.get(to) ?? 0) + 1);
        // A call that fails counts as refused: a stop must go on to close the node whatever happens.
        if ((await tryTransfer(parts, shard, to)) === 'started') {
          moving.push({ shard, to });
          return;
        }
        leads.set(to, (leads.get(to) ?? 0) - 1);
      }
    }),
  );
  const deadline = performance.now() + waitMs;
  // A target that can no longer lead (it went down, or is stopping too: several nodes stopped at
  // once) will not take the shard: waiting for it would only hold the stop.
  const stillMine = (): number => moving.filter((m) => parts.leaderOf(m.shard) === parts.self && parts.canLead(m.to, m.shard)).length;
  while (stillMine() > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const left = mine.filter((s) => parts.leaderOf(s.shard) === parts.self).length;
  return { handed: mine.length - left, left };
}

/** `parts.transfer`, with a call that fails (rejects) told to `parts.failed` and answered `failed`. */
function tryTransfer(parts: BalanceParts, shard: ShardId, to: NodeId): Promise<TransferAnswer | 'failed'> {
  return parts.transfer(shard, to).catch((e: unknown) => {
    parts.failed?.(shard, to, e);
    return 'failed' as const;
  });
}
