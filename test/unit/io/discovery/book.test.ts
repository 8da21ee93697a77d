/**
 * The address book's rules (src/io/discovery/book.ts): a member's own claim wins only with a
 * higher generation (stale and conflicting ones change nothing), gossip is a hint that never
 * changes the book, a newer claim about this node moves its own generation above it, and the
 * generation a run starts with is above both the stored one and the clock.
 */
import { describe, expect, test } from 'vitest';
import { AddressBook } from '../../../../src/io/discovery/index.js';

const SELF = '1'.repeat(64);
const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const STRANGER = 'c'.repeat(64);
const tickets = [
  { id: A, addrs: ['127.0.0.1:1001'] },
  { id: B, addrs: ['127.0.0.1:1002'] },
];
const fresh = (): AddressBook => new AddressBook(SELF, tickets, undefined, 1_000);

describe("a member's own claim", () => {
  test('starts from the tickets, at generation 0', () => {
    const b = fresh();
    expect(b.view().map((m) => [m.id, m.source, m.generation, m.addrs])).toEqual([
      [A, 'ticket', 0, ['127.0.0.1:1001']],
      [B, 'ticket', 0, ['127.0.0.1:1002']],
    ]);
    expect(b.stored().members).toEqual({});
  });

  test('a higher generation replaces; the ticket stays a fallback for dialing', () => {
    const b = fresh();
    expect(b.applyOwn(A, { generation: 5, addrs: ['127.0.0.1:2001'] }, 7)).toBe('learned');
    expect(b.dialAddrs(A)).toEqual(['127.0.0.1:2001', '127.0.0.1:1001']);
    expect(b.view()[0]).toMatchObject({ source: 'discovery', generation: 5, learnedAt: new Date(7).toISOString() });
    expect(b.stored().members).toEqual({ [A]: { generation: 5, addrs: ['127.0.0.1:2001'] } });
  });

  test('a lower generation is stale and an equal one with other addresses a conflict: neither changes anything', () => {
    const b = fresh();
    b.applyOwn(A, { generation: 5, addrs: ['127.0.0.1:2001'] }, 7);
    const before = JSON.stringify(b.view());
    expect(b.applyOwn(A, { generation: 4, addrs: ['127.0.0.1:3001'] }, 8)).toBe('stale');
    expect(b.applyOwn(A, { generation: 5, addrs: ['127.0.0.1:3001'] }, 8)).toBe('conflict');
    expect(b.applyOwn(A, { generation: 5, addrs: ['127.0.0.1:2001'] }, 8)).toBe('unchanged');
    expect(JSON.stringify(b.view())).toBe(before);
  });

  test('the caller must not pass a non-member', () => {
    expect(() => fresh().applyOwn(STRANGER, { generation: 1, addrs: ['1.1.1.1:1'] }, 0)).toThrow(/not a member/);
  });
});

describe('gossip', () => {
  test('a newer claim about a third member is a hint only; older ones, its sender and strangers are not', () => {
    const b = fresh();
    b.applyOwn(B, { generation: 3, addrs: ['127.0.0.1:2002'] }, 0);
    const before = JSON.stringify(b.view());
    const g = b.applyGossip(A, [
      { id: B, generation: 9, addrs: ['127.0.0.1:3002'] },
      { id: A, generation: 99, addrs: ['127.0.0.1:9'] },
      { id: STRANGER, generation: 1, addrs: ['127.0.0.1:9'] },
    ]);
    expect(g).toEqual({ hints: [{ id: B, generation: 9, addrs: ['127.0.0.1:3002'] }], refuted: false, unknown: 1 });
    expect(b.applyGossip(A, [{ id: B, generation: 3, addrs: ['127.0.0.1:3002'] }]).hints).toEqual([]);
    expect(JSON.stringify(b.view())).toBe(before);
  });

  test('a newer claim about this node moves its generation above it; its own echo does not', () => {
    const b = fresh();
    const { announcement } = b.announce(['127.0.0.1:1000']);
    const g0 = announcement.self.generation;
    expect(b.applyGossip(A, [{ id: SELF, generation: g0, addrs: ['127.0.0.1:1000'] }]).refuted).toBe(false);
    expect(b.generation).toBe(g0);
    expect(b.applyGossip(A, [{ id: SELF, generation: g0, addrs: ['127.0.0.1:5555'] }]).refuted).toBe(true);
    expect(b.generation).toBe(g0 + 1);
    expect(b.applyGossip(A, [{ id: SELF, generation: g0 + 40, addrs: ['127.0.0.1:1000'] }]).refuted).toBe(true);
    expect(b.generation).toBe(g0 + 41);
    expect(b.announce(['127.0.0.1:1000']).announcement.self.generation).toBe(g0 + 41);
    // A claim at the top of the range is not refuted (its successor could not be encoded).
    expect(b.applyGossip(A, [{ id: SELF, generation: Number.MAX_SAFE_INTEGER, addrs: ['127.0.0.1:1'] }]).refuted).toBe(false);
    expect(b.applyGossip(A, [{ id: SELF, generation: Number.MAX_SAFE_INTEGER - 1, addrs: ['127.0.0.1:1'] }]).refuted).toBe(true);
    expect(b.generation).toBe(Number.MAX_SAFE_INTEGER);
    expect(b.announce(['127.0.0.1:7']).announcement.self.generation).toBe(Number.MAX_SAFE_INTEGER);
  });

  test("an announcement carries every claimed member as gossip, never a ticket's addresses", () => {
    const b = fresh();
    b.applyOwn(A, { generation: 5, addrs: ['127.0.0.1:2001'] }, 0);
    expect(b.announce(['127.0.0.1:1000']).announcement.gossip).toEqual([{ id: A, generation: 5, addrs: ['127.0.0.1:2001'] }]);
  });
});

describe("this node's generation", () => {
  test('starts above the stored one and the clock; new own addresses move it', () => {
    expect(new AddressBook(SELF, tickets, { generation: 50, members: {} }, 10).generation).toBe(51);
    expect(new AddressBook(SELF, tickets, { generation: 50, members: {} }, 5_000).generation).toBe(5_000);
    const b = new AddressBook(SELF, tickets, undefined, 100);
    expect(b.announce(['127.0.0.1:1']).changed).toBe(false);
    expect(b.announce(['127.0.0.1:1']).announcement.self.generation).toBe(100);
    const moved = b.announce(['127.0.0.1:2']);
    expect(moved.changed).toBe(true);
    expect(moved.announcement.self.generation).toBe(101);
  });

  test('stored claims of members come back as "stored"; those of non-members are dropped', () => {
    const stored = { generation: 9, members: { [A]: { generation: 4, addrs: ['127.0.0.1:4001'] }, [STRANGER]: { generation: 4, addrs: ['127.0.0.1:1'] } } };
    const b = new AddressBook(SELF, tickets, stored, 0);
    expect(b.view()[0]).toMatchObject({ id: A, source: 'stored', generation: 4, addrs: ['127.0.0.1:4001'], ticketAddrs: ['127.0.0.1:1001'] });
    expect(b.has(STRANGER)).toBe(false);
    expect(b.applyOwn(A, { generation: 3, addrs: ['127.0.0.1:1'] }, 0)).toBe('stale');
  });
});
