import { describe, expect, test } from 'vitest';
import {
  LOG_CLOCK_CLIENT,
  SESSION_SWEEP_EVERY_ENTRIES,
  SESSION_TTL_ENTRIES,
  SESSION_TTL_MS,
  afterEntry,
  applyEntry,
  encodeLogClock,
  encodeProposal,
} from '../../../src/shards/sessions.js';
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

/** A log clock entry at `index`: log time moves by `stepMs`. */
const clock = (index: number, stepMs: number): Entry => ({
  index: index as LogIndex,
  term: 1 as Term,
  type: EntryType.Normal,
  data: encodeProposal(LOG_CLOCK_CLIENT, 0, encodeLogClock(stepMs)),
});

/** Applies `entries` (sorted by index) and sweeps at every index from `from` to `to`, as the host does. */
function replay(mem: MemoryData, entries: readonly Entry[], from: number, to: number): Map<number, ReturnType<typeof applyEntry>> {
  const sm = new IndexMachine();
  const at = new Map(entries.map((e) => [e.index as number, e]));
  const out = new Map<number, ReturnType<typeof applyEntry>>();
  for (let i = from; i <= to; i++) {
    const e = at.get(i);
    if (e) out.set(i, applyEntry(sm, mem, e));
    afterEntry(mem, i);
  }
  return out;
}

const sessionsIn = (mem: MemoryData): number => mem.reservedScan(new Uint8Array([0xff, 0x73])).length;

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

  test('sessions unused for both TTLs (entries and log time) are dropped at sweep indexes, the same on every replica', () => {
    const late = SESSION_TTL_ENTRIES + 10;
    const end = late + 2 * SESSION_SWEEP_EVERY_ENTRIES;
    const run = (): MemoryData => {
      const mem = new MemoryData();
      replay(mem, [clock(1, 0), entry(2, 1, 1, 'old'), clock(3, 500), clock(late - 1, SESSION_TTL_MS), entry(late, 2, 1, 'recent')], 1, end);
      return mem;
    };
    const a = run();
    // Client 1's session (last used at index 2, before the mark of log time 500) expired; client
    // 2's is still inside its TTL.
    expect(sessionsIn(a)).toBe(1);
    expect(JSON.stringify(a.sorted())).toBe(JSON.stringify(run().sorted()));
  });

  test('a session past its entry TTL but younger than SESSION_TTL_MS of log time survives: its retry applies nothing', () => {
    // A busy shard: 150,000 entries in 5 s of log time (the router retries for up to 5 s).
    const mem = new MemoryData();
    const n = SESSION_TTL_ENTRIES + 5 * SESSION_SWEEP_EVERY_ENTRIES;
    const marks = Array.from({ length: 6 }, (_, i) => clock(1 + i * (n / 5), 1_000));
    const out = replay(mem, [...marks, entry(3, 7, 1, 'w')], 1, n + 1);
    const retry = applyEntry(new IndexMachine(), mem, entry(n + 2, 7, 1, 'w'));
    expect(retry.duplicate).toBe(true);
    expect(retry.outcome).toEqual(out.get(3)!.outcome);
  });

  test('without log time sessions never expire; one step, however large, does not expire a session used just before it', () => {
    const mem = new MemoryData();
    replay(mem, [entry(2, 1, 1, 'a')], 1, 3 * SESSION_TTL_ENTRIES);
    expect(sessionsIn(mem)).toBe(1);
    // A leader that wrote no log time for a long stretch (or a bogus step): the session used
    // before that step keeps its full TTL from the step on; steps count at most a TTL.
    const m2 = new MemoryData();
    replay(m2, [clock(1, 0), entry(2, 2, 1, 'b'), clock(3, 1e12), clock(4, -1e12)], 1, 2 * SESSION_TTL_ENTRIES);
    expect(sessionsIn(m2)).toBe(1);
    // Another TTL of log time later it does expire.
    const m3 = new MemoryData();
    replay(m3, [clock(1, 0), entry(2, 2, 1, 'b'), clock(3, 1e12), clock(4, SESSION_TTL_MS)], 1, 2 * SESSION_TTL_ENTRIES);
    expect(sessionsIn(m3)).toBe(0);
  });

  test('a malformed log clock entry moves nothing', () => {
    const mem = new MemoryData();
    const bad: Entry = { index: 10 as LogIndex, term: 1 as Term, type: EntryType.Normal, data: encodeProposal(LOG_CLOCK_CLIENT, 0, new Uint8Array(3)) };
    replay(mem, [clock(1, 0), entry(2, 1, 1, 'a'), clock(3, 0), bad], 1, 2 * SESSION_TTL_ENTRIES);
    expect(sessionsIn(mem)).toBe(1);
  });
});
