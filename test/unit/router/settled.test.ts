import { describe, expect, test } from 'vitest';
import { SettledShards, isSettled } from '../../../src/router/settled.js';
import type { SettledAnswer } from '../../../src/router/settled.js';
import type { NodeId, ShardId } from '../../../src/shards/raft/index.js';

const self = 1 as NodeId;
const s = (x: number): ShardId => x as ShardId;
const settledAnswer: SettledAnswer = { role: 'leader', term: 3, voters: [1, 2, 3], learners: [], applied: 7, lastIndex: 7 };

/** The shards of `led` that `st` asks this round, each in term `term` of the map (3 when absent) against `target`. */
function asked(st: SettledShards, led: readonly number[], target: readonly number[], term: ReadonlyMap<ShardId, number> = new Map()): ShardId[] {
  return st.toAsk(
    led.map(s),
    (x) => term.get(x) ?? 3,
    () => target,
  );
}

describe('isSettled', () => {
  test('a leader whose voters are its target, with no learners and its whole log applied', () => {
    expect(isSettled(self, settledAnswer, [3, 2, 1])).toBe(true);
  });
  test('not settled when anything is left to do or could still change the membership', () => {
    expect(isSettled(self, { ...settledAnswer, role: 'follower' }, [1, 2, 3])).toBe(false);
    expect(isSettled(self, { ...settledAnswer, learners: [4] }, [1, 2, 3])).toBe(false);
    // An entry not applied yet may be a membership change of an earlier leader.
    expect(isSettled(self, { ...settledAnswer, applied: 6 }, [1, 2, 3])).toBe(false);
    expect(isSettled(self, settledAnswer, [1, 2, 4])).toBe(false);
    expect(isSettled(self, settledAnswer, [1, 2])).toBe(false);
    expect(isSettled(self, { ...settledAnswer, voters: [2, 3, 4] }, [2, 3, 4])).toBe(false);
  });
});

describe('SettledShards', () => {
  test('a settled shard is not asked again while led here in the same term with the same target', () => {
    const target = [1, 2, 3];
    const st = new SettledShards(self);
    expect(asked(st, [5], target)).toEqual([5]);
    st.answered(s(5), settledAnswer, target);
    expect(asked(st, [5], target)).toEqual([]);
    expect(asked(st, [5], target)).toEqual([]);
    expect(st.skipped).toBe(2);
    expect(st.size).toBe(1);
  });

  test('asks again after a new term, a new target, a step taken, or a round where it was not led here', () => {
    const target = [1, 2, 3];
    const st = new SettledShards(self);
    const term = new Map([[s(5), 3]]);
    const ask = (t: readonly number[] = target): ShardId[] => asked(st, [5], t, term);
    const settle = (): void => {
      ask();
      st.answered(s(5), { ...settledAnswer, term: term.get(s(5))! }, target);
      expect(ask()).toEqual([]);
    };
    settle();
    term.set(s(5), 4); // led again in a later term: an earlier leader may have changed it meanwhile
    expect(ask()).toEqual([5]);
    st.answered(s(5), { ...settledAnswer, term: 4 }, target);
    expect(ask()).toEqual([]);
    // A new record: a new array even when it holds the same nodes.
    expect(ask([1, 2, 3])).toEqual([5]);
    settle();
    st.changed(s(5));
    expect(ask()).toEqual([5]);
    settle();
    expect(asked(st, [], target, term)).toEqual([]); // not led here this round
    expect(ask()).toEqual([5]);
  });

  test('an answer that is not settled is asked again every round', () => {
    const target = [1, 2, 3];
    const st = new SettledShards(self);
    asked(st, [1], target);
    st.answered(s(1), { ...settledAnswer, learners: [4] }, target);
    expect(asked(st, [1], target)).toEqual([1]);
    expect(st.size).toBe(0);
  });
});
