/**
 * Keys and values as bytes: what callers pass (text or bytes), what comes back ({@link Bytes}, a
 * Uint8Array with `text()`), and how bytes travel in URLs and JSON answers.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8');

/** A value or key from the server: plain bytes, with `text()` for UTF-8 content. */
export class Bytes extends Uint8Array<ArrayBuffer> {
  /** The bytes as UTF-8 text (invalid sequences become U+FFFD). */
  text(): string {
    return decoder.decode(this);
  }
}

/** Text is sent as its UTF-8 bytes; bytes as they are. */
export type BytesLike = string | Uint8Array;

export function toBytes(b: BytesLike): Uint8Array {
  return typeof b === 'string' ? encoder.encode(b) : b;
}

/** A copy of `b` as {@link Bytes}. */
export function bytesOf(b: Uint8Array): Bytes {
  const out = new Bytes(new ArrayBuffer(b.length));
  out.set(b);
  return out;
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/**
 * Every byte but the unreserved ASCII ones as `%XX`: the server decodes paths and queries byte by
 * byte, so any key, binary included, arrives exact (`+` and `/` too).
 */
export function percentEncode(b: Uint8Array): string {
  let out = '';
  for (const byte of b) {
    const c = String.fromCharCode(byte);
    out += byte < 0x80 && UNRESERVED.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** A key or value of a JSON answer: a string when its bytes are UTF-8, else `{ base64 }`. Undefined when neither. */
export function bytesFromJson(v: unknown): Bytes | undefined {
  if (typeof v === 'string') return bytesOf(encoder.encode(v));
  if (typeof v === 'object' && v !== null && typeof (v as { base64?: unknown }).base64 === 'string') {
    const bin = atob((v as { base64: string }).base64);
    const out = new Bytes(new ArrayBuffer(bin.length));
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  return undefined;
}
