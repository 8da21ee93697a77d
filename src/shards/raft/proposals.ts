import { RaftErrorCode } from './errors.js';
import type { FailedProposal, LogIndex, Term } from './types.js';

/**
 * Proposals this node accepted as leader whose fate is not known yet. Each is settled when the
 * commit index passes its index: the same term there means it applies (the shell sees it among
 * committed entries); another term means it never will (ProposalDropped); a compacted index means
 * nobody can tell (ProposalOutcomeUnknown). One whose entry this node's log no longer holds
 * (another leader's entries replaced it or cut the log short) is settled at once as
 * ProposalOutcomeUnknown: the commit index may never pass it (a new leader with nothing to
 * propose goes quiet), and the entry may still commit through a node that kept it, so only a
 * retry under the same client session can tell. Bounded by the leader's uncommitted byte budget.
 */
export class ProposalTracker {
  /** Ordered by index (a leader re-elected after truncation may propose below older entries). */
  private list: { index: LogIndex; term: Term }[] = [];

  get size(): number {
    return this.list.length;
  }

  track(index: LogIndex, term: Term): void {
    let i = this.list.length;
    while (i > 0 && this.list[i - 1]!.index > index) i--;
    this.list.splice(i, 0, { index, term });
  }

  /**
   * Settles every proposal at or below `committed`, and with `lastIndex` (a log that may have
   * lost entries: a follower's) every one above it whose entry the log no longer holds; returns
   * those that failed.
   */
  resolve(committed: LogIndex, termAt: (i: LogIndex) => Term | undefined, lastIndex?: LogIndex): FailedProposal[] {
    if (this.list.length === 0) return [];
    if (this.list[0]!.index > committed && lastIndex === undefined) return [];
    const failed: FailedProposal[] = [];
    let n = 0;
    for (const p of this.list) {
      if (p.index > committed) break;
      n++;
      const t = termAt(p.index);
      if (t === undefined) failed.push({ ...p, code: RaftErrorCode.ProposalOutcomeUnknown });
      else if (t !== p.term) failed.push({ ...p, code: RaftErrorCode.ProposalDropped });
    }
    this.list.splice(0, n);
    if (lastIndex !== undefined) {
      // Above the commit index: those whose entry is gone from this log.
      let kept = 0;
      for (const p of this.list) {
        if (p.index > lastIndex || termAt(p.index) !== p.term) failed.push({ ...p, code: RaftErrorCode.ProposalOutcomeUnknown });
        else this.list[kept++] = p;
      }
      this.list.length = kept;
    }
    return failed;
  }
}
