/**
 * The data of a snapshot as bytes: the data database as a sequence of (key length u32, key, value
 * length u32, value). Files staged for an install hold the same (see snapshot-io.ts).
 */
import { StoreError } from './store-error.js';

export function encodeDataDump(pairs: Iterable<{ key: Uint8Array; value: Uint8Array }>): Uint8Array {
  const parts: Uint8Array[] = [];
  let size = 0;
  for (const { key, value } of pairs) {
    // One copy per pair: range results may be views the database reuses.
    const rec = Buffer.allocUnsafe(8 + key.length + value.length);
    rec.writeUInt32LE(key.length, 0);
    rec.set(key, 4);
    rec.writeUInt32LE(value.length, 4 + key.length);
    rec.set(value, 8 + key.length);
    parts.push(rec);
    size += rec.length;
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function* decodeDataDump(b: Uint8Array): Generator<{ key: Uint8Array; value: Uint8Array }> {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let at = 0;
  const take = (): Uint8Array => {
    if (at + 4 > b.length) throw new StoreError('BadSnapshot', `snapshot data truncated at byte ${at}`);
    const n = view.getUint32(at, true);
    at += 4;
    if (at + n > b.length) throw new StoreError('BadSnapshot', `snapshot data truncated at byte ${at}`);
    const out = b.subarray(at, at + n);
    at += n;
    return out;
  };
  while (at < b.length) {
    const key = take();
    const value = take();
    yield { key, value };
  }
}
