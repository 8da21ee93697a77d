/**
 * A single-producer single-consumer ring of variable-length records on a SharedArrayBuffer, for
 * moving messages between the main thread and one worker without copying through postMessage.
 *
 * Layout: a control block of Int32 words, then `capacityBytes` of data (a power of two).
 * `head` and `tail` are byte positions that only grow (modulo 2^32); the ring holds
 * `tail - head` bytes, never more than `capacityBytes` (checked by each side after it publishes:
 * the producer that its tail stays within a ring of the head it saw, the consumer that its head
 * never passes the tail it saw). A record is laid out as on the wire (src/wire/record.ts): a 12-byte header
 * (length, kind, shard) followed by its payload, padded to 4 bytes. A record never straddles the
 * end: when it does not fit before the end, the producer writes a wrap marker and starts at
 * offset 0.
 *
 * Only the producer writes `tail`, only the consumer writes `head`; each publishes with an
 * Atomics store after the bytes it covers are written, so the other side never sees a partial
 * record.
 *
 * Sleeping and waking. A side sleeps with Atomics.wait (a worker) or Atomics.waitAsync (a thread
 * whose event loop must keep running) on a sequence word: the consumer on `dataSeq` for records,
 * the producer on `spaceSeq` for room. Waking costs the other side an atomic add and a notify, so
 * it is paid only when someone sleeps: a side about to sleep first counts itself in a waiter word
 * (`dataWaiters`, `spaceWaiters`; counters, because the main thread may have several async waiters
 * at once), reads the sequence, checks the ring once more, and only then waits on that sequence
 * value. The other side publishes its index, then loads the waiter word, and bumps the sequence and
 * notifies only when it is non-zero.
 *
 * Why no wakeup is lost (every Atomics operation is sequentially consistent, so all of them fall in
 * one total order that keeps each thread's program order). Producer: (p1) store tail, (p2) load
 * dataWaiters, and if non-zero (p3) bump dataSeq, (p4) notify. Consumer: (c1) add to dataWaiters,
 * (c2) s = load dataSeq, (c3) load tail and find the ring empty, (c4) wait while dataSeq == s.
 * - p2 before c1: then p1 < p2 < c1 < c3, so c3 sees the new tail and the consumer does not sleep.
 * - c1 before p2: p2 sees the waiter, so p3 and p4 happen. If c3 found the ring empty, c3 < p1, so
 *   c2 < p3: s is older than the bumped sequence. Atomics.wait compares and enqueues inside the
 *   same critical section that notify takes: either it compares after p3 (and returns at once,
 *   "not-equal") or it is enqueued before p4 (and p4 wakes it).
 * So the sleeper must count itself and read the sequence, both before its last check (in either
 * order), and the waker must load the waiter word after publishing, never before. The bump can be
 * skipped with the notify: a sleeper that p2 does not see counted has not checked yet.
 * The space side is the mirror image (head for tail, spaceSeq for dataSeq, the producer's try for
 * the check), with one difference: the consumer notifies space waiters only when its read leaves
 * the ring at most half full (see {@link SPACE_LOW_WATER_FRACTION}). Every such read that comes
 * after a producer's failed try sees it counted and wakes it, by the argument above; the read that
 * empties the ring is one of them, so a waiting producer wakes at the latest when the ring is empty
 * (an empty ring fits any record).
 * The sequences are Int32 counters that wrap; a sleeper would miss a wakeup only if exactly 2^32
 * bumps landed between c2 and c4.
 *
 * A thread that dies while counted (a terminated worker) leaves its waiter word raised: the other
 * side then bumps and notifies for nothing, which costs time but is never wrong.
 */

import { CodedError } from '../errors.js';
import { assert } from '../shards/raft/index.js';
import { RECORD_HEADER_BYTES, pooledCopy, recordBytes, recordKindAt, recordLengthAt, recordShardAt, writeRecordHeader } from '../wire/index.js';

const HEAD = 0;
const TAIL = 1;
const DATA_SEQ = 2;
const SPACE_SEQ = 3;
/** Consumers sleeping (or about to) on DATA_SEQ; the producer notifies only when non-zero. */
const DATA_WAITERS = 4;
/** Producers sleeping (or about to) on SPACE_SEQ; the consumer notifies only when non-zero. */
const SPACE_WAITERS = 5;
const CONTROL_WORDS = 16; // one 64-byte line, so the data starts aligned

/** In a record's length field: the rest of the data area up to its end is skipped. */
const WRAP_MARKER = 0xffffffff;

