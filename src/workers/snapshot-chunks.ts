/**
 * Snapshot chunking: a shard snapshot (one Uint8Array, possibly tens of MB) is cut into bounded
 * chunks, each deflated and checksummed, so it can travel to a lagging replica with per-chunk
 * verification and resume, and be reassembled there. The zlib and crc32 work runs in a piscina pool
 * (see chunk-task.ts) so the main thread, which runs the router and HTTP, stays responsive.
 */
import { crc32 as zlibCrc32 } from 'node:zlib';
import { Piscina } from 'piscina';
import type { ChunkTaskErrorCode, PackResult, PackTask, UnpackTask } from './chunk-task.js';
import { CodedError } from '../errors.js';

/** Smallest accepted `chunkBytes`: below this, per-task overhead dominates. */
export const chunkBytesMin = 4 * 1024;
/** Largest accepted `chunkBytes`: bounds the memory one task holds and the stall of one chunk. */
export const chunkBytesMax = 64 * 1024 * 1024;
/** Default `chunkBytes`: 1 MiB. */
export const chunkBytesDefault = 1024 * 1024;
/** Largest accepted `threads`. */
export const threadsMax = 64;
/**
 * Tasks one pack() or unpack() call keeps in the pool per thread: enough that a thread finds its
 * next chunk waiting, few enough that a 64 MiB snapshot is not copied into the queue all at once.
 */
const tasksInflightPerThread = 2;

export type SnapshotChunkErrorCode = ChunkTaskErrorCode | 'ChunkOrder' | 'InvalidConfig' | 'ChunkerClosed';

/**
 * An operating error of snapshot chunking:
 * - `ChecksumMismatch`: a chunk inflated to bytes whose crc32 differs from the chunk's, or its
 *   crc32 is not an unsigned 32-bit integer.
 * - `LengthMismatch`: a chunk inflated to a different number of bytes than its `length`.
 * - `CorruptChunk`: a chunk's `compressed` is not a Uint8Array holding a complete raw deflate stream.
 * - `ChunkOrder`: the chunks are not in index order or do not cover [0, totalLength) exactly once
 *   (missing, duplicated, reordered, bad offset or length).
 * - `InvalidConfig`: a constructor option is out of range.
 * - `ChunkerClosed`: the chunker was closed or destroyed before or during the call.
 */
export class SnapshotChunkError extends CodedError<SnapshotChunkErrorCode> {
  override readonly name = 'SnapshotChunkError';
}

/** One piece of a snapshot. Chunk i holds raw bytes [offset, offset + length) of the snapshot. */
export interface SnapshotChunk {
  /** Position in the snapshot's chunk list, from 0. */
  readonly index: number;
  /** Byte offset of the chunk's raw bytes in the snapshot; the sum of the lengths before it. */
  readonly offset: number;
  /** Raw (uncompressed) bytes in the chunk, >= 1: `chunkBytes`, except the last may be shorter. */
  readonly length: number;
  /** crc32 (zlib polynomial) of the raw bytes, unsigned 32-bit. */
  readonly crc32: number;
  /** Raw deflate stream (no zlib or gzip header) of the raw bytes. */
  readonly compressed: Uint8Array;
}

export interface SnapshotChunkerOptions {
  /** Pool threads. Integer 1..64. Default 1. */
  readonly threads?: number;
  /** Raw bytes per chunk. Integer 4 KiB..64 MiB. Default 1 MiB. */
  readonly chunkBytes?: number;
  /** zlib level, -1 (zlib's default, 6) or 0..9. Default -1. */
  readonly level?: number;
  /** Task module; default the compiled `chunk-task.js` beside this file. */
  readonly taskUrl?: URL;
  /** workerData for the pool threads (tests pass the .ts entry to a bootstrap this way). */
  readonly workerData?: unknown;
}

/**
 * CRC-32 (the zlib and gzip polynomial) of `data` as an unsigned 32-bit integer; pass a previous
 * result as `value` to continue it. Runs on the calling thread at GB/s, so a receiver can check one
 * chunk's raw bytes on arrival without the pool. Needs Node >= 20.15.
 */
export function crc32(data: Uint8Array, value = 0): number {
  return zlibCrc32(data, value);
}

const taskErrorPrefix = /^(ChecksumMismatch|LengthMismatch|CorruptChunk):/;

function configError(message: string): SnapshotChunkError {
  return new SnapshotChunkError('InvalidConfig', message);
}

/**
 * Packs snapshots into chunks and unpacks them, on a piscina pool of `threads` threads.
 * Calls may overlap; each keeps at most 2 × threads tasks in the pool. close() lets running calls
 * finish; destroy() aborts them with `ChunkerClosed`. One of them must be called, or the pool's
 * threads keep the process alive.
 */
