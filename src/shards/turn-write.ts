/**
 * What one shard's Ready writes inside its turn's write: the snapshot it installs, the entries
 * it appends, its hard state, the committed entries it applies (with their client sessions) and
 * the applied index, and (in a checkpoint's commit) a log compaction when one is due. The data
 * and the applied index reach LMDB in one transaction (the turn's, or a later checkpoint's), so a
 * crash never applies an entry twice or records an applied index without its data.
 */
import { EntryType, assert } from './raft/index.js';
import type { LogIndex, Ready, ShardId, Term } from './raft/index.js';
import { nextConfState } from './conf-state.js';
import type { HostCounters } from './host-counters.js';
import { readDumpFile } from './snapshot-io.js';
import type { StagedSnapshot } from './snapshot-io.js';
import { afterEntry, applyEntry } from './sessions.js';
import type { Outcome } from './sessions.js';
import type { StateMachine } from './state-machine.js';
import type { ShardStore } from './store.js';

/** An entry applied by a turn: what its proposer is answered (undefined: nobody, e.g. a no-op). */
export interface AppliedEntry {
  readonly index: LogIndex;
  readonly term: Term;
  readonly reply: Outcome | undefined;
}

/** What the host lends {@link writeTurn}. */
export interface TurnWriteContext {
  readonly stateMachine: StateMachine;
  readonly counters: HostCounters;
  /** Applied entries between compactions, and entries kept behind the applied index. */
  readonly compactEvery: number;
  readonly compactKeep: number;
}

/**
 * Inside the commit: install, append, store hard state, apply committed entries, maybe compact.
 * `staged` is the snapshot file stepped into this shard's core before its Ready, if any. Returns
 * the entries applied, in order.
 */
export function writeTurn(id: ShardId, ss: ShardStore, rd: Ready, staged: StagedSnapshot | undefined, ctx: TurnWriteContext): AppliedEntry[] {
  const { counters } = ctx;
  if (rd.snapshot) {
    if (staged !== undefined && staged.metadata.index === rd.snapshot.metadata.index) {
      ss.installSnapshot(rd.snapshot, readDumpFile(staged.path));
    } else {
      // Only a staged snapshot reaches a core here (Snap messages are dropped in step), and a
      // Ready carries the one stepped last.
      assert(rd.snapshot.data.length > 0, `shard ${id}: snapshot at ${rd.snapshot.metadata.index} without its staged data`);
      ss.installSnapshot(rd.snapshot);
    }
    counters.snapshotsInstalled++;
  }
  ss.append(rd.entries);
  counters.entriesPersisted += rd.entries.length;
  if (rd.hardState) ss.setHardState(rd.hardState);
  const applied: AppliedEntry[] = [];
  if (rd.committedEntries.length === 0) return applied;
  let conf = ss.confState();
  let last = ss.applied();
  for (const e of rd.committedEntries) {
    if (e.index <= last) continue; // covered by a snapshot installed in this Ready
    if (e.index !== last + 1) assert(false, `shard ${id}: applying ${e.index} after ${last}`);
    last = e.index;
    if (e.type === EntryType.ConfChange) {
      conf = nextConfState(conf, e);
      applied.push({ index: e.index, term: e.term, reply: undefined });
    } else if (e.data.length === 0) {
      applied.push({ index: e.index, term: e.term, reply: undefined }); // a leader's no-op
    } else {
      const { outcome, duplicate } = applyEntry(ctx.stateMachine, ss, e);
      if (duplicate) counters.duplicateProposals++;
      applied.push({ index: e.index, term: e.term, reply: outcome });
    }
    counters.sessionsExpired += afterEntry(ss, e.index);
  }
  ss.setApplied(last, conf);
  counters.entriesApplied += applied.length;
  // A logged turn leaves compaction to the next checkpoint's commit.
  if (!ss.logging() && compactIfDue(ss, ctx.compactEvery, ctx.compactKeep)) counters.compactions++;
  return applied;
}

/** Drops the log up to `keep` entries behind the applied index once `every` more were applied; true when it did. */
export function compactIfDue(ss: ShardStore, every: number, keep: number): boolean {
  if (!compactionDue(ss, every, keep)) return false;
  ss.compact((ss.applied() - keep) as LogIndex);
  return true;
}

export function compactionDue(ss: ShardStore, every: number, keep: number): boolean {
  return ss.applied() - ss.compactedIndex() >= every + keep;
}