/**
 * A producer waiting for room is woken once the ring holds at most this fraction of its capacity,
 * not at every record freed: it then writes many records per wakeup instead of one record per
 * wakeup while the consumer pays a notify per read. It may still find its record does not fit
 * (a large record needing a wrap gap); it sleeps again and the read that empties the ring wakes it.
 */
const SPACE_LOW_WATER_FRACTION = 0.5;

/** Largest payload one record may carry in a ring of `capacityBytes`. */
export function maxPayloadBytes(capacityBytes: number): number {
  // Room for the record plus a wrap marker, so a maximal record always fits after a wrap.
  return capacityBytes / 2 - RECORD_HEADER_BYTES - 4;
}

export interface RingRecord {
  readonly kind: number;
  readonly shard: number;
  /** A copy: safe to keep after the next read. */
  readonly payload: Uint8Array;
}

export class RingError extends CodedError<'RecordTooLarge' | 'InvalidRingSize' | 'InvalidRecordField'> {
  override readonly name = 'RingError';
}

export class Ring {
  readonly capacityBytes: number;
  private readonly ctl: Int32Array;
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private readonly mask: number;
  /** Bytes in use at or below which a read wakes waiting producers (SPACE_LOW_WATER_FRACTION). */
  private readonly spaceLowWaterBytes: number;
  /**
   * Producer on a thread whose event loop keeps running (the main thread): a sleeping consumer is
   * woken once per pass of the event loop (setImmediate), after every record written in that
   * pass, instead of once per record. See {@link wakeConsumer}.
   */
  wakeOncePerPass = false;
  private wakeScheduled = false;

  /** Allocates the shared memory for a ring of `capacityBytes` (a power of two, >= 64). */
  static allocate(capacityBytes: number): SharedArrayBuffer {
    if (!Number.isInteger(capacityBytes) || capacityBytes < 64 || capacityBytes > 1 << 30 || (capacityBytes & (capacityBytes - 1)) !== 0) {
      throw new RingError('InvalidRingSize', `ring capacity must be a power of two in [64, 2^30] bytes, got ${capacityBytes}`);
    }
    return new SharedArrayBuffer(CONTROL_WORDS * 4 + capacityBytes);
  }

  /** Attaches to memory from {@link allocate}; both sides of the ring attach to the same buffer. */
  constructor(readonly buffer: SharedArrayBuffer) {
    this.capacityBytes = buffer.byteLength - CONTROL_WORDS * 4;
    if (this.capacityBytes < 64 || (this.capacityBytes & (this.capacityBytes - 1)) !== 0) {
      throw new RingError('InvalidRingSize', `buffer of ${buffer.byteLength} bytes is not a ring`);
    }
    this.ctl = new Int32Array(buffer, 0, CONTROL_WORDS);
    this.bytes = new Uint8Array(buffer, CONTROL_WORDS * 4, this.capacityBytes);
    this.view = new DataView(buffer, CONTROL_WORDS * 4, this.capacityBytes);
    this.mask = this.capacityBytes - 1;
    this.spaceLowWaterBytes = Math.floor(this.capacityBytes * SPACE_LOW_WATER_FRACTION);
  }

  /** Bytes in use (records, headers, padding, wrap gaps). */
  usedBytes(): number {
    return (Atomics.load(this.ctl, TAIL) - Atomics.load(this.ctl, HEAD)) >>> 0;
  }

  /**
   * Sides counted as sleeping or about to sleep: consumers waiting for records (`data`) and
   * producers waiting for room (`space`). Zero whenever nobody waits; for tests and diagnostics.
   */
  waiters(): { data: number; space: number } {
    return { data: Atomics.load(this.ctl, DATA_WAITERS), space: Atomics.load(this.ctl, SPACE_WAITERS) };
  }

  // ------------------------------------------------------------------ producer side

