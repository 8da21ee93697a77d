/**
 * Shards led here whose replicas already are their target, so cluster life need not ask their
 * worker for their membership every round. An idle node of three with 10,000 shards leads about
 * 3,333 of them; asking each second for every one's membership and progress, and sending the
 * answers between threads, was the largest share of an idle node's CPU, for answers that say
 * "nothing to do" round after round.
 *
 * Why a settled shard stays settled: within one term only its leader changes a shard's membership,
 * and the leader here changes it only through cluster life's next step, which a settled shard does
 * not have. So a shard seen led here in term T with its voters equal to its target, no learners
 * and its whole log applied (no change of an earlier leader still waiting to apply) keeps that
 * membership while it is still led here in term T and its target is the same. Anything else (a
 * new term, another leader, a new target) asks again.
 */
import type { NodeId, ShardId } from '../shards/raft/index.js';

/** What a round's answer said of one shard led here (the worker's Membership, in part). */
export interface SettledAnswer {
  readonly role: string;
  readonly term: number;
  readonly voters: readonly number[];
  readonly learners: readonly number[];
  readonly applied: number;
  readonly lastIndex: number;
}

export class SettledShards {
  /**
   * Shard -> the term it was seen settled in and the target it matched (the record's own array:
   * a new record brings new arrays, so a changed target never matches by chance).
   */
  private settled = new Map<ShardId, { readonly term: number; readonly target: readonly number[] }>();
  /** Asks skipped because the shard was settled; only grows. */
  skipped = 0;

  constructor(private readonly self: NodeId) {}

  /**
   * Of the shards led here (`term`: the term the shard's leadership here was last reported in), those
   * whose membership must be asked this round; the settled ones are left out. Forgets shards no
   * longer led here or whose term or target changed.
   */
  toAsk(led: readonly ShardId[], term: (s: ShardId) => number | undefined, target: (s: ShardId) => readonly number[] | undefined): ShardId[] {
    const ask: ShardId[] = [];
    const kept = new Map<ShardId, { readonly term: number; readonly target: readonly number[] }>();
    for (const s of led) {
      const was = this.settled.get(s);
      if (was !== undefined && was.term === term(s) && was.target === target(s)) {
        kept.set(s, was);
        this.skipped++;
      } else ask.push(s);
    }
    this.settled = kept;
    return ask;
  }

  /** The round's answer for shard `s` (asked, led here as far as the worker said); remembers it when settled. */
  answered(s: ShardId, a: SettledAnswer, target: readonly number[]): void {
    if (isSettled(this.self, a, target)) this.settled.set(s, { term: a.term, target });
    else this.settled.delete(s);
  }

  /** A membership step was taken on `s`: ask again next round. */
  changed(s: ShardId): void {
    this.settled.delete(s);
  }

  /** Shards settled now. */
  get size(): number {
    return this.settled.size;
  }
}

/** Led here, its voters exactly its target (this node among them), no learners, its whole log applied. */
export function isSettled(self: NodeId, a: SettledAnswer, target: readonly number[]): boolean {
  return (
    a.role === 'leader' &&
    a.learners.length === 0 &&
    a.applied === a.lastIndex &&
    a.voters.includes(self) &&
    a.voters.length === target.length &&
    a.voters.every((v) => target.includes(v))
  );
}