export class SnapshotChunker {
  /** Raw bytes per chunk (see {@link SnapshotChunkerOptions.chunkBytes}). */
  readonly chunkBytes: number;
  private readonly level: number;
  private readonly window: number;
  private readonly pool: Piscina;
  /** Only moves forward: open -> closing (close()) or destroyed (destroy()); closing -> destroyed. */
  private state: 'open' | 'closing' | 'destroyed' = 'open';
  /** Running pack() and unpack() calls, which close() waits for. */
  private readonly calls = new Set<Promise<unknown>>();
  private closing: Promise<void> | undefined;
  private destroying: Promise<void> | undefined;

  /** Throws SnapshotChunkError `InvalidConfig` before starting any thread. */
  constructor(opts: SnapshotChunkerOptions = {}) {
    const threads = opts.threads ?? 1;
    const chunkBytes = opts.chunkBytes ?? chunkBytesDefault;
    const level = opts.level ?? -1;
    if (!Number.isInteger(threads) || threads < 1 || threads > threadsMax) {
      throw configError(`threads must be an integer in [1, ${threadsMax}], got ${String(threads)}`);
    }
    if (!Number.isInteger(chunkBytes) || chunkBytes < chunkBytesMin || chunkBytes > chunkBytesMax) {
      throw configError(`chunkBytes must be an integer in [${chunkBytesMin}, ${chunkBytesMax}], got ${String(chunkBytes)}`);
    }
    if (!Number.isInteger(level) || level < -1 || level > 9) {
      throw configError(`level must be an integer in [-1, 9], got ${String(level)}`);
    }
    if (opts.taskUrl !== undefined && opts.taskUrl.protocol !== 'file:') {
      throw configError(`taskUrl must be a file: URL, got ${opts.taskUrl.href}`);
    }
    this.chunkBytes = chunkBytes;
    this.level = level;
    this.window = threads * tasksInflightPerThread;
    this.pool = new Piscina({
      filename: (opts.taskUrl ?? new URL('./chunk-task.js', import.meta.url)).href,
      minThreads: threads,
      maxThreads: threads,
      workerData: opts.workerData,
    });
  }

  /** Pool threads currently alive; 0 once close() or destroy() has resolved. */
  get threadsAlive(): number {
    return this.pool.threads.length;
  }

  /**
   * Cuts `data` into ceil(byteLength / chunkBytes) chunks (none for empty data), deflates and
   * checksums each in the pool, and resolves to them in index order. `data` is copied chunk by
   * chunk, never detached or modified. Rejects with `ChunkerClosed` if the chunker is closing or
   * destroyed.
   */
  pack(data: Uint8Array): Promise<SnapshotChunk[]> {
    return this.track(async () => {
      const count = Math.ceil(data.byteLength / this.chunkBytes);
      return this.runWindowed(count, async (index) => {
        const offset = index * this.chunkBytes;
        const end = Math.min(offset + this.chunkBytes, data.byteLength);
        // A copy: cloning a view would copy its whole (snapshot-sized) buffer, and transferring
        // the caller's buffer would detach it.
        const piece = copyOf(data.subarray(offset, end));
        const task: PackTask = { op: 'pack', data: piece, level: this.level };
        const result = (await this.pool.run(task, { transferList: [piece.buffer] })) as PackResult;
        return { index, offset, length: end - offset, crc32: result.crc32, compressed: result.compressed };
      });
    });
  }

  /**
   * Reassembles a snapshot of `totalLength` bytes from its chunks, which must be in index order and
   * cover [0, totalLength) exactly (`ChunkOrder` otherwise, checked before any chunk is inflated).
   * Each chunk is inflated and verified in the pool: `CorruptChunk`, `LengthMismatch` or
   * `ChecksumMismatch` on failure, naming the chunk. The chunks are not modified.
   */
  unpack(chunks: readonly SnapshotChunk[], totalLength: number): Promise<Uint8Array> {
    return this.track(async () => {
      checkCoverage(chunks, totalLength);
      const out = new Uint8Array(totalLength);
      await this.runWindowed(chunks.length, async (index) => {
        const chunk = chunks[index]!;
        // A copy for the same reason as in pack(); it is at most the compressed size.
        const compressed = copyOf(chunk.compressed);
        const task: UnpackTask = { op: 'unpack', compressed, crc32: chunk.crc32, length: chunk.length };
        const raw = (await this.pool.run(task, { transferList: [compressed.buffer] })) as Uint8Array;
        if (raw.byteLength !== chunk.length) {
          throw new Error(`chunk task returned ${raw.byteLength} bytes for a chunk of ${chunk.length}`);
        }
        out.set(raw, chunk.offset);
      });
      return out;
    });
  }

