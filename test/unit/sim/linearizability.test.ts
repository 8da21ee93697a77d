/**
 * The linearizability checker: hand-made histories with known verdicts, the real-time rule at equal
 * timestamps, operations of unknown outcome, an exhaustive search as an oracle on tiny random
 * histories, and larger randomized histories that are linearizable by construction (and stop being
 * so once one read returns a value nobody wrote).
 */
import { describe, expect, test } from 'vitest';
import { Prng } from '../../../src/shards/raft/prng.js';
import type { CheckResult, Operation } from '../../sim/history.js';
import { checkHistory } from '../../sim/linearizability.js';

const U = Infinity;

/** Builds operations with fresh ids; `ret` Infinity means the outcome is unknown. */
function builder(defaultKey = 'k') {
  let id = 0;
  return {
    put(value: string, call: number, ret: number, key = defaultKey, client = 0): Operation {
      return {
        id: id++,
        client,
        input: { op: 'put', key, value },
        call,
        ret,
        ...(ret === U ? {} : { output: { kind: 'ok' } }),
      };
    },
    get(value: string | null, call: number, ret: number, key = defaultKey, client = 0): Operation {
      return {
        id: id++,
        client,
        input: { op: 'get', key },
        call,
        ret,
        ...(ret === U ? {} : { output: { kind: 'value', value } }),
      };
    },
    cas(expected: string | null, value: string, swapped: boolean, call: number, ret: number, key = defaultKey, client = 0): Operation {
      return {
        id: id++,
        client,
        input: { op: 'cas', key, expected, value },
        call,
        ret,
        ...(ret === U ? {} : { output: { kind: 'cas', swapped } }),
      };
    },
  };
}

function expectFailure(result: CheckResult, key: string): Extract<CheckResult, { ok: false }> {
  expect(result.ok).toBe(false);
  if (result.ok !== false) throw new Error('unreachable');
  expect(result.key).toBe(key);
  return result;
}

describe('checkHistory: sequential and classic cases', () => {
  test('an empty history is linearizable', () => {
    expect(checkHistory([])).toEqual({ ok: true });
  });

  test('a sequential history of puts, gets and cas passes', () => {
    const b = builder();
    const ops = [
      b.get(null, 0, 1),
      b.cas(null, 'a', true, 2, 3),
      b.get('a', 4, 5),
      b.cas(null, 'x', false, 6, 7),
      b.cas('a', 'b', true, 8, 9),
      b.put('c', 10, 11),
      b.get('c', 12, 13),
      b.cas('b', 'y', false, 14, 15),
      b.get('c', 16, 17),
    ];
    expect(checkHistory(ops)).toEqual({ ok: true });
  });

  test('a stale read after a completed write fails', () => {
    const b = builder();
    const ops = [b.put('a', 0, 1), b.put('b', 2, 3), b.get('a', 4, 5)];
    const r = expectFailure(checkHistory(ops), 'k');
    expect(r.operations).toHaveLength(3);
    expect(r.message).toContain('"k"');
    expect(r.message).toContain('At most 2 of its 3 completed operations');
    expect(r.message).toContain('#2 client 0 [4, 5] get → "a" cannot be placed');
    expect(r.message).toContain('#0 client 0 [0, 1] put "a"');
  });

  test('a read of a value never written fails, even when concurrent with every write', () => {
    const b = builder();
    const ops = [b.put('a', 0, 10), b.put('b', 0, 10), b.get('zzz', 0, 10)];
    expectFailure(checkHistory(ops), 'k');
  });

  test('a read of an absent key after a write fails', () => {
    const b = builder();
    expectFailure(checkHistory([b.put('a', 0, 1), b.get(null, 2, 3)]), 'k');
  });

  test('two cas from the same expected value cannot both succeed', () => {
    const b = builder();
    expectFailure(checkHistory([b.put('a', 0, 1), b.cas('a', 'b', true, 2, 10), b.cas('a', 'c', true, 3, 9)]), 'k');
    const c = builder();
    expectFailure(checkHistory([c.cas(null, 'b', true, 0, 10), c.cas(null, 'c', true, 0, 10)]), 'k');
  });

  test('a failed cas needs the value to differ at some point in its window', () => {
    const b = builder();
    expectFailure(checkHistory([b.put('a', 0, 1), b.cas('a', 'b', false, 2, 3)]), 'k');
    const c = builder();
    const ops = [c.put('a', 0, 1), c.put('x', 2, 6), c.cas('a', 'b', false, 3, 4), c.put('a', 3, 7), c.get('a', 8, 9)];
    expect(checkHistory(ops)).toEqual({ ok: true });
  });

  test('a read that sees a write which then un-happens fails', () => {
    const b = builder();
    const ops = [b.put('1', 0, 1), b.put('2', 2, 10), b.get('2', 3, 4), b.get('1', 5, 6)];
    expectFailure(checkHistory(ops), 'k');
  });
});

