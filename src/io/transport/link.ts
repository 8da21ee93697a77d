/**
 * One connection to a peer and its bidirectional stream: framing (`length u32 little-endian,
 * frame`), the read loop that hands each frame's records on, the write loop that coalesces queued
 * records into frames, and the graceful drain (no new frames; finish our half, read theirs to the
 * end, then close, or close at `closeTimeoutMs`).
 *
 * Cost: these bindings pass bytes as `Array<number>` (about 50 ns per byte on the JS thread going
 * out, measured), so frames are converted once, in 64 KiB pieces (the event loop keeps running
 * between them), with the cheapest conversions measured here: a plain indexed loop into
 * `new Array(n)` going out (about 7 ns per byte, against about 40 for `Array.from`), and a plain
 * loop into a preallocated Uint8Array coming in (about 2 ns per byte, against about 20 for
 * `Uint8Array.prototype.set` with an array from the binding).
 */

import type * as Iroh from '@number0/iroh/index.js';
import { CodecError, decodeFrame, encodeFrame, pooledBytes } from '../../wire/index.js';
import type { DecodedRecord } from '../../wire/index.js';
import { afterLinkLost } from './backoff.js';
import { errText } from './errors.js';
import type { TransportLogger } from './errors.js';
import { CloseCode } from './hello.js';
import type { Limits, TransportCounters } from './options.js';
import type { Peer } from './peer.js';

/** Length prefix of a frame on the stream. */
export const LENGTH_BYTES = 4;
/** Bytes asked of one stream read; the binding allocates this much per call. */
const READ_CHUNK_BYTES = 64 * 1024;
/** Bytes handed to the binding per write, so a large frame does not stall the event loop. */
const WRITE_CHUNK_BYTES = 64 * 1024;

/** What a link needs from the transport that owns it. */
export interface LinkHost {
  readonly limits: Limits;
  readonly log: TransportLogger;
  readonly isMember: (peerId: string) => boolean;
  readonly onRecords: (peerId: string, records: DecodedRecord[]) => void;
  /** Bytes of a frame arrived from the peer (see TransportOptions.onTraffic). */
  readonly onTraffic: (peerId: string) => void;
  /** close() or destroy() was called. */
  closing(): boolean;
  /** Adds `n` to a counter, in the totals and (when given) the peer's. */
  count(peer: Peer | undefined, what: keyof TransportCounters, n: number): void;
  /** Moves the peer's queue along (a link came, went or finished writing). */
  pump(peer: Peer): void;
  /** Jitter source in [0, 1). */
  random(): number;
}

const textBytes = (s: string): number[] => Array.from(Buffer.from(s, 'utf8'));

/** Closes `conn` with an application code and reason, ignoring a connection already closed. */
export function closeQuietly(conn: Iroh.Connection, code: bigint, reason: string): void {
  try {
    conn.close(code, textBytes(reason));
  } catch {
    // Already closed.
  }
}

/**
 * Counts and logs a protocol error, and closes the link (or the bare connection during a
 * handshake) with `code` (default `ProtocolError`).
 */
export function protocolError(host: LinkHost, peer: Peer, conn: Iroh.Connection, why: string, l?: Link, code: bigint = CloseCode.ProtocolError): void {
  host.count(peer, 'protocolErrors', 1);
  host.log.warn({ peer: peer.id, err: why }, 'protocol error: closing the connection');
  if (l !== undefined) l.close(code, why);
  else closeQuietly(conn, code, why);
}

/** Writes `length u32 LE, frame` in pieces of at most WRITE_CHUNK_BYTES. */
export async function writeFrame(send: Iroh.SendStream, frame: Uint8Array): Promise<void> {
  const len = frame.length;
  const total = LENGTH_BYTES + len;
  for (let pos = 0; pos < total;) {
    const n = Math.min(WRITE_CHUNK_BYTES, total - pos);
    // A holey array filled by index is the cheapest Array<number> to build (measured); the binding
    // copies it synchronously, before writeAll returns its promise.
    const arr = new Array<number>(n);
    let i = 0;
    for (; i < n && pos + i < LENGTH_BYTES; i++) arr[i] = (len >>> (8 * (pos + i))) & 0xff;
    const shift = pos - LENGTH_BYTES;
    for (; i < n; i++) arr[i] = frame[shift + i]!;
    await send.writeAll(arr);
    pos += n;
  }
}

