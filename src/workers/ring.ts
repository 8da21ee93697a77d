/**
 * A single-producer single-consumer ring of variable-length records on a SharedArrayBuffer, for
 * moving messages between the main thread and one worker without copying through postMessage.
 *
 * Layout: a control block of Int32 words, then `capacityBytes` of data (a power of two).
 * `head` and `tail` are byte positions that only grow (modulo 2^32); the ring holds
 * `tail - head` bytes. A record is a 12-byte header (length, kind, shard) followed by its payload,
 * padded to 4 bytes. A record never straddles the end: when it does not fit before the end, the
 * producer writes a wrap marker and starts at offset 0.
 *
 * Only the producer writes `tail`, only the consumer writes `head`; each publishes with an
 * Atomics store after the bytes it covers are written, so the other side never sees a partial
 * record. `dataSeq` and `spaceSeq` are bumped and notified so a side can sleep with
 * Atomics.wait (a worker) or Atomics.waitAsync (a thread whose event loop must keep running).
 */

import { CodedError } from '../errors.js';

const HEAD = 0;
const TAIL = 1;
const DATA_SEQ = 2;
const SPACE_SEQ = 3;
const CONTROL_WORDS = 16; // one 64-byte line, so the data starts aligned

const HEADER_BYTES = 12;
const WRAP_MARKER = 0xffffffff;

/** Largest payload one record may carry in a ring of `capacityBytes`. */
export function maxPayloadBytes(capacityBytes: number): number {
  // Room for the record plus a wrap marker, so a maximal record always fits after a wrap.
  return capacityBytes / 2 - HEADER_BYTES - 4;
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
  }

  /** Bytes in use (records, headers, padding, wrap gaps). */
  usedBytes(): number {
    return (Atomics.load(this.ctl, TAIL) - Atomics.load(this.ctl, HEAD)) >>> 0;
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
    const size = (HEADER_BYTES + payload.length + 3) & ~3;
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
      this.view.setUint32(off, WRAP_MARKER, true);
      at = 0;
    }
    this.view.setUint32(at, payload.length, true);
    this.view.setUint16(at + 4, kind, true);
    this.view.setUint32(at + 8, shard, true);
    this.bytes.set(payload, at + HEADER_BYTES);
    Atomics.store(this.ctl, TAIL, (tail + gap + size) | 0);
    Atomics.add(this.ctl, DATA_SEQ, 1);
    Atomics.notify(this.ctl, DATA_SEQ);
    return true;
  }

  /**
   * Writes one record, waiting (without blocking the event loop) while the ring is full, for at
   * most `timeoutMs`. False when it is still full then: the caller refuses the work ("overloaded").
   */
  async write(kind: number, shard: number, payload: Uint8Array, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    for (let wait = this.attempt(kind, shard, payload, deadline); wait !== undefined; wait = this.attempt(kind, shard, payload, deadline)) {
      if (wait.left <= 0) return false;
      const r = Atomics.waitAsync(this.ctl, SPACE_SEQ, wait.seq, wait.left);
      if (r.async) await r.value;
    }
    return true;
  }

  /** As {@link write}, blocking the calling thread: for workers only, never the main thread. */
  writeSync(kind: number, shard: number, payload: Uint8Array, timeoutMs: number): boolean {
    const deadline = performance.now() + timeoutMs;
    for (let wait = this.attempt(kind, shard, payload, deadline); wait !== undefined; wait = this.attempt(kind, shard, payload, deadline)) {
      if (wait.left <= 0) return false;
      Atomics.wait(this.ctl, SPACE_SEQ, wait.seq, wait.left);
    }
    return true;
  }

  /**
   * One try of a timed write: undefined when written, else what to wait on. The sequence is read
   * before trying, so a free that lands in between wakes the wait at once.
   */
  private attempt(kind: number, shard: number, payload: Uint8Array, deadline: number): { seq: number; left: number } | undefined {
    const seq = Atomics.load(this.ctl, SPACE_SEQ);
    if (this.tryWrite(kind, shard, payload)) return undefined;
    return { seq, left: deadline - performance.now() };
  }

  // ------------------------------------------------------------------ consumer side

  /** Takes the next record (payload copied), or undefined when the ring is empty. */
  read(): RingRecord | undefined {
    let out: RingRecord | undefined;
    this.readView((kind, shard, view) => {
      out = { kind, shard, payload: view.slice() };
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
    if (this.view.getUint32(off, true) === WRAP_MARKER) {
      head = (head + (this.capacityBytes - off)) >>> 0;
      off = 0;
    }
    const len = this.view.getUint32(off, true);
    const kind = this.view.getUint16(off + 4, true);
    const shard = this.view.getUint32(off + 8, true);
    fn(kind, shard, this.bytes.subarray(off + HEADER_BYTES, off + HEADER_BYTES + len));
    const size = (HEADER_BYTES + len + 3) & ~3;
    Atomics.store(this.ctl, HEAD, (head + size) | 0);
    Atomics.add(this.ctl, SPACE_SEQ, 1);
    Atomics.notify(this.ctl, SPACE_SEQ);
    return true;
  }

  /** Resolves when records may be there (or after `timeoutMs`); the event loop keeps running. */
  async waitForData(timeoutMs: number): Promise<void> {
    const seq = Atomics.load(this.ctl, DATA_SEQ);
    if (this.usedBytes() > 0) return;
    const r = Atomics.waitAsync(this.ctl, DATA_SEQ, seq, timeoutMs);
    if (r.async) await r.value;
  }

  /** Blocks the calling thread until records may be there (or `timeoutMs`); never on the main thread. */
  waitForDataSync(timeoutMs: number): void {
    const seq = Atomics.load(this.ctl, DATA_SEQ);
    if (this.usedBytes() > 0) return;
    Atomics.wait(this.ctl, DATA_SEQ, seq, timeoutMs);
  }
}