describe('checkHistory: concurrency', () => {
  test('concurrent writes may be seen in either order', () => {
    for (const [first, second] of [
      ['a', 'b'],
      ['b', 'a'],
    ] as const) {
      const b = builder();
      const ops = [b.put('a', 0, 10), b.put('b', 0, 10), b.get(first, 1, 2), b.get(second, 3, 4), b.get(second, 11, 12)];
      expect(checkHistory(ops)).toEqual({ ok: true });
    }
  });

  test('once both concurrent writes returned, the later reads must agree', () => {
    const b = builder();
    const ops = [b.put('a', 0, 10), b.put('b', 0, 10), b.get('a', 11, 12), b.get('b', 13, 14)];
    expectFailure(checkHistory(ops), 'k');
  });

  test('a read concurrent with a write may return the old or the new value', () => {
    for (const seen of [null, 'a']) {
      const b = builder();
      expect(checkHistory([b.put('a', 0, 10), b.get(seen, 5, 6)])).toEqual({ ok: true });
    }
  });

  test('a chain of overlapping cas passes only in the order the values allow', () => {
    const b = builder();
    const ops = [b.cas('b', 'c', true, 0, 20), b.cas('a', 'b', true, 1, 19), b.cas(null, 'a', true, 2, 18), b.get('c', 21, 22)];
    expect(checkHistory(ops)).toEqual({ ok: true });
  });

  test('equal timestamps: an operation returning at t precedes one called at t', () => {
    const b = builder();
    expectFailure(checkHistory([b.put('a', 0, 5), b.get(null, 5, 6)]), 'k');
    const c = builder();
    expect(checkHistory([c.put('a', 0, 5), c.get(null, 4, 6)])).toEqual({ ok: true });
  });

  test('equal timestamps: instantaneous operations at the same instant are concurrent', () => {
    for (const seen of [null, 'a']) {
      const b = builder();
      expect(checkHistory([b.put('a', 5, 5), b.get(seen, 5, 5)])).toEqual({ ok: true });
    }
    const c = builder();
    // ...but still ordered against operations that return at or are called at that instant.
    expectFailure(checkHistory([c.put('a', 5, 5), c.get(null, 5, 6)]), 'k');
    const d = builder();
    expectFailure(checkHistory([d.put('a', 0, 5), d.get(null, 5, 5)]), 'k');
  });
});

