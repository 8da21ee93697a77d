/**
 * One byte writer and one byte reader for every binary layout: raft messages, client frames, the
 * KV requests and replies. Everything is little-endian, the byte order of every host we run on, so
 * DataView accesses are straight loads and stores.
 *
 * Numbers that may exceed 32 bits (terms, indexes, request ids, versions) travel either as float64
 * (8 bytes: the KV layouts and stored values) or as an unsigned LEB128 varint (1 to 8 bytes: raft
 * messages and client frames, which cross the Iroh binding and whose values are mostly small): a JS
 * number holds them exactly up to 2^53 - 1, and no layout needs BigInt.
 */

import { bad, bug } from './errors.js';

export const U8_MAX = 0xff;
export const U16_MAX = 0xffff;
export const U32_MAX = 0xffffffff;

/** True when `v` is an integer in 0..2^32 - 1. */
export const isU32 = (v: number): boolean => Number.isInteger(v) && v >= 0 && v <= U32_MAX;

/**
 * True when `v` is a non-negative safe integer other than -0: the values a float64 field holds,
 * each with one encoding (a -0 read from the wire is refused; the writer turns -0 into 0).
 */
export const isU53 = (v: number): boolean => Number.isSafeInteger(v) && v >= 0 && !Object.is(v, -0);

/** Most bytes of a varint: 7 bits a byte, so 2^53 - 1 takes 8. */
export const UVARINT_BYTES_MAX = 8;
/** Most bytes of a varint that holds a u32 (ids, counts, lengths). */
export const UVARINT_U32_BYTES_MAX = 5;

/**
 * Bytes of `v` (a non-negative safe integer) as a varint: 1 below 2^7, 2 below 2^14, ..., 8 up to
 * 2^53 - 1. Encoders size their buffer with it; what it is given is checked when written.
 */
export function uvarintBytes(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  if (v < 0x800000000) return 5;
  if (v < 0x40000000000) return 6;
  if (v < 0x2000000000000) return 7;
  return UVARINT_BYTES_MAX;
}

/** UTF-8 size of `s` as TextEncoder writes it (a lone surrogate becomes U+FFFD, 3 bytes). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

const utf8Encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);

// Integers are written and read byte by byte, and a writer writes float64s through this one 8-byte
// scratch, so a writer costs no DataView of its own (measured: that was most of the cost of short
// encodings such as a data key); a reader makes one at its first float64.
const f64Scratch = new DataView(new ArrayBuffer(8));

/** Bytes of one slab of {@link pooledBytes}, and the largest piece taken from a slab. */
const SLAB_BYTES = 32 * 1024;
const POOLED_BYTES_MAX = 4 * 1024;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabAt = 0;

/**
 * `n` zeroed bytes as a plain Uint8Array; under 4 KiB a view of a 32 KiB slab shared with the
 * pieces taken before and after it (each slab is fresh memory, never handed out twice). A typed
 * array of its own costs a backing store outside the heap (an allocation, its accounting and its
 * sweeping: ~500 ns for 300 bytes, measured, against ~30 ns for a piece of a slab), and the hot
 * paths make several per message. The price: a piece keeps its whole slab alive, so it suits
 * short-lived buffers and small ones; and its `.buffer` is the slab, so read it only with the
 * view's offset and length, and never transfer it.
 */
export function pooledBytes(n: number): Uint8Array<ArrayBuffer> {
  if (n > POOLED_BYTES_MAX) return new Uint8Array(n);
  if (slabAt + n > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabAt = 0;
  }
  const out = new Uint8Array(slab, slabAt, n);
  slabAt = (slabAt + n + 7) & ~7;
  return out;
}

/** A copy of `b` in {@link pooledBytes}. */
export function pooledCopy(b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = pooledBytes(b.length);
  out.set(b);
  return out;
}

/**
 * Writes fields one after another into a buffer of the size the caller computed, which grows (by
 * doubling) only when a write goes past it. A value that does not fit its field is a bug: it throws
 * AssertionError naming `field`; encoders check what a caller may get wrong before writing.
 */
export class ByteWriter {
  /** Next byte to write; the bytes before it are the output so far. */
  at = 0;
  private buf: Uint8Array<ArrayBuffer>;

  /** `sizeBytes`: the expected size of the output (exact for fixed layouts, a guess otherwise). */
  constructor(sizeBytes: number) {
    this.buf = pooledBytes(sizeBytes);
  }

  /**
   * Makes room for `n` bytes at `at`, moves `at` past them and returns where they start. It may
   * replace `buf`: call it before reading `buf` (`this.buf[this.take(1)] = v` would write into the
   * old buffer, which JS evaluates first).
   */
  private take(n: number): number {
    const at = this.at;
    if (at + n > this.buf.length) this.grow(at + n);
    this.at = at + n;
    return at;
  }

