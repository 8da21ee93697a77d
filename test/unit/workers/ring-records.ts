/** Record content both sides of the ring tests can recompute: distinct per record and per byte. */
export function recordBytes(i: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let j = 0; j < size; j++) out[j] = (i * 31 + j * 7) & 0xff;
  return out;
}