describe('checkHistory: unknown outcomes', () => {
  test('an unknown put may have happened', () => {
    const b = builder();
    expect(checkHistory([b.put('a', 0, 1), b.put('b', 2, U), b.get('b', 5, 6), b.get('b', 7, 8)])).toEqual({ ok: true });
  });

  test('an unknown put may never have happened', () => {
    const b = builder();
    expect(checkHistory([b.put('a', 0, 1), b.put('b', 2, U), b.get('a', 5, 6), b.get('a', 100, 101)])).toEqual({
      ok: true,
    });
  });

  test('an unknown put may take effect long after its call', () => {
    const b = builder();
    expect(checkHistory([b.put('a', 0, 1), b.put('b', 2, U), b.get('a', 5, 6), b.get('b', 100, 101)])).toEqual({
      ok: true,
    });
  });

  test('an unknown put cannot take effect before its call', () => {
    const b = builder();
    expectFailure(checkHistory([b.get('b', 0, 1), b.put('b', 2, U)]), 'k');
  });

  test('an unknown put seen and then unseen without another write fails', () => {
    const b = builder();
    const ops = [b.put('a', 0, 1), b.put('b', 2, U), b.get('b', 5, 6), b.get('a', 7, 8)];
    const r = expectFailure(checkHistory(ops), 'k');
    expect(r.message).toContain('[2, ?] put "b" (outcome unknown)');
  });

  test('an unknown cas takes effect only where it would swap', () => {
    const b = builder();
    expect(checkHistory([b.put('a', 0, 1), b.cas('a', 'b', false, 2, U), b.get('b', 5, 6)])).toEqual({ ok: true });
    const c = builder();
    expect(checkHistory([c.put('a', 0, 1), c.cas('a', 'b', false, 2, U), c.get('a', 5, 6)])).toEqual({ ok: true });
    const d = builder();
    expectFailure(checkHistory([d.put('a', 0, 1), d.cas('x', 'b', false, 2, U), d.get('b', 5, 6)]), 'k');
  });

  test('unknown gets constrain nothing', () => {
    const b = builder();
    expect(checkHistory([b.put('a', 0, 1), b.get(null, 2, U), b.get('a', 3, 4)])).toEqual({ ok: true });
  });

  test('a history of only unknown operations passes', () => {
    const b = builder();
    expect(checkHistory([b.put('a', 0, U), b.get(null, 1, U)])).toEqual({ ok: true });
  });

  test('many unobserved unknown writes do not blow up the search', () => {
    const b = builder();
    const ops: Operation[] = [];
    for (let i = 0; i < 60; i++) {
      ops.push(b.put(`lost${i}`, 10 * i, U, 'k', i));
      ops.push(b.put(`v${i}`, 10 * i + 1, 10 * i + 2, 'k', 100));
      ops.push(b.get(`v${i}`, 10 * i + 3, 10 * i + 4, 'k', 100));
    }
    expect(checkHistory(ops, { maxStatesPerKey: 50_000 })).toEqual({ ok: true });
    ops.push(b.get('never', 1000, 1001));
    expectFailure(checkHistory(ops, { maxStatesPerKey: 200_000 }), 'k');
  });
});

describe('checkHistory: keys and reporting', () => {
  test('keys are independent registers', () => {
    const b = builder();
    const ops = [b.put('x1', 0, 1, 'x'), b.put('y1', 0, 1, 'y'), b.get('x1', 2, 3, 'x'), b.get('y1', 2, 3, 'y'), b.get(null, 2, 3, 'z')];
    expect(checkHistory(ops)).toEqual({ ok: true });
    const bad = [...ops, b.get('x1', 4, 5, 'y')];
    const r = expectFailure(checkHistory(bad), 'y');
    expect(r.operations.every((op) => op.input.key === 'y')).toBe(true);
  });

  test('the first failing key in sorted order is reported', () => {
    const b = builder();
    const ops = [b.put('1', 0, 1, 'b'), b.get('2', 2, 3, 'b'), b.put('1', 0, 1, 'a'), b.get('2', 2, 3, 'a')];
    expectFailure(checkHistory(ops), 'a');
    expectFailure(checkHistory([...ops].reverse()), 'a');
  });

  test('the budget turns an undecided search into unknown, but a definite failure wins', () => {
    const b = builder();
    const ops: Operation[] = [];
    for (let i = 0; i < 20; i++) ops.push(b.put(`v${i}`, 2 * i, 2 * i + 1, 'a'));
    const r = checkHistory(ops, { maxStatesPerKey: 5 });
    expect(r).toMatchObject({ ok: 'unknown', key: 'a' });
    if (r.ok === 'unknown') expect(r.message).toContain('maxStatesPerKey');
    expectFailure(checkHistory([...ops, b.put('1', 0, 1, 'b'), b.get('2', 2, 3, 'b')], { maxStatesPerKey: 5 }), 'b');
  });

  test('malformed histories are rejected', () => {
    const b = builder();
    const put = b.put('a', 5, 6);
    expect(() => checkHistory([{ ...put, ret: 4 }])).toThrow(/ret must be >= call/);
    expect(() => checkHistory([{ id: 1, client: 0, input: { op: 'get', key: 'k' }, call: 0, ret: 1 }])).toThrow(/without output/);
    expect(() => checkHistory([{ ...put, output: { kind: 'value', value: 'a' } }])).toThrow(/'value' output/);
    expect(() => checkHistory([put, put])).toThrow(/duplicate/);
  });
});

