/**
 * The piscina task module for snapshot chunks: one task is one chunk. `pack` deflates it and takes
 * the crc32 of its raw bytes; `unpack` inflates it and checks its length and crc32. It holds no
 * state, so any pool thread may run any chunk, and it runs in a pool at all because deflating MBs
 * on the thread that serves the router and HTTP would stall it for tens of milliseconds.
 *
 * A failure crosses the thread boundary as a plain Error (structured clone keeps name, message and
 * stack, not own properties), so its code travels as the message prefix: `ChecksumMismatch: ...`.
 */
import { constants, crc32, deflateRawSync, inflateRawSync } from 'node:zlib';
import { move, transferableSymbol, valueSymbol } from 'piscina';

/** Codes a chunk task can fail with; each is the prefix of the thrown Error's message. */
export type ChunkTaskErrorCode = 'ChecksumMismatch' | 'LengthMismatch' | 'CorruptChunk';

export interface PackTask {
  readonly op: 'pack';
  /** The chunk's raw bytes. */
  readonly data: Uint8Array;
  /** zlib level, -1 (zlib's default, 6) or 0..9. Default -1. */
  readonly level?: number;
}

export interface PackResult {
  /** Raw deflate stream (no zlib or gzip header) of the chunk; owns its whole ArrayBuffer. */
  readonly compressed: Uint8Array;
  /** crc32 of the raw bytes, unsigned 32-bit. */
  readonly crc32: number;
  /** Raw bytes in the chunk. */
  readonly length: number;
}

export interface UnpackTask {
  readonly op: 'unpack';
  readonly compressed: Uint8Array;
  /** Expected crc32 of the raw bytes. */
  readonly crc32: number;
  /** Expected raw bytes; also the cap on inflated output, so a hostile stream cannot balloon. */
  readonly length: number;
}

export type ChunkTask = PackTask | UnpackTask;

function chunkError(code: ChunkTaskErrorCode, detail: string): Error {
  return new Error(`${code}: ${detail}`);
}

/**
 * Transferring a view hands over its whole ArrayBuffer. zlib returns small outputs as slices of
 * Node's shared Buffer pool, which must not (and in Node 20 silently cannot) be transferred, so
 * those are copied into a buffer of their own; large outputs already own theirs.
 */
function ownBuffer(view: Uint8Array): Uint8Array<ArrayBuffer> {
  if (view.buffer instanceof ArrayBuffer && view.byteOffset === 0 && view.byteLength === view.buffer.byteLength) {
    return view as Uint8Array<ArrayBuffer>;
  }
  return new Uint8Array(view);
}

/** Deflates one chunk on the calling thread. zlib throws RangeError for a level outside -1..9. */
export function packChunk(data: Uint8Array, level: number = constants.Z_DEFAULT_COMPRESSION): PackResult {
  return {
    compressed: ownBuffer(deflateRawSync(data, { level })),
    crc32: crc32(data),
    length: data.byteLength,
  };
}

/**
 * Inflates one chunk on the calling thread and checks it. Throws an Error whose message starts with
 * `CorruptChunk` (not a complete raw deflate stream), `LengthMismatch` (inflates to other than
 * `length` bytes) or `ChecksumMismatch` (crc32 of the output differs).
 */
export function unpackChunk(compressed: Uint8Array, expectedCrc32: number, length: number): Uint8Array<ArrayBuffer> {
  let raw: Uint8Array;
  try {
    // maxOutputLength must be >= 1; an empty chunk that inflates to 1 byte still fails below.
    raw = inflateRawSync(compressed, { maxOutputLength: Math.max(1, length) });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw chunkError('LengthMismatch', `inflates to more than the expected ${length} bytes`);
    }
    throw chunkError('CorruptChunk', `not a complete raw deflate stream (${(error as Error).message})`);
  }
  if (raw.byteLength !== length) {
    throw chunkError('LengthMismatch', `inflates to ${raw.byteLength} bytes, expected ${length}`);
  }
  const actual = crc32(raw);
  if (actual !== expectedCrc32) {
    throw chunkError('ChecksumMismatch', `crc32 of the inflated bytes is ${actual}, expected ${expectedCrc32}`);
  }
  return ownBuffer(raw);
}

/**
 * The task function piscina calls. The pool resolves `pack` to a {@link PackResult} and `unpack` to
 * the raw bytes (a Uint8Array); the return value here is wrapped for piscina so that those buffers
 * are transferred to the caller rather than copied.
 */
export default function chunkTask(task: ChunkTask): unknown {
  switch (task.op) {
    case 'pack': {
      const result = packChunk(task.data, task.level);
      return move({ [transferableSymbol]: [result.compressed.buffer], [valueSymbol]: result });
    }
    case 'unpack':
      return move(unpackChunk(task.compressed, task.crc32, task.length));
    default:
      throw new Error(`unknown chunk task op ${String((task as { op: unknown }).op)}`);
  }
}
