/**
 * The simulator's own parts: if these were wrong, a passing seed would prove nothing. The event
 * queue keeps (time, sequence) order, the state machine is deterministic through snapshots, the
 * network's partitions cut exactly the links they name, and each safety check fires on a
 * hand-made violation.
 */
import { describe, expect, test } from 'vitest';
import { Prng } from '../../../src/shards/raft/prng.js';
import { MemoryStorage } from '../../../src/shards/raft/storage.js';
import type { Entry, LogIndex, Message, NodeId, Term } from '../../../src/shards/raft/types.js';
import { EntryType, MessageType, emptyMessage, nodeId } from '../../../src/shards/raft/types.js';
import { GroupRecord, Violation, checkAck, checkHardState } from '../../sim/checks.js';
import { KvMachine, encodeCommand } from '../../sim/kv.js';
import { Network } from '../../sim/network.js';
import { drawParams } from '../../sim/params.js';
import { EventQueue } from '../../sim/queue.js';

const t = (n: number): Term => n as Term;
const i = (n: number): LogIndex => n as LogIndex;
/** An entry whose payload is a put of `text`, as the simulator's clients write them. */
const entry = (index: number, term: number, text: string): Entry => ({
  index: i(index),
  term: t(term),
  type: EntryType.Normal,
  data: text === '' ? new Uint8Array(0) : encodeCommand({ i: index * 1000 + term, o: 'put', k: 'k', v: text }),
});

function violation(f: () => void): string {
  try {
    f();
  } catch (e) {
    if (e instanceof Violation) return e.check;
    throw e;
  }
  return 'none';
}

describe('event queue', () => {
  test('pops by time, then by scheduling order at equal times', () => {
    const q = new EventQueue<string>();
    const p = new Prng(9);
    const pushed: { time: number; name: string }[] = [];
    for (let k = 0; k < 500; k++) {
      const time = p.int(0, 20);
      const name = `e${k}`;
      q.push(time, name);
      pushed.push({ time, name });
    }
    const expected = pushed
      .slice()
      .sort((a, b) => a.time - b.time)
      .map((e) => e.name);
    const got: string[] = [];
    for (let e = q.pop(); e !== undefined; e = q.pop()) got.push(e.event);
    expect(got).toEqual(expected);
  });
});

describe('key-value state machine', () => {
  test('put and compare-and-set, and a snapshot restores the same state', () => {
    const kv = KvMachine.fromSnapshot(0, new Uint8Array(0));
    expect(kv.apply({ i: 1, o: 'put', k: 'a', v: '1' })).toEqual({ kind: 'ok' });
    expect(kv.apply({ i: 2, o: 'cas', k: 'a', e: '2', v: '3' })).toEqual({ kind: 'cas', swapped: false });
    expect(kv.apply({ i: 3, o: 'cas', k: 'b', e: null, v: 'x' })).toEqual({ kind: 'cas', swapped: true });
    const copy = KvMachine.fromSnapshot(3, kv.snapshot());
    expect(copy.get('a')).toBe('1');
    expect(copy.get('b')).toBe('x');
    expect(copy.get('c')).toBeNull();
    expect(copy.snapshot()).toEqual(kv.snapshot());
  });
});

describe('network', () => {
  test('a one-way partition cuts one direction only, and healing restores it', () => {
    const p = new Prng(4);
    const net = new Network(p, { ...drawParams(new Prng(1)), nodes: 3 });
    const part = net.partition(2);
    expect(net.canDeliver(2, 1)).toBe(false);
    expect(net.canDeliver(1, 2)).toBe(false);
    expect(net.canDeliver(1, 3)).toBe(true);
    net.heal(part.id);
    expect(net.canDeliver(2, 1)).toBe(true);
  });
});

