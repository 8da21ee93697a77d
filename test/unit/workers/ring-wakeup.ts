/**
 * The two sides of the lost-wakeup tests, runnable on the test thread or in a worker
 * (ring-peer.ts). The waking side pauses at random before each record or read; the sleeping side
 * uses a {@link StretchedRing}, so its last look at the ring is often followed by a pause of some
 * microseconds before it sleeps: a record or room then arrives in that window, the one a
 * lost-wakeup bug loses, far more often than the nanoseconds it lasts without the pause.
 */
import { Ring } from '../../../src/workers/ring.js';
import { recordBytes } from './ring-records.js';

/** Word of the `sync` Int32Array: records the consumer has taken. */
export const CONSUMED = 0;

/** Fixed payload of the space tests: 12-byte header + 20 = 32 bytes, so 8 fill a 256-byte ring. */
export const BURST_PAYLOAD_BYTES = 20;
const BURST_RECORD_BYTES = 32;

/** xorshift32: the pause pattern is the same every run (the thread timing is not). */
export function prng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function spinMicros(us: number): void {
  const until = performance.now() + us / 1000;
  while (performance.now() < until);
}

const napWord = new Int32Array(new SharedArrayBuffer(4));

/** Sleeps about `us` microseconds, giving the core up (nobody notifies this word). */
function napMicros(us: number): void {
  Atomics.wait(napWord, 0, 0, us / 1000);
}

/** Mostly no pause or a few microseconds (inside the other side's sleep path), sometimes longer. */
export function randomPause(rand: () => number): void {
  const r = rand();
  if (r < 0.3) return;
  if (r < 0.8) spinMicros(rand() * 20);
  else if (r < 0.95) spinMicros(20 + rand() * 180);
  else spinMicros(1000 + rand() * 1000);
}

/**
 * A ring whose sleeping side pauses at random after looking at the ring and finding nothing: the
 * wait paths look through usedBytes() (for records) and tryWrite() (for room), so the pause falls
 * between a side's check and its wait.
 */
export class StretchedRing extends Ring {
  constructor(
    buffer: SharedArrayBuffer,
    private readonly rand: () => number,
  ) {
    super(buffer);
  }

  override usedBytes(): number {
    const used = super.usedBytes();
    if (used === 0) this.stretch();
    return used;
  }

  override tryWrite(kind: number, shard: number, payload: Uint8Array): boolean {
    const ok = super.tryWrite(kind, shard, payload);
    if (!ok) this.stretch();
    return ok;
  }

  /**
   * Half the time nothing; else a spin (the other side runs on another core meanwhile) or a nap
   * that gives the core up (on a busy machine the two threads may take turns on one core, and a
   * spin would then only delay both).
   */
  private stretch(): void {
    const r = this.rand();
    if (r < 0.5) return;
    if (r < 0.75) spinMicros(this.rand() * 20);
    else napMicros(20 + this.rand() * 180);
  }
}

function checkBytes(i: number, payload: Uint8Array, size: number): void {
  const want = recordBytes(i, size);
  if (payload.length !== size || payload.some((b, j) => b !== want[j])) throw new Error(`record ${i}: payload differs`);
}

function pastDeadline(deadline: number, what: string): void {
  if (performance.now() > deadline) throw new Error(`deadline passed: ${what}`);
}

/**
 * Producer of the data-side test: writes record i only after the consumer took record i - 1, so
 * the consumer sleeps before (or while) every record arrives, and one lost wakeup stalls it for
 * its whole wait timeout.
 */
export function pingPongProduce(ring: Ring, sync: Int32Array, count: number, rand: () => number, deadline: number): void {
  for (let i = 0; i < count; i++) {
    randomPause(rand);
    if (!ring.tryWrite(i & 0xffff, i, recordBytes(i, i % 50))) throw new Error(`record ${i}: the ring should be empty`);
    const spinUntil = performance.now() + 0.1;
    while (Atomics.load(sync, CONSUMED) <= i) {
      pastDeadline(deadline, `record ${i} not taken; ${Atomics.load(sync, CONSUMED)} of ${count} taken`);
      // Spin first (tight timing), then sleep until the consumer's notify.
      if (performance.now() > spinUntil) Atomics.wait(sync, CONSUMED, i, 10);
    }
  }
}

/** Checks record i (of the data-side test) and counts it for the producer. */
export function takePingPong(sync: Int32Array, i: number, kind: number, shard: number, payload: Uint8Array): void {
  if (shard !== i || kind !== (i & 0xffff)) throw new Error(`expected record ${i}, got shard ${shard} kind ${kind}`);
  checkBytes(i, payload, i % 50);
  Atomics.store(sync, CONSUMED, i + 1);
  Atomics.notify(sync, CONSUMED);
}

/**
 * Consumer of the space-side tests (a ring of 256 bytes, 32-byte records): waits until the ring is
 * full (the producer is asleep or about to be), pauses at random, then takes records back to back
 * until the ring is half empty: the last of them is the read that must wake the producer, and it
 * comes a few microseconds after the producer found the ring full. One lost wakeup and the ring
 * never fills again until the producer's wait times out.
 */
export function burstConsume(ring: Ring, sync: Int32Array, count: number, rand: () => number, deadline: number): void {
  const capacity = ring.capacityBytes;
  let i = 0;
  const take = (): void => {
    const ok = ring.readView((kind, shard, payload) => {
      if (shard !== i || kind !== (i & 0xffff)) throw new Error(`expected record ${i}, got shard ${shard} kind ${kind}`);
      checkBytes(i, payload, BURST_PAYLOAD_BYTES);
    });
    if (!ok) throw new Error('the ring emptied under its only consumer');
    i++;
    Atomics.store(sync, CONSUMED, i);
  };
  while (i < count) {
    // Full, or everything that is left has been written. Spin a little, then nap between looks.
    const spinUntil = performance.now() + 0.05;
    while (ring.usedBytes() < capacity && i + ring.usedBytes() / BURST_RECORD_BYTES < count) {
      pastDeadline(deadline, `ring not refilled; ${i} of ${count} taken, ${ring.usedBytes()} bytes in use`);
      if (performance.now() > spinUntil) napMicros(20);
    }
    const target = i + ring.usedBytes() / BURST_RECORD_BYTES === count ? 0 : capacity / 2;
    randomPause(rand);
    while (ring.usedBytes() > target) take();
  }
}