  private grow(minBytes: number): void {
    const next = pooledBytes(Math.max(this.buf.length * 2, minBytes));
    next.set(this.buf.subarray(0, this.at));
    this.buf = next;
  }

  private f64At(at: number, v: number): void {
    f64Scratch.setFloat64(0, v, true);
    const buf = this.buf;
    for (let i = 0; i < 8; i++) buf[at + i] = f64Scratch.getUint8(i);
  }

  u8(v: number, field = 'u8'): void {
    if (!(Number.isInteger(v) && v >= 0 && v <= U8_MAX)) bug(`${field} must be a u8, got ${v}`);
    const at = this.take(1);
    this.buf[at] = v;
  }

  u16(v: number, field = 'u16'): void {
    if (!(Number.isInteger(v) && v >= 0 && v <= U16_MAX)) bug(`${field} must be a u16, got ${v}`);
    const at = this.take(2);
    const buf = this.buf;
    buf[at] = v & 0xff;
    buf[at + 1] = v >>> 8;
  }

  u32(v: number, field = 'u32'): void {
    if (!isU32(v)) bug(`${field} must be a u32, got ${v}`);
    const at = this.take(4);
    const buf = this.buf;
    buf[at] = v & 0xff;
    buf[at + 1] = (v >>> 8) & 0xff;
    buf[at + 2] = (v >>> 16) & 0xff;
    buf[at + 3] = v >>> 24;
  }

  /** Any float64, as is (NaN, -0 and fractions included): for fields the reader checks itself. */
  f64(v: number): void {
    this.f64At(this.take(8), v);
  }

  /** A non-negative safe integer as float64; `+ 0` turns -0 into the one canonical zero. */
  u53(v: number, field = 'u53'): void {
    if (!isU53(v + 0)) bug(`${field} must be a non-negative safe integer, got ${v}`);
    this.f64At(this.take(8), v + 0);
  }

  /**
   * A non-negative safe integer as an unsigned LEB128 varint: 7 bits a byte, low bits first, the
   * high bit set on every byte but the last; {@link uvarintBytes} bytes, never a needless 0x00 last
   * byte, so each value has one encoding (`+ 0` turns -0 into 0).
   */
  uvarint(v: number, field = 'uvarint'): void {
    let x = v + 0;
    if (!isU53(x)) bug(`${field} must be a non-negative safe integer, got ${v}`);
    let at = this.take(uvarintBytes(x));
    const buf = this.buf;
    // Above 31 bits, shifts would truncate: divide (exact for a power of two) until they do not.
    // `&` keeps the low 32 bits of any safe integer, so its low 7 are right either way.
    while (x > 0x7fffffff) {
      buf[at++] = (x & 0x7f) | 0x80;
      x = Math.floor(x / 128);
    }
    while (x > 0x7f) {
      buf[at++] = (x & 0x7f) | 0x80;
      x >>>= 7;
    }
    buf[at] = x;
  }

  /** Overwrites the u8 at `pos`, before `at` (a field known only after what follows it). */
  u8At(pos: number, v: number, field = 'u8'): void {
    if (!(Number.isInteger(pos) && pos >= 0 && pos + 1 <= this.at)) bug(`${field} at ${pos} is not inside the ${this.at} bytes written`);
    if (!(Number.isInteger(v) && v >= 0 && v <= U8_MAX)) bug(`${field} must be a u8, got ${v}`);
    this.buf[pos] = v;
  }

  /** Overwrites the u32 at `pos`, before `at` (a count known only after what it counts). */
  u32At(pos: number, v: number, field = 'u32'): void {
    if (!(Number.isInteger(pos) && pos >= 0 && pos + 4 <= this.at)) bug(`${field} at ${pos} is not inside the ${this.at} bytes written`);
    if (!isU32(v)) bug(`${field} must be a u32, got ${v}`);
    const buf = this.buf;
    buf[pos] = v & 0xff;
    buf[pos + 1] = (v >>> 8) & 0xff;
    buf[pos + 2] = (v >>> 16) & 0xff;
    buf[pos + 3] = v >>> 24;
  }

  bytes(b: Uint8Array): void {
    const at = this.take(b.length);
    this.buf.set(b, at);
  }

  /** `s` one byte per character; AssertionError when a character is not ASCII. */
  ascii(s: string, field = 'ASCII string'): void {
    const at = this.take(s.length);
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) bug(`${field} ${JSON.stringify(s)} is not ASCII`);
      this.buf[at + i] = c;
    }
  }

  /** `s` as UTF-8, {@link utf8Length} bytes (a lone surrogate becomes U+FFFD). */
  utf8(s: string): void {
    const n = utf8Length(s);
    const at = this.take(n);
    const { written } = utf8Encoder.encodeInto(s, this.buf.subarray(at, at + n));
    if (written !== n) bug(`UTF-8 length ${written} != computed ${n}`);
  }

  /** The bytes written: the buffer itself when its size was right, else the part of it written. */
  finish(): Uint8Array<ArrayBuffer> {
    return this.at === this.buf.length ? this.buf : this.buf.subarray(0, this.at);
  }
}

