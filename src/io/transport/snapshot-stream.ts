/**
 * One snapshot stream: a connection of its own (ALPN `iroh-raft-snap/0`, src/wire/snapshot.ts)
 * and one bidirectional stream on it carrying length-prefixed messages. Kept apart from the raft
 * link so a transfer of gigabytes never delays a heartbeat; QUIC's flow control paces the writer,
 * and every read has a deadline, so a peer that stops answering frees the stream.
 *
 * The bindings pass bytes as `Array<number>` (see link.ts): a message is written and read in pieces
 * of 64 KiB, so a 4 MiB chunk does not stall the thread.
 */

import type * as Iroh from '@number0/iroh/index.js';
import { SNAPSHOT_ALPN, SNAPSHOT_MESSAGE_BYTES_MAX } from '../../wire/index.js';
import { TransportError, errText } from './errors.js';
import { withDeadline } from './handshake.js';
import { CloseCode } from './hello.js';
import { closeQuietly, writeFrame } from './link.js';

/** {@link SNAPSHOT_ALPN} as the binding wants it. */
export const SNAP_ALPN_BYTES = Array.from(new TextEncoder().encode(SNAPSHOT_ALPN));
const LENGTH_BYTES = 4;
/** Bytes asked of the binding per read. */
const PIECE_BYTES = 64 * 1024;

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * Length-prefixed messages over one stream of a snapshot connection. Errors are TransportError:
 * `DialTimeout` for a read past its deadline, `ProtocolError` for a length above
 * SNAPSHOT_MESSAGE_BYTES_MAX, `StreamClosed` when the peer went away.
 */
export class SnapStream {
  bytesWritten = 0;
  bytesRead = 0;

  constructor(
    readonly peerId: string,
    private readonly conn: Iroh.Connection,
    private readonly send: Iroh.SendStream,
    private readonly recv: Iroh.RecvStream,
  ) {}

  /** Writes `length u32 LE, body` (as the raft link writes frames); resolves when the binding took every byte (flow control waits here). */
  async write(body: Uint8Array): Promise<void> {
    try {
      await writeFrame(this.send, body);
    } catch (e) {
      throw new TransportError('StreamClosed', `snapshot stream to ${this.peerId}: ${errText(e)}`);
    }
    this.bytesWritten += LENGTH_BYTES + body.length;
  }

  /** Reads one message body, each piece by `timeoutMs` from now. */
  async read(timeoutMs: number): Promise<Uint8Array> {
    const head = await this.readExact(LENGTH_BYTES, timeoutMs);
    const len = (head[0]! | (head[1]! << 8) | (head[2]! << 16) | (head[3]! << 24)) >>> 0;
    if (len > SNAPSHOT_MESSAGE_BYTES_MAX)
      throw new TransportError('ProtocolError', `snapshot stream message of ${len} bytes exceeds ${SNAPSHOT_MESSAGE_BYTES_MAX}`);
    return this.readExact(len, timeoutMs);
  }

  /** Ends the sending half (the peer reads the end of the stream). */
  async finish(): Promise<void> {
    try {
      await this.send.finish();
    } catch {
      // The peer is gone already.
    }
  }

  /**
   * The side that answers last: ends its half and lets the peer close the connection once it read
   * the answer (closing at once could discard the answer still in flight), or closes after
   * `timeoutMs`.
   */
  async linger(timeoutMs: number): Promise<void> {
    await this.finish();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.conn.closed().catch(() => undefined), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    this.close('snapshot stream over');
  }

  /** Closes the connection (both halves). */
  close(reason: string, code: bigint = CloseCode.Normal): void {
    closeQuietly(this.conn, code, reason);
  }

  private async readExact(n: number, timeoutMs: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    for (let at = 0; at < n;) {
      const want = Math.min(PIECE_BYTES, n - at);
      let piece: number[];
      try {
        piece = await withDeadline(this.recv.readExact(want), Date.now() + timeoutMs, 'snapshot stream read');
      } catch (e) {
        if (e instanceof TransportError) throw e;
        throw new TransportError('StreamClosed', `snapshot stream from ${this.peerId}: ${errText(e)}`);
      }
      for (let i = 0; i < piece.length; i++) out[at + i] = piece[i]!;
      at += piece.length;
      this.bytesRead += piece.length;
      if (at < n) await turn();
    }
    return out;
  }
}