interface RandomOptions {
  readonly ops: number;
  /** How far a call may start before, and a return end after, the linearization point. */
  readonly window: number;
  readonly unknownRate: number;
  readonly keys: number;
}

/**
 * A register run sequentially at linearization points 10 apart, each operation then widened into a
 * random [call, ret] window around its point: linearizable by construction.
 */
function randomHistory(p: Prng, o: RandomOptions): Operation[] {
  const state = new Map<string, string | null>();
  const written = new Map<string, string[]>();
  const ops: Operation[] = [];
  for (let n = 0; n < o.ops; n++) {
    const key = `key${p.int(0, o.keys)}`;
    const current = state.get(key) ?? null;
    const values = written.get(key) ?? [];
    const at = 10 * n + 5;
    const call = at - p.int(0, o.window);
    const completed = at + p.int(0, o.window);
    const base = { id: n, client: n % 7, call };
    const roll = p.next();
    if (roll < 0.4) {
      const value = `v${n}`;
      const unknown = p.chance(o.unknownRate);
      if (!unknown || p.chance(0.5)) state.set(key, value);
      values.push(value);
      ops.push({
        ...base,
        input: { op: 'put', key, value },
        ret: unknown ? U : completed,
        ...(unknown ? {} : { output: { kind: 'ok' } }),
      });
    } else if (roll < 0.8) {
      ops.push({ ...base, input: { op: 'get', key }, ret: completed, output: { kind: 'value', value: current } });
    } else {
      const expected = p.chance(0.5) ? current : p.pick([null, ...values]);
      const value = `v${n}`;
      const unknown = p.chance(o.unknownRate);
      const swapped = expected === current && (!unknown || p.chance(0.5));
      if (swapped) state.set(key, value);
      values.push(value);
      ops.push({
        ...base,
        input: { op: 'cas', key, expected, value },
        ret: unknown ? U : completed,
        ...(unknown ? {} : { output: { kind: 'cas', swapped } }),
      });
    }
    written.set(key, values);
  }
  // A simulator records operations as they finish, not in call order.
  return ops.sort((a, b) => a.ret - b.ret || a.id - b.id);
}

/** Real-time order as documented by the checker, stated directly. */
function precedes(a: Operation, b: Operation): boolean {
  if (a.ret < b.call) return true;
  return a.ret === b.call && !(a.call === a.ret && b.call === b.ret);
}

/** Tries every order and every subset of unknown operations; only for tiny histories. */
function bruteForce(ops: readonly Operation[]): boolean {
  const live = ops.filter((op) => op.ret !== U || op.input.op !== 'get');
  const placed = new Set<Operation>();
  const mustPlace = live.filter((op) => op.ret !== U).length;
  let placedKnown = 0;
  const search = (value: string | null): boolean => {
    if (placedKnown === mustPlace) return true;
    for (const op of live) {
      if (placed.has(op)) continue;
      if (live.some((other) => other !== op && !placed.has(other) && precedes(other, op))) continue;
      const input = op.input;
      const out = op.output;
      let nextValue: string | null;
      if (input.op === 'put') nextValue = input.value;
      else if (input.op === 'get') {
        if (out?.kind !== 'value' || out.value !== value) continue;
        nextValue = value;
      } else {
        const swaps = op.ret === U || (out?.kind === 'cas' && out.swapped);
        if (swaps !== (input.expected === value)) continue;
        nextValue = swaps ? input.value : value;
      }
      placed.add(op);
      if (op.ret !== U) placedKnown++;
      const found = search(nextValue);
      placed.delete(op);
      if (op.ret !== U) placedKnown--;
      if (found) return true;
    }
    return false;
  };
  return search(null);
}