  /** Refuses new calls, waits for running ones, then stops the threads. Idempotent. */
  close(): Promise<void> {
    if (this.state === 'open') this.state = 'closing';
    this.closing ??= (async () => {
      await Promise.allSettled([...this.calls]);
      if (this.destroying !== undefined) await this.destroying;
      else await this.pool.close();
    })();
    return this.closing;
  }

  /** Stops the threads now; running calls reject with `ChunkerClosed`. Idempotent. */
  destroy(): Promise<void> {
    this.state = 'destroyed';
    this.destroying ??= this.pool.destroy();
    return this.destroying;
  }

  private track<T>(call: () => Promise<T>): Promise<T> {
    if (this.state !== 'open') {
      return Promise.reject(new SnapshotChunkError('ChunkerClosed', 'the snapshot chunker is closed'));
    }
    const running = call();
    const settled = running.then(
      () => undefined,
      () => undefined,
    );
    this.calls.add(settled);
    void settled.then(() => this.calls.delete(settled));
    return running;
  }

  /**
   * Runs task(0..count-1) with at most `window` in the pool at once and resolves to their results
   * by index. After the first failure no new task starts; it rejects with that failure once the
   * running ones have settled, so none is left rejecting unobserved.
   */
  private async runWindowed<T>(count: number, task: (index: number) => Promise<T>): Promise<T[]> {
    const results: T[] = new Array<T>(count);
    let next = 0;
    let failure: { error: unknown } | undefined;
    const lane = async (): Promise<void> => {
      while (failure === undefined && next < count) {
        const index = next++;
        try {
          results[index] = await task(index);
        } catch (error) {
          failure ??= { error: this.translate(error, index) };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.window, count) }, lane));
    if (failure !== undefined) throw failure.error;
    return results;
  }

  /** Turns a task failure into its SnapshotChunkError; anything else is a bug and passes through. */
  private translate(error: unknown, index: number): unknown {
    if (error instanceof Error) {
      const match = taskErrorPrefix.exec(error.message);
      if (match !== null) {
        return new SnapshotChunkError(match[1] as ChunkTaskErrorCode, `chunk ${index}: ${error.message}`);
      }
    }
    if (this.state === 'destroyed') {
      return new SnapshotChunkError('ChunkerClosed', `the snapshot chunker was destroyed during chunk ${index}`);
    }
    return error;
  }
}

/**
 * A copy in a buffer of its own, safe to transfer. Not `view.slice()`: on a Node Buffer (which
 * LMDB hands out) that is a view of the same memory.
 */
function copyOf(view: Uint8Array): Uint8Array<ArrayBuffer> {
  const copy = new Uint8Array(view.byteLength);
  copy.set(view);
  return copy;
}

/** Throws `ChunkOrder`, `CorruptChunk` or `ChecksumMismatch` for chunk metadata that cannot be right. */
function checkCoverage(chunks: readonly SnapshotChunk[], totalLength: number): void {
  if (!Number.isSafeInteger(totalLength) || totalLength < 0) {
    throw new SnapshotChunkError('ChunkOrder', `totalLength must be a non-negative integer, got ${String(totalLength)}`);
  }
  let offset = 0;
  for (const [i, chunk] of chunks.entries()) {
    if (chunk.index !== i) {
      throw new SnapshotChunkError('ChunkOrder', `chunk at position ${i} has index ${String(chunk.index)}`);
    }
    if (chunk.offset !== offset) {
      throw new SnapshotChunkError('ChunkOrder', `chunk ${i} starts at ${String(chunk.offset)}, expected ${offset}`);
    }
    if (!Number.isSafeInteger(chunk.length) || chunk.length < 1 || chunk.length > totalLength - offset) {
      throw new SnapshotChunkError('ChunkOrder', `chunk ${i} has length ${String(chunk.length)}, ${totalLength - offset} bytes remain`);
    }
    if (!(chunk.compressed instanceof Uint8Array)) {
      throw new SnapshotChunkError('CorruptChunk', `chunk ${i} has no compressed bytes`);
    }
    if (!Number.isInteger(chunk.crc32) || chunk.crc32 < 0 || chunk.crc32 > 0xffff_ffff) {
      throw new SnapshotChunkError('ChecksumMismatch', `chunk ${i} has crc32 ${String(chunk.crc32)}, not an unsigned 32-bit integer`);
    }
    offset += chunk.length;
  }
  if (offset !== totalLength) {
    throw new SnapshotChunkError('ChunkOrder', `chunks cover [0, ${offset}) of ${totalLength} bytes`);
  }
}