  /**
   * Appends one record; false when the ring lacks room (the caller waits for space or refuses
   * work). Throws RingError RecordTooLarge for a payload beyond {@link maxPayloadBytes}.
   */
  tryWrite(kind: number, shard: number, payload: Uint8Array): boolean {
    if (payload.length > maxPayloadBytes(this.capacityBytes)) {
      throw new RingError('RecordTooLarge', `record of ${payload.length} bytes exceeds ${maxPayloadBytes(this.capacityBytes)}`);
    }
    if (!Number.isInteger(kind) || kind < 0 || kind > 0xffff || !Number.isInteger(shard) || shard < 0 || shard > 0xffffffff) {
      throw new RingError('InvalidRecordField', `kind must be a u16 and shard a u32 (kind ${kind}, shard ${shard})`);
    }
    const size = recordBytes(payload.length);
    const tail = Atomics.load(this.ctl, TAIL) >>> 0;
    const head = Atomics.load(this.ctl, HEAD) >>> 0;
    const used = (tail - head) >>> 0;
    const off = tail & this.mask;
    const untilEnd = this.capacityBytes - off;
    const gap = size > untilEnd ? untilEnd : 0;
    if (used + gap + size > this.capacityBytes) return false;
    let at = off;
    if (gap > 0) {
      // Too close to the end: mark the rest as skipped and start over at offset 0.
      this.view.setUint32(off, WRAP_MARKER, true); // where a record's length would be
      at = 0;
    }
    writeRecordHeader(this.view, at, payload.length, kind, shard);
    this.bytes.set(payload, at + RECORD_HEADER_BYTES);
    const published = (tail + gap + size) >>> 0;
    Atomics.store(this.ctl, TAIL, published | 0);
    // The head only grows, so the one seen above bounds the bytes held from above.
    if ((published - head) >>> 0 > this.capacityBytes) assert(false, `ring: tail ${published} beyond head ${head} + capacity ${this.capacityBytes}`);
    // After the tail store, never before it: see the race argument at the top of the file.
    if (this.wakeOncePerPass) {
      if (!this.wakeScheduled) {
        this.wakeScheduled = true;
        setImmediate(this.wakeConsumer);
      }
    } else this.wakeConsumer();
    return true;
  }

  /**
   * The producer's check for a sleeping consumer (p2-p4 of the race argument). Deferred to the
   * end of the event loop's pass with wakeOncePerPass: it still comes after every tail store it
   * covers, which is all the argument asks; a consumer woken later only waits longer.
   */
  private readonly wakeConsumer = (): void => {
    this.wakeScheduled = false;
    if (Atomics.load(this.ctl, DATA_WAITERS) !== 0) {
      Atomics.add(this.ctl, DATA_SEQ, 1);
      Atomics.notify(this.ctl, DATA_SEQ);
    }
  };

  /**
   * Writes one record, waiting (without blocking the event loop) while the ring is full, for at
   * most `timeoutMs`. False when it is still full then: the caller refuses the work ("overloaded").
   * A waiting write wakes when the consumer has drained the ring to half its capacity.
   */
  async write(kind: number, shard: number, payload: Uint8Array, timeoutMs: number): Promise<boolean> {
    if (this.tryWrite(kind, shard, payload)) return true;
    const deadline = performance.now() + timeoutMs;
    Atomics.add(this.ctl, SPACE_WAITERS, 1);
    try {
      for (;;) {
        // The sequence is read after counting ourselves and before trying (see the file comment).
        const seq = Atomics.load(this.ctl, SPACE_SEQ);
        if (this.tryWrite(kind, shard, payload)) return true;
        const left = deadline - performance.now();
        if (left <= 0) return false;
        const r = Atomics.waitAsync(this.ctl, SPACE_SEQ, seq, left);
        if (r.async) await r.value;
      }
    } finally {
      Atomics.sub(this.ctl, SPACE_WAITERS, 1);
    }
  }

  /** True when a record of `payloadBytes` would fit now (what {@link tryWrite} would find). */
  fits(payloadBytes: number): boolean {
    const size = recordBytes(payloadBytes);
    const tail = Atomics.load(this.ctl, TAIL) >>> 0;
    const used = (tail - (Atomics.load(this.ctl, HEAD) >>> 0)) >>> 0;
    const untilEnd = this.capacityBytes - (tail & this.mask);
    return used + (size > untilEnd ? untilEnd : 0) + size <= this.capacityBytes;
  }

  /**
   * Resolves when a record of `payloadBytes` may fit (the consumer drained the ring to half its
   * capacity, or emptied it), or after `timeoutMs`; the event loop keeps running. For a producer
   * that keeps its own bounded backlog instead of waiting inside a write (the worker's outbox).
   */
  async waitForSpace(payloadBytes: number, timeoutMs: number): Promise<void> {
    if (this.fits(payloadBytes)) return;
    Atomics.add(this.ctl, SPACE_WAITERS, 1);
    try {
      // Counted, then the sequence, then the check (see the file comment).
      const seq = Atomics.load(this.ctl, SPACE_SEQ);
      if (this.fits(payloadBytes)) return;
      const r = Atomics.waitAsync(this.ctl, SPACE_SEQ, seq, timeoutMs);
      if (r.async) await r.value;
    } finally {
      Atomics.sub(this.ctl, SPACE_WAITERS, 1);
    }
  }

