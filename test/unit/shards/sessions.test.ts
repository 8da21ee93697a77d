import { describe, expect, test } from 'vitest';
import { SESSION_SWEEP_EVERY_ENTRIES, SESSION_TTL_ENTRIES, afterEntry, applyEntry, encodeProposal } from '../../../src/shards/sessions.js';
import { MemoryData } from '../../../src/shards/verify.js';
import { EntryType } from '../../../src/shards/raft/index.js';
import type { Entry, LogIndex, Term } from '../../../src/shards/raft/index.js';
import { IndexMachine } from './host-cluster.js';

const entry = (index: number, clientId: number, seq: number, key: string): Entry => ({
  index: index as LogIndex,
  term: 1 as Term,
  type: EntryType.Normal,
  data: encodeProposal(clientId, seq, new TextEncoder().encode(key)),
});

describe('client sessions', () => {
  test('a retry of the last sequence gets the stored reply; an older sequence is refused', () => {
    const mem = new MemoryData();
    const sm = new IndexMachine();
    const first = applyEntry(sm, mem, entry(2, 9, 1, 'a'));
    const retry = applyEntry(sm, mem, entry(3, 9, 1, 'a'));
    expect(retry).toEqual({ outcome: first.outcome, duplicate: true });
    applyEntry(sm, mem, entry(4, 9, 2, 'b'));
    expect(applyEntry(sm, mem, entry(5, 9, 1, 'a')).outcome).toMatchObject({ ok: false, code: 'SessionSeqStale' });
  });

  test('sessions unused for the TTL are dropped at sweep indexes, the same on every replica', () => {
    const run = (): MemoryData => {
      const mem = new MemoryData();
      const sm = new IndexMachine();
      applyEntry(sm, mem, entry(2, 1, 1, 'old'));
      const late = SESSION_TTL_ENTRIES + 10;
      applyEntry(sm, mem, entry(late, 2, 1, 'recent'));
      for (let i = 2; i <= late + 2 * SESSION_SWEEP_EVERY_ENTRIES; i++) afterEntry(mem, i);
      return mem;
    };
    const a = run();
    const sessions = a.reservedScan(new Uint8Array([0xff, 0x73]));
    // Client 1's session (last used at index 2) expired; client 2's is still inside its TTL.
    expect(sessions).toHaveLength(1);
    expect(JSON.stringify(a.sorted())).toBe(JSON.stringify(run().sorted()));
  });
});