describe('safety checks fire on hand-made violations', () => {
  test('two leaders in one term', () => {
    const g = new GroupRecord(0);
    g.onSoftState(1, { role: 'leader', term: t(3), lead: nodeId(1) });
    expect(violation(() => g.onSoftState(2, { role: 'leader', term: t(3), lead: nodeId(2) }))).toBe('election-safety');
  });

  test('same index and term with different data, or after a different entry', () => {
    const a = new MemoryStorage();
    a.append([entry(1, 1, 'x'), entry(2, 2, 'y')]);
    const g = new GroupRecord(0);
    g.onLogWrite(1, a, [entry(1, 1, 'x'), entry(2, 2, 'y')], 0);
    const b = new MemoryStorage();
    b.append([entry(1, 1, 'x'), entry(2, 2, 'z')]);
    expect(violation(() => g.onLogWrite(2, b, [entry(1, 1, 'x'), entry(2, 2, 'z')], 0))).toBe('log-matching');
    const c = new MemoryStorage();
    c.append([entry(1, 3, 'w'), entry(2, 2, 'y')]);
    expect(violation(() => g.onLogWrite(3, c, [entry(1, 3, 'w'), entry(2, 2, 'y')], 0))).toBe('log-matching');
  });

  test('a committed entry that changes', () => {
    const g = new GroupRecord(0);
    const a = new MemoryStorage();
    a.append([entry(1, 1, 'x')]);
    g.onCommit(1, a, 0, 1);
    const b = new MemoryStorage();
    b.append([entry(1, 2, 'y')]);
    expect(violation(() => g.onCommit(2, b, 0, 1))).toBe('committed-changed');
  });

  test('applying out of order', () => {
    const g = new GroupRecord(0);
    expect(violation(() => g.onApply(1, 4, entry(6, 1, 'x')))).toBe('apply-order');
  });

  test('a leader raising its commit onto an entry of an earlier term', () => {
    const g = new GroupRecord(0);
    const s = new MemoryStorage();
    s.append([entry(1, 1, 'a'), entry(2, 1, 'b'), entry(3, 2, '')]);
    const app = (commit: number): Message => ({ ...emptyMessage(MessageType.App, nodeId(1), nodeId(2), t(2)), commit: i(commit) });
    g.onLeaderApp(1, s, app(1));
    expect(violation(() => g.onLeaderApp(1, s, app(2)))).toBe('leader-commit-rule');
  });

  test('a dropped proposal that commits', () => {
    const g = new GroupRecord(0);
    g.onDropped(7);
    const s = new MemoryStorage();
    s.append([{ index: i(1), term: t(1), type: EntryType.Normal, data: encodeCommand({ i: 7, o: 'put', k: 'k', v: 'v' }) }]);
    expect(violation(() => g.onCommit(1, s, 0, 1))).toBe('proposal-outcome');
  });

  test('durable hard state going back', () => {
    const hs = (term: number, vote: number, commit: number) => ({ term: t(term), vote: vote as NodeId, commit: i(commit) });
    expect(violation(() => checkHardState(0, 1, hs(3, 2, 5), hs(2, 2, 5)))).toBe('hard-state-regressed');
    expect(violation(() => checkHardState(0, 1, hs(3, 2, 5), hs(3, 1, 5)))).toBe('hard-state-regressed');
    expect(violation(() => checkHardState(0, 1, hs(3, 2, 5), hs(3, 2, 4)))).toBe('hard-state-regressed');
    expect(violation(() => checkHardState(0, 1, hs(3, 0, 5), hs(3, 1, 5)))).toBe('none');
  });

  test('an ack or a vote that is not durable yet', () => {
    const durable = new MemoryStorage();
    durable.append([entry(1, 1, 'x')]);
    durable.setHardState({ term: t(1), vote: nodeId(1), commit: i(0) });
    const ack = { ...emptyMessage(MessageType.AppResp, nodeId(2), nodeId(1), t(1)), index: i(2) };
    expect(violation(() => checkAck(0, 2, durable, ack, () => undefined))).toBe('durability');
    const vote = emptyMessage(MessageType.VoteResp, nodeId(2), nodeId(3), t(2));
    expect(violation(() => checkAck(0, 2, durable, vote, () => undefined))).toBe('durability');
    const fine = { ...emptyMessage(MessageType.AppResp, nodeId(2), nodeId(1), t(1)), index: i(1) };
    expect(violation(() => checkAck(0, 2, durable, fine, () => 1))).toBe('none');
    expect(violation(() => checkAck(0, 2, durable, fine, () => 2))).toBe('log-matching');
  });
});