  /** As {@link write}, blocking the calling thread: for workers only, never the main thread. */
  writeSync(kind: number, shard: number, payload: Uint8Array, timeoutMs: number): boolean {
    if (this.tryWrite(kind, shard, payload)) return true;
    const deadline = performance.now() + timeoutMs;
    Atomics.add(this.ctl, SPACE_WAITERS, 1);
    try {
      for (;;) {
        const seq = Atomics.load(this.ctl, SPACE_SEQ);
        if (this.tryWrite(kind, shard, payload)) return true;
        const left = deadline - performance.now();
        if (left <= 0) return false;
        Atomics.wait(this.ctl, SPACE_SEQ, seq, left);
      }
    } finally {
      Atomics.sub(this.ctl, SPACE_WAITERS, 1);
    }
  }

  // ------------------------------------------------------------------ consumer side

  /** Takes the next record (payload copied), or undefined when the ring is empty. */
  read(): RingRecord | undefined {
    let out: RingRecord | undefined;
    this.readView((kind, shard, view) => {
      out = { kind, shard, payload: pooledCopy(view) };
    });
    return out;
  }

  /**
   * Hands the next record to `fn` as a view into shared memory, valid only during the call (the
   * producer reuses the bytes as soon as it returns). Returns false when the ring is empty.
   */
  readView(fn: (kind: number, shard: number, payload: Uint8Array) => void): boolean {
    let head = Atomics.load(this.ctl, HEAD) >>> 0;
    const tail = Atomics.load(this.ctl, TAIL) >>> 0;
    if (head === tail) return false;
    let off = head & this.mask;
    if (recordLengthAt(this.view, off) === WRAP_MARKER) {
      head = (head + (this.capacityBytes - off)) >>> 0;
      off = 0;
    }
    const len = recordLengthAt(this.view, off);
    const kind = recordKindAt(this.view, off);
    const shard = recordShardAt(this.view, off);
    fn(kind, shard, this.bytes.subarray(off + RECORD_HEADER_BYTES, off + RECORD_HEADER_BYTES + len));
    const size = recordBytes(len);
    head = (head + size) >>> 0;
    Atomics.store(this.ctl, HEAD, head | 0);
    // The tail only grows, so a head past the one seen above would wrap to more than the capacity.
    if ((tail - head) >>> 0 > this.capacityBytes) assert(false, `ring: head ${head} passed tail ${tail}`);
    // After the head store (see the file comment). `tail` may be stale, which only makes `used`
    // smaller than it is: a wakeup may come early (the producer sleeps again), never late.
    if (Atomics.load(this.ctl, SPACE_WAITERS) !== 0 && (tail - head) >>> 0 <= this.spaceLowWaterBytes) {
      Atomics.add(this.ctl, SPACE_SEQ, 1);
      Atomics.notify(this.ctl, SPACE_SEQ);
    }
    return true;
  }

  /**
   * The kind of the next record, without taking it; undefined when the ring is empty. Lets a
   * consumer leave work in the ring (backpressure) rather than take it and hold it.
   */
  peekKind(): number | undefined {
    const head = Atomics.load(this.ctl, HEAD) >>> 0;
    if (head === Atomics.load(this.ctl, TAIL) >>> 0) return undefined;
    let off = head & this.mask;
    if (recordLengthAt(this.view, off) === WRAP_MARKER) off = 0;
    return recordKindAt(this.view, off);
  }

  /**
   * Resolves when records may be there (or after `timeoutMs`); the event loop keeps running.
   * Several calls may wait at once; a record wakes them all.
   */
  async waitForData(timeoutMs: number): Promise<void> {
    if (this.usedBytes() > 0) return;
    Atomics.add(this.ctl, DATA_WAITERS, 1);
    try {
      // Counted, then the sequence, then the check (see the file comment).
      const seq = Atomics.load(this.ctl, DATA_SEQ);
      if (this.usedBytes() > 0) return;
      const r = Atomics.waitAsync(this.ctl, DATA_SEQ, seq, timeoutMs);
      if (r.async) await r.value;
    } finally {
      Atomics.sub(this.ctl, DATA_WAITERS, 1);
    }
  }

  /** Blocks the calling thread until records may be there (or `timeoutMs`); never on the main thread. */
  waitForDataSync(timeoutMs: number): void {
    if (this.usedBytes() > 0) return;
    Atomics.add(this.ctl, DATA_WAITERS, 1);
    try {
      const seq = Atomics.load(this.ctl, DATA_SEQ);
      if (this.usedBytes() > 0) return;
      Atomics.wait(this.ctl, DATA_SEQ, seq, timeoutMs);
    } finally {
      Atomics.sub(this.ctl, DATA_WAITERS, 1);
    }
  }
}
