/**
 * The payload of a NodeHeartbeat record (src/wire/record.ts): what a node says of itself to its
 * peers once per tick. Malformed input is a CodecError `BadFrame`; asking to encode an invalid
 * value is a bug (AssertionError).
 */

import { ByteReader, ByteWriter, U16_MAX } from './bytes.js';
import { bad, bug } from './errors.js';

/**
 * What a node says of itself in a NodeHeartbeat record. Only these records keep a peer counted as
 * alive: raft traffic from one healthy worker says nothing about the shards of another, dead one.
 */
export interface LivenessFrame {
  /**
   * Per worker thread of the sender, by index (the sender hosts shard `s` on worker
   * `s % running.length`): true while the worker runs, so the shards it hosts can lead. Empty:
   * the sender did not say (the payload of the previous layout, which was empty and sent only
   * while every worker ran): every worker counts as running.
   */
  readonly running: readonly boolean[];
}

/** Worker count u16. */
const LIVENESS_FIXED_BYTES = 2;
const LIVENESS_WORKERS_MAX = U16_MAX;

/**
 * Layout: `workers u16, running bitmap (ceil(workers / 8) bytes: bit w & 7 of byte w >> 3 set
 * when worker w runs; the bits past workers are zero)`; no payload at all when `running` is
 * empty. AssertionError for more than 65,535 workers.
 */
export function encodeLiveness(f: LivenessFrame): Uint8Array<ArrayBuffer> {
  const workers = f.running.length;
  if (workers > LIVENESS_WORKERS_MAX) bug(`${workers} workers exceed ${LIVENESS_WORKERS_MAX}`);
  if (workers === 0) return new Uint8Array(0);
  const w = new ByteWriter(LIVENESS_FIXED_BYTES + Math.ceil(workers / 8));
  w.u16(workers, 'worker count');
  for (let at = 0; at < workers; at += 8) {
    let byte = 0;
    for (let i = 0; i < 8 && at + i < workers; i++) if (f.running[at + i]) byte |= 1 << i;
    w.u8(byte);
  }
  return w.finish();
}

/**
 * Decodes {@link encodeLiveness}. CodecError `BadFrame` for a payload of one byte, a worker count
 * of 0, a length other than the count says, or a set bit past the count.
 */
export function decodeLiveness(b: Uint8Array): LivenessFrame {
  if (b.length === 0) return { running: [] };
  if (b.length < LIVENESS_FIXED_BYTES) bad(`liveness payload of ${b.length} bytes is truncated`);
  const r = new ByteReader(b);
  const workers = r.u16();
  if (workers === 0) bad('liveness payload names 0 workers');
  const want = LIVENESS_FIXED_BYTES + Math.ceil(workers / 8);
  if (b.length !== want) bad(`liveness payload for ${workers} workers must be ${want} bytes, got ${b.length}`);
  const running: boolean[] = [];
  let byte = 0;
  for (let w = 0; w < workers; w++) {
    if ((w & 7) === 0) byte = r.u8();
    running.push((byte & (1 << (w & 7))) !== 0);
  }
  if (workers % 8 !== 0 && byte >> (workers % 8) !== 0) bad('liveness payload sets bits past its worker count');
  return { running };
}