/** Small random histories with many equal timestamps and arbitrary (mostly wrong) outputs. */
function tinyHistory(p: Prng): Operation[] {
  const values = [null, 'a', 'b'];
  const ops: Operation[] = [];
  const count = p.int(1, 8);
  for (let id = 0; id < count; id++) {
    const call = p.int(0, 6);
    const ret = p.chance(0.2) ? U : call + p.int(0, 4);
    const base = { id, client: id, call, ret };
    const roll = p.next();
    const value = p.pick(['a', 'b']);
    if (roll < 0.35) {
      ops.push({ ...base, input: { op: 'put', key: 'k', value }, ...(ret === U ? {} : { output: { kind: 'ok' } }) });
    } else if (roll < 0.7) {
      ops.push({
        ...base,
        input: { op: 'get', key: 'k' },
        ...(ret === U ? {} : { output: { kind: 'value', value: p.pick(values) } }),
      });
    } else {
      ops.push({
        ...base,
        input: { op: 'cas', key: 'k', expected: p.pick(values), value },
        ...(ret === U ? {} : { output: { kind: 'cas', swapped: p.chance(0.5) } }),
      });
    }
  }
  return ops;
}

describe('checkHistory: randomized histories', () => {
  test('agrees with an exhaustive search on thousands of tiny histories', () => {
    const p = new Prng(7);
    let passing = 0;
    for (let n = 0; n < 20_000; n++) {
      const ops = tinyHistory(p);
      const expected = bruteForce(ops);
      const got = checkHistory(ops).ok;
      if (got !== expected) {
        const shown = JSON.stringify(ops, (_k, v: unknown) => (v === Infinity ? 'Infinity' : v));
        expect.fail(`history ${n}: expected ${expected}, got ${got}: ${shown}`);
      }
      if (expected) passing++;
    }
    // Both verdicts must be well represented for the comparison to mean anything.
    expect(passing).toBeGreaterThan(3_000);
    expect(passing).toBeLessThan(17_000);
  });

  test('histories linearizable by construction pass; a read of a never-written value fails', () => {
    for (let seed = 1; seed <= 60; seed++) {
      const p = new Prng(seed);
      const ops = randomHistory(p, {
        ops: p.int(20, 300),
        window: p.int(1, 40),
        unknownRate: p.pick([0, 0.05, 0.2]),
        keys: p.int(1, 4),
      });
      const ok = checkHistory(ops);
      expect(ok, `seed ${seed}: ${ok.ok === true ? '' : ok.message}`).toEqual({ ok: true });

      const reads = ops.filter((op) => op.input.op === 'get');
      if (reads.length === 0) continue;
      const victim = p.pick(reads);
      const mutated = ops.map((op) => (op === victim ? { ...op, output: { kind: 'value' as const, value: 'never-written' } } : op));
      const r = expectFailure(checkHistory(mutated), victim.input.key);
      expect(r.operations.some((op) => op.id === victim.id)).toBe(true);
    }
  });

  test('a long, fairly concurrent history checks within a small state budget', () => {
    const p = new Prng(2024);
    const ops = randomHistory(p, { ops: 1000, window: 40, unknownRate: 0.05, keys: 1 });
    expect(checkHistory(ops, { maxStatesPerKey: 20_000 })).toEqual({ ok: true });
  });
});