/** One connection to a peer and its stream. */
export class Link {
  /** `active`: carries new frames; `draining`: finishing both halves; `closed`: gone. Only moves forward. */
  state: 'active' | 'draining' | 'closed' = 'active';
  /** A write loop is running on this link. */
  writing = false;
  sendFinished = false;
  /** The peer acknowledged everything we wrote after our finish (or the stream ended otherwise). */
  sendAcked = false;
  /** We read the peer's stream to its end. */
  recvDone = false;
  drainTimer: NodeJS.Timeout | undefined;
  /** Closes the link when the frame being read is not complete within frameTimeoutMs; set only while a frame is partly read. */
  private frameTimer: NodeJS.Timeout | undefined;
  /** The frame {@link frameTimer} watches, as the count of frames read before it; -1 when unset. */
  private frameTimerFor = -1;

  constructor(
    private readonly host: LinkHost,
    readonly peer: Peer,
    readonly conn: Iroh.Connection,
    readonly send: Iroh.SendStream,
    readonly recv: Iroh.RecvStream,
    /** We opened this connection (we are its client). */
    readonly dialedByMe: boolean,
    /** The peer's incarnation, from its hello (hex). */
    readonly peerIncarnation: string,
  ) {}

  /**
   * Writes the peer's queue as frames while this link is the peer's active one: records queued
   * while a frame is being written leave together as the next frame, so a busy link coalesces more.
   */
  async writeLoop(): Promise<void> {
    const peer = this.peer;
    const host = this.host;
    this.writing = true;
    try {
      while (peer.active === this && this.state === 'active' && peer.queue.size > 0) {
        const batch = peer.queue.takeBatch();
        const frame = encodeFrame(batch);
        try {
          await writeFrame(this.send, frame);
        } catch (e) {
          host.count(peer, 'dropped', batch.length);
          this.broken(e);
          return;
        }
        host.count(peer, 'framesSent', 1);
        host.count(peer, 'recordsSent', batch.length);
        host.count(peer, 'bytesSent', LENGTH_BYTES + frame.length);
      }
    } finally {
      this.writing = false;
    }
    if (this.state === 'draining') void this.finishSend();
    // The link may have been replaced while the last frame was written.
    if (peer.active !== this) host.pump(peer);
  }

  /** Reads frames until the stream ends, breaks or breaks the protocol, handing each one on. */
  async readLoop(): Promise<void> {
    const peer = this.peer;
    const host = this.host;
    const maxFrameBytes = host.limits.maxFrameBytes;
    // Parser state: the length prefix being read, then the frame being filled.
    let lenValue = 0;
    let lenHave = 0;
    let frame: Uint8Array | undefined;
    let filled = 0;
    let framesRead = 0;
    for (;;) {
      let chunk: number[];
      try {
        chunk = await this.recv.read(READ_CHUNK_BYTES);
      } catch (e) {
        this.broken(e);
        return;
      }
      if (this.state === 'closed') return;
      const n = chunk.length;
      if (n === 0) {
        if (frame !== undefined || lenHave !== 0) {
          protocolError(host, peer, this.conn, 'stream ended inside a frame', this);
          return;
        }
        this.recvDone = true;
        this.drain();
        this.maybeClose();
        return;
      }
      host.count(peer, 'bytesReceived', n);
      host.onTraffic(peer.id);
      let i = 0;
      while (i < n) {
        if (frame === undefined) {
          while (i < n && lenHave < LENGTH_BYTES) lenValue += chunk[i++]! * 2 ** (8 * lenHave++);
          if (lenHave < LENGTH_BYTES) break;
          if (lenValue > maxFrameBytes) {
            protocolError(host, peer, this.conn, `frame of ${lenValue} bytes exceeds maxFrameBytes ${maxFrameBytes}`, this);
            return;
          }
          frame = pooledBytes(lenValue);
          filled = 0;
          lenValue = 0;
          lenHave = 0;
        }
        const take = Math.min(frame.length - filled, n - i);
        // A plain loop: the binding's arrays copy ten times faster this way than with set().
        for (let k = 0; k < take; k++) frame[filled + k] = chunk[i + k]!;
        filled += take;
        i += take;
        if (filled === frame.length) {
          const f = frame;
          frame = undefined;
          framesRead++;
          if (!this.deliver(f)) return;
        }
      }
      this.watchFrame(frame !== undefined || lenHave !== 0, framesRead);
    }
  }

