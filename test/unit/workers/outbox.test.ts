/**
 * The worker's outbox over a real (small) ring: records go straight through while there is room,
 * wait in order while it is full (small ones ahead of bulk), and leave in order as the consumer
 * frees room; raft messages are dropped only past the bound, client replies never, shard events are
 * coalesced per shard.
 */
import { describe, expect, test } from 'vitest';
import { Outbox } from '../../../src/workers/outbox.js';
import { Ring } from '../../../src/workers/ring.js';

const MESSAGE = 1;
const REPLY = 2;
const EVENT = 3;

const payload = (tag: number, bytes = 20): Uint8Array => new Uint8Array(bytes).fill(tag);

function drain(ring: Ring): { kind: number; shard: number; tag: number }[] {
  const out: { kind: number; shard: number; tag: number }[] = [];
  for (let r = ring.read(); r !== undefined; r = ring.read()) out.push({ kind: r.kind, shard: r.shard, tag: r.payload[0]! });
  return out;
}

function fill(ring: Ring): number {
  let n = 0;
  while (ring.tryWrite(MESSAGE, 999, payload(0))) n++;
  return n;
}

describe('worker outbox', () => {
  test('with room, records go straight to the ring and nothing waits', () => {
    const ring = new Ring(Ring.allocate(256));
    const box = new Outbox(ring, 100);
    box.push(MESSAGE, 1, payload(1), 'message');
    box.push(REPLY, 1, payload(2), 'reply');
    expect(box.records()).toBe(0);
    expect(box.counters.held).toBe(0);
    expect(drain(ring).map((r) => r.tag)).toEqual([1, 2]);
  });

  test('a full ring: records wait in order and leave in order; nothing is written past an older waiting record', () => {
    const ring = new Ring(Ring.allocate(256));
    const filler = fill(ring);
    const box = new Outbox(ring, 1000);
    for (let i = 1; i <= 6; i++) box.push(i % 2 === 0 ? REPLY : MESSAGE, i, payload(i), i % 2 === 0 ? 'reply' : 'message');
    expect(box.records()).toBe(6);
    expect(box.bytes()).toBe(120);
    expect(box.counters.held).toBe(6);
    // One record of room: the oldest waiting record takes it, not a new one.
    expect(ring.read()).toBeDefined();
    box.push(REPLY, 7, payload(7), 'reply');
    expect(box.records()).toBe(6);
    const seen = drain(ring).filter((r) => r.shard !== 999);
    expect(seen.map((r) => r.tag)).toEqual([1]);
    expect(box.flush()).toBe(6);
    expect(drain(ring).map((r) => r.tag)).toEqual([2, 3, 4, 5, 6, 7]);
    expect(box.records()).toBe(0);
    expect(box.bytes()).toBe(0);
    expect(filler).toBeGreaterThan(0);
  });

  test('at its bound the outbox is full: small raft messages are dropped only at twice the bound, replies still wait', () => {
    const ring = new Ring(Ring.allocate(256));
    fill(ring);
    const box = new Outbox(ring, 60);
    box.push(MESSAGE, 1, payload(1), 'message');
    box.push(MESSAGE, 2, payload(2), 'message');
    expect(box.full()).toBe(false);
    box.push(MESSAGE, 3, payload(3), 'message');
    expect(box.full()).toBe(true);
    for (const tag of [4, 5, 6]) box.push(MESSAGE, tag, payload(tag), 'message');
    expect(box.counters.messagesDropped).toBe(0);
    box.push(MESSAGE, 7, payload(7), 'message');
    box.push(REPLY, 8, payload(8), 'reply');
    expect(box.counters.messagesDropped).toBe(1);
    expect(box.records()).toBe(7);
    drain(ring);
    box.flush();
    expect(drain(ring).map((r) => r.tag)).toEqual([1, 2, 3, 4, 5, 6, 8]);
    expect(box.full()).toBe(false);
  });

  test('bulk raft messages are dropped at the bound, and small records leave before the bulk that waits', () => {
    const ring = new Ring(Ring.allocate(64 * 1024));
    fill(ring);
    const bulk = 20 * 1024;
    const box = new Outbox(ring, 2 * bulk);
    box.push(MESSAGE, 1, payload(1, bulk), 'message');
    box.push(MESSAGE, 2, payload(2, bulk), 'message');
    expect(box.full()).toBe(true);
    box.push(MESSAGE, 3, payload(3, bulk), 'message');
    expect(box.counters.messagesDropped).toBe(1);
    box.push(MESSAGE, 4, payload(4), 'message');
    box.push(REPLY, 5, payload(5), 'reply');
    expect(box.nextBytes()).toBe(20);
    drain(ring);
    box.flush();
    expect(drain(ring).map((r) => r.tag)).toEqual([4, 5, 1, 2]);
    expect(box.records()).toBe(0);
    expect(box.bytes()).toBe(0);
  });

  test("a small App waits behind its shard's bulk App; other raft messages and other shards' Apps go ahead", () => {
    const ring = new Ring(Ring.allocate(64 * 1024));
    fill(ring);
    const box = new Outbox(ring, 1 << 20);
    box.push(MESSAGE, 1, payload(1, 20 * 1024), 'append');
    box.push(MESSAGE, 1, payload(2), 'append'); // shard 1's next App: after the bulk one
    box.push(MESSAGE, 1, payload(3), 'message'); // shard 1's heartbeat: may overtake
    box.push(MESSAGE, 2, payload(4), 'append'); // another shard's App: nothing of it waits in bulk
    drain(ring);
    box.flush();
    expect(drain(ring).map((r) => r.tag)).toEqual([3, 4, 1, 2]);
    // Once shard 1's bulk left, its small Apps go ahead again.
    fill(ring);
    box.push(MESSAGE, 3, payload(5, 20 * 1024), 'append');
    box.push(MESSAGE, 1, payload(6), 'append');
    drain(ring);
    box.flush();
    expect(drain(ring).map((r) => r.tag)).toEqual([6, 5]);
  });

  test('a waiting shard event is replaced by the newer one of the same shard, in its place', () => {
    const ring = new Ring(Ring.allocate(256));
    fill(ring);
    const box = new Outbox(ring, 1000);
    box.push(EVENT, 1, payload(1, 10), 'event');
    box.push(REPLY, 9, payload(2), 'reply');
    box.push(EVENT, 2, payload(3, 10), 'event');
    box.push(EVENT, 1, payload(4, 30), 'event');
    expect(box.counters.eventsCoalesced).toBe(1);
    expect(box.records()).toBe(3);
    expect(box.bytes()).toBe(60);
    drain(ring);
    box.flush();
    expect(drain(ring).map((r) => [r.shard, r.tag])).toEqual([
      [1, 4],
      [9, 2],
      [2, 3],
    ]);
    // Once written, a shard's next event waits on its own again.
    fill(ring);
    box.push(EVENT, 1, payload(5, 10), 'event');
    expect(box.records()).toBe(1);
    expect(box.counters.eventsCoalesced).toBe(1);
  });

  test('a long backlog drains completely and in order', () => {
    const ring = new Ring(Ring.allocate(1024));
    fill(ring);
    const box = new Outbox(ring, 1 << 20);
    for (let i = 0; i < 5000; i++) box.push(REPLY, i, payload(i & 0xff, 8), 'reply');
    const got: number[] = [];
    while (box.records() > 0) {
      for (let r = ring.read(); r !== undefined; r = ring.read()) if (r.kind === REPLY) got.push(r.shard);
      box.flush();
    }
    for (let r = ring.read(); r !== undefined; r = ring.read()) got.push(r.shard);
    expect(got).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    expect(box.bytes()).toBe(0);
  });
});
