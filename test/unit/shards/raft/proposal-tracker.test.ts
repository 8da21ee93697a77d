import { describe, expect, test } from 'vitest';
import { ProposalTracker } from '../../../../src/shards/raft/proposals.js';
import type { LogIndex, Term } from '../../../../src/shards/raft/types.js';

const terms =
  (m: Record<number, number>) =>
  (i: LogIndex): Term | undefined =>
    m[i] as Term | undefined;

describe('ProposalTracker', () => {
  test('settles proposals as commit passes them: same term applies, other term dropped, compacted unknown', () => {
    const t = new ProposalTracker();
    t.track(5 as LogIndex, 2 as Term);
    t.track(6 as LogIndex, 2 as Term);
    t.track(7 as LogIndex, 2 as Term);
    expect(t.resolve(4 as LogIndex, terms({}))).toEqual([]);
    expect(t.resolve(7 as LogIndex, terms({ 6: 3, 7: 2 }))).toEqual([
      { index: 5, term: 2, code: 'ProposalOutcomeUnknown' },
      { index: 6, term: 2, code: 'ProposalDropped' },
    ]);
    expect(t.size).toBe(0);
  });

  test('a proposal below older unresolved ones (re-election after truncation) is settled in index order, not held back', () => {
    const t = new ProposalTracker();
    t.track(9 as LogIndex, 2 as Term);
    t.track(6 as LogIndex, 4 as Term);
    expect(t.resolve(7 as LogIndex, terms({ 6: 5 }))).toEqual([{ index: 6, term: 4, code: 'ProposalDropped' }]);
    expect(t.size).toBe(1);
  });
});