  /**
   * Called after each chunk read: arms the frame deadline when a frame is left partly read (once
   * per frame, from the chunk where it began), and disarms it when none is. A deadline, not a
   * rate, because the memory at stake is the whole stated length from the first byte on.
   */
  private watchFrame(pending: boolean, framesRead: number): void {
    if (pending && this.frameTimerFor === framesRead) return;
    this.stopFrameTimer();
    if (!pending) return;
    const ms = this.host.limits.frameTimeoutMs;
    this.frameTimerFor = framesRead;
    this.frameTimer = setTimeout(() => {
      this.frameTimer = undefined;
      // Closing makes the pending read fail, so the read loop ends and drops the frame's buffer.
      protocolError(this.host, this.peer, this.conn, `frame not completed within frameTimeoutMs (${ms} ms)`, this, CloseCode.FrameTimeout);
    }, ms);
  }

  private stopFrameTimer(): void {
    if (this.frameTimer !== undefined) clearTimeout(this.frameTimer);
    this.frameTimer = undefined;
    this.frameTimerFor = -1;
  }

  /** Hands one frame's records to onRecords; false when the link was closed for it. */
  private deliver(frame: Uint8Array): boolean {
    const peer = this.peer;
    const host = this.host;
    if (!host.isMember(peer.id)) {
      host.count(peer, 'refused', 1);
      host.log.warn({ peer: peer.id }, 'refused a frame from a peer that is no longer a member');
      this.close(CloseCode.NotMember, 'not a member');
      return false;
    }
    let records: DecodedRecord[];
    try {
      records = decodeFrame(frame, host.limits.maxRecordBytes);
    } catch (e) {
      if (!(e instanceof CodecError)) throw e;
      protocolError(host, peer, this.conn, `bad frame: ${e.message}`, this);
      return false;
    }
    host.count(peer, 'framesReceived', 1);
    host.count(peer, 'recordsReceived', records.length);
    if (records.length > 0) {
      try {
        host.onRecords(peer.id, records);
      } catch (e) {
        host.log.error({ peer: peer.id, err: errText(e) }, 'onRecords threw');
      }
    }
    return this.state !== 'closed';
  }

  /** Stops new frames on this link; it closes once both halves are finished and read (or at closeTimeoutMs). */
  drain(): void {
    if (this.state !== 'active') return;
    this.state = 'draining';
    const peer = this.peer;
    if (peer.active === this) peer.active = undefined;
    this.drainTimer = setTimeout(() => this.close(CloseCode.Normal, 'drain timed out'), this.host.limits.closeTimeoutMs);
    if (!this.writing) void this.finishSend();
    this.host.pump(peer);
  }

  private async finishSend(): Promise<void> {
    if (this.sendFinished) return;
    this.sendFinished = true;
    try {
      await this.send.finish();
      // Resolves once the peer has acknowledged every byte: closing after that loses nothing.
      await this.send.stopped();
    } catch {
      // The connection is gone; the reader sees it too.
    }
    this.sendAcked = true;
    this.maybeClose();
  }

  private maybeClose(): void {
    if (this.state === 'draining' && this.sendAcked && this.recvDone) this.close(CloseCode.Normal, 'drained');
  }

  private broken(e: unknown): void {
    if (this.state === 'closed') return;
    if (!this.host.closing()) this.host.log.info({ peer: this.peer.id, err: errText(e) }, 'connection lost');
    this.close(CloseCode.Normal, 'broken');
  }

  /** Closes the connection at once; a link that was the peer's active one is redialed after a short backoff. */
  close(code: bigint, reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.drainTimer !== undefined) clearTimeout(this.drainTimer);
    this.stopFrameTimer();
    closeQuietly(this.conn, code, reason);
    const peer = this.peer;
    peer.links.delete(this);
    if (peer.active === this) {
      peer.active = undefined;
      // A connection that just broke is redialed soon, but not in a tight loop.
      peer.dial = afterLinkLost(peer.dial, Date.now(), this.host.limits, () => this.host.random());
    }
    this.host.pump(peer);
  }
}