/**
 * Reads fields one after another. It never trusts a length, and its fixed-size reads never throw:
 * a read past the end sets `short` (for good) and yields 0, or no bytes; the caller checks `short`
 * (or {@link left} before a read whose count came from the input) and reports the malformed input
 * its own way. {@link uvarint} is the exception: a varint can be malformed in ways no later check
 * of its value sees (over-long, non-canonical), so it throws CodecError `BadFrame` itself.
 * `bytes` may be a view into memory another thread reuses (a ring): {@link copy} what must outlive
 * that.
 */
export class ByteReader {
  /** Next byte to read. */
  at: number;
  /** True once a read went past the end; every later read then yields 0 or no bytes. */
  short = false;
  /** Over `bytes`, made at the first float64 read: cheaper than the scratch for many of them. */
  private data: DataView | undefined;

  constructor(
    readonly bytes: Uint8Array,
    at = 0,
  ) {
    this.at = at;
  }

  /** Bytes not read yet. */
  get left(): number {
    return this.short ? 0 : this.bytes.length - this.at;
  }

  /** True when every byte was read and none was missing. */
  get done(): boolean {
    return !this.short && this.at === this.bytes.length;
  }

  /** Moves `at` past `n` bytes and returns where they start, or -1 (and sets `short`) when they are not there. */
  private take(n: number): number {
    const at = this.at;
    if (this.short || n > this.bytes.length - at) {
      this.short = true;
      return -1;
    }
    this.at = at + n;
    return at;
  }

  u8(): number {
    const at = this.take(1);
    return at < 0 ? 0 : this.bytes[at]!;
  }

  u16(): number {
    const at = this.take(2);
    const b = this.bytes;
    return at < 0 ? 0 : b[at]! | (b[at + 1]! << 8);
  }

  u32(): number {
    const at = this.take(4);
    const b = this.bytes;
    return at < 0 ? 0 : (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
  }

  /** Any float64; check it with {@link isU53} where the layout says integer. */
  f64(): number {
    const at = this.take(8);
    if (at < 0) return 0;
    const b = this.bytes;
    this.data ??= new DataView(b.buffer, b.byteOffset, b.byteLength);
    return this.data.getFloat64(at, true);
  }

  /**
   * A {@link ByteWriter.uvarint}. Throws CodecError `BadFrame` naming `field` when it is truncated
   * (or a read already went past the end), longer than 8 bytes, above 2^53 - 1, or not the one
   * canonical encoding (a last byte of 0x00 after others).
   */
  uvarint(field = 'uvarint'): number {
    const b = this.bytes;
    const end = b.length;
    let at = this.at;
    if (this.short || at >= end) bad(`${field} is missing`);
    let byte = b[at++]!;
    if (byte < 0x80) {
      this.at = at;
      return byte; // the common case: one byte
    }
    let v = byte & 0x7f;
    let scale = 0x80;
    for (let i = 1; ; i++) {
      if (at >= end) bad(`${field} is a truncated varint`);
      byte = b[at++]!;
      // Exact below 2^53; above, rounding is monotone, so the range check below still holds.
      v += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (byte === 0) bad(`${field} is a varint with a needless last 0x00 byte`);
        break;
      }
      if (i === UVARINT_BYTES_MAX - 1) bad(`${field} is a varint longer than ${UVARINT_BYTES_MAX} bytes`);
      scale *= 0x80;
    }
    if (v > Number.MAX_SAFE_INTEGER) bad(`${field} is a varint above 2^53 - 1`);
    this.at = at;
    return v;
  }

  skip(n: number): void {
    this.take(n);
  }

  /** The next `n` bytes as a plain Uint8Array view (never a Buffer, even when `bytes` is one). */
  view(n: number): Uint8Array {
    const at = this.take(n);
    return at < 0 ? EMPTY : new Uint8Array(this.bytes.buffer, this.bytes.byteOffset + at, n);
  }

  /** A copy of the next `n` bytes (in {@link pooledBytes}: it keeps nothing of the input alive). */
  copy(n: number): Uint8Array<ArrayBuffer> {
    const at = this.take(n);
    return at < 0 ? new Uint8Array(0) : pooledCopy(this.bytes.subarray(at, at + n));
  }

  /** Bytes as Latin-1 characters: ASCII stays itself, other bytes stay visible in messages. */
  latin1(n: number): string {
    const at = this.take(n);
    if (at < 0) return '';
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(this.bytes[at + i]!);
    return s;
  }

  /** A view of every byte left ({@link view}). */
  rest(): Uint8Array {
    return this.view(this.left);
  }
}
