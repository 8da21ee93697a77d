/**
 * Consistency check of a shard on disk: replay its whole log (from the founding snapshot) into an
 * empty in-memory copy with the same apply path, and compare with the data database. It proves
 * that every committed entry up to the applied index was applied exactly once and that the log and
 * the data agree. Only possible while the log is not compacted.
 */
import { EntryType } from './raft/index.js';
import type { LogIndex } from './raft/index.js';
import { afterEntry, applyEntry } from './sessions.js';
import type { ApplyTarget } from './sessions.js';
import type { DataTxn, StateMachine } from './state-machine.js';
import type { ShardStore } from './store.js';

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** A sorted in-memory data database (bytewise key order), for replays. */
export class MemoryData implements ApplyTarget {
  private readonly map = new Map<string, { key: Uint8Array; value: Uint8Array }>();

  txn(): DataTxn {
    return {
      get: (key) => this.map.get(hex(key))?.value,
      put: (key, value) => {
        this.map.set(hex(key), { key: key.slice(), value: value.slice() });
      },
      remove: (key) => {
        this.map.delete(hex(key));
      },
      range: (start, end, limit) => {
        const lo = hex(start);
        const hi = hex(end);
        return this.sorted()
          .filter(([k]) => k >= lo && k < hi)
          .slice(0, limit)
          .map(([, kv]) => kv);
      },
    };
  }

  reservedGet(key: Uint8Array): Uint8Array | undefined {
    return this.map.get(hex(key))?.value;
  }

  reservedPut(key: Uint8Array, value: Uint8Array): void {
    this.map.set(hex(key), { key: key.slice(), value: value.slice() });
  }

  reservedRemove(key: Uint8Array): void {
    this.map.delete(hex(key));
  }

  reservedScan(prefix: Uint8Array): { key: Uint8Array; value: Uint8Array }[] {
    const p = hex(prefix);
    return this.sorted()
      .filter(([k]) => k.startsWith(p))
      .map(([, kv]) => kv);
  }

  /** Entries as hex pairs in key order. */
  sorted(): [string, { key: Uint8Array; value: Uint8Array }][] {
    // Hex of bytes sorts like the bytes (same length prefix comparison per byte pair).
    return [...this.map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
}

export interface VerifyResult {
  /** False when the log is compacted past the founding snapshot (nothing to replay from). */
  readonly checked: boolean;
  readonly applied: LogIndex;
  readonly entriesReplayed: number;
  /** Keys whose stored value differs from the replay (hex), at most 20. */
  readonly mismatches: string[];
}

export function verifyShard(ss: ShardStore, sm: StateMachine): VerifyResult {
  const applied = ss.applied();
  if (ss.compactedIndex() > 1) return { checked: false, applied, entriesReplayed: 0, mismatches: [] };
  const mem = new MemoryData();
  let replayed = 0;
  for (let lo = ss.firstIndex(); lo <= applied;) {
    const batch = ss.entries(lo, (applied + 1) as LogIndex, 4 << 20);
    for (const e of batch) {
      if (e.type === EntryType.Normal && e.data.length > 0) applyEntry(sm, mem, e);
      afterEntry(mem, e.index);
      replayed++;
    }
    lo = (lo + batch.length) as LogIndex;
  }
  const mismatches: string[] = [];
  const stored = new Map<string, string>();
  for (const { key, value } of ss.data.getRange({})) stored.set(hex(key), hex(value));
  for (const [k, { value }] of mem.sorted()) {
    if (stored.get(k) !== hex(value)) mismatches.push(k);
    stored.delete(k);
  }
  for (const k of stored.keys()) mismatches.push(k);
  return { checked: true, applied, entriesReplayed: replayed, mismatches: mismatches.slice(0, 20) };
}
