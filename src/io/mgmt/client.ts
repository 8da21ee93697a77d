/**
 * A management client: an Iroh endpoint of its own (its secret key is the caller's identity) and
 * one connection to a node, one stream per request (frame.ts). For the `iroh-raft mgmt` command
 * and tests. Every step has a deadline: Iroh alone waits 30 s for an unreachable address.
 */
import type * as Iroh from '@number0/iroh/index.js';
import { CodedError } from '../../errors.js';
import type { PeerAddr } from '../ticket.js';
import { errText } from '../transport/errors.js';
import { withDeadline } from '../transport/handshake.js';
import { CloseCode } from '../transport/hello.js';
import { closeEndpointWithin, iroh } from '../transport/iroh.js';
import { closeQuietly } from '../transport/link.js';
import { LENGTH_BYTES, MGMT_ALPN_BYTES, asReply, decodeBody, encodeFrame, frameLength, fromArray, toArray } from './frame.js';
import type { MgmtReply } from './frame.js';

/**
 * How long closing waits for the client's own endpoint: its close frames are sent at once, and a
 * node that is gone (or never answered the dial) would hold the close ~3 s for an answer.
 */
const ENDPOINT_CLOSE_WAIT_MS = 250;

export type MgmtClientErrorCode =
  /** The node could not be reached, or the connection broke. */
  | 'Unreachable'
  /** No reply within the call's time. */
  | 'Timeout'
  /** The node answered something that is not a reply, or one larger than replyBytesMax. */
  | 'ProtocolError';

/** Failures of the client itself (a node's refusals are replies, not these). */
export class MgmtClientError extends CodedError<MgmtClientErrorCode> {
  override readonly name = 'MgmtClientError';
}

export interface MgmtConnectOptions {
  /** The caller's secret key (32 bytes): its endpoint id is who the node checks roles for. */
  readonly secretKey: Uint8Array;
  /** The node: its endpoint id and direct addresses (a decoded ticket). */
  readonly node: PeerAddr;
  /** Time to connect, in ms. Default 5,000. */
  readonly connectTimeoutMs?: number;
  /** Largest reply accepted, in bytes. Default 16 MiB. */
  readonly replyBytesMax?: number;
}

export class MgmtClient {
  /** The caller's endpoint id (64 hex characters); empty for a client made with {@link MgmtClient.over}. */
  readonly id: string;

  private constructor(
    private readonly ep: Iroh.Endpoint | undefined,
    private readonly conn: Iroh.Connection,
    private readonly replyBytesMax: number,
  ) {
    this.id = ep?.id().toString() ?? '';
  }

  /**
   * A client over `conn`, a connection made with the management ALPN by an endpoint the caller
   * owns (a node's own transport): close() then closes only the connection.
   */
  static over(conn: Iroh.Connection, replyBytesMax = 16 << 20): MgmtClient {
    return new MgmtClient(undefined, conn, replyBytesMax);
  }

  /** Binds an endpoint on 127.0.0.1 (no relays, no discovery) and connects. MgmtClientError `Unreachable` or `Timeout`. */
  static async connect(opts: MgmtConnectOptions): Promise<MgmtClient> {
    const b = iroh.Endpoint.builder();
    iroh.presetMinimal(b);
    b.relayMode(iroh.RelayMode.disabled());
    b.secretKey(Array.from(opts.secretKey));
    b.bindAddr('127.0.0.1:0');
    let ep: Iroh.Endpoint;
    try {
      ep = await b.bind();
    } catch (e) {
      throw new MgmtClientError('Unreachable', `cannot bind a local endpoint: ${errText(e)}`);
    }
    const deadline = Date.now() + (opts.connectTimeoutMs ?? 5_000);
    try {
      const addr = new iroh.EndpointAddr(iroh.EndpointId.fromString(opts.node.id), null, [...opts.node.addrs]);
      const conn = await withDeadline(ep.connect(addr, MGMT_ALPN_BYTES), deadline, 'connect', (late) => closeQuietly(late, CloseCode.Normal, 'too late'));
      return new MgmtClient(ep, conn, opts.replyBytesMax ?? 16 << 20);
    } catch (e) {
      await closeEndpointWithin(ep, ENDPOINT_CLOSE_WAIT_MS);
      const late = e instanceof CodedError && e.code === 'DialTimeout';
      throw new MgmtClientError(late ? 'Timeout' : 'Unreachable', `${opts.node.addrs.join(', ')}: ${errText(e)}`);
    }
  }

  /** Sends `{op, args}` and waits for the reply, up to `timeoutMs` (default 15,000). */
  call(op: string, args?: unknown, timeoutMs = 15_000): Promise<MgmtReply> {
    return this.exchange(encodeFrame(args === undefined ? { op } : { op, args }), timeoutMs);
  }

  /**
   * Writes `bytes` as they are on a new stream (for tests speaking the wire by hand), ends it, and
   * reads one reply. MgmtClientError `Unreachable` when the stream breaks, `ProtocolError` when
   * the answer is not a reply.
   */
  async exchange(bytes: Uint8Array, timeoutMs = 15_000, finish = true): Promise<MgmtReply> {
    const deadline = Date.now() + timeoutMs;
    try {
      const bi = await withDeadline(this.conn.openBi(), deadline, 'open stream');
      await withDeadline(bi.send.writeAll(toArray(bytes)), deadline, 'request');
      if (finish) await withDeadline(bi.send.finish(), deadline, 'request');
      const len = frameLength(fromArray(await withDeadline(bi.recv.readExact(LENGTH_BYTES), deadline, 'reply')));
      if (len > this.replyBytesMax) throw new MgmtClientError('ProtocolError', `a reply of ${len} bytes, more than ${this.replyBytesMax}`);
      const body = len === 0 ? new Uint8Array(0) : fromArray(await withDeadline(bi.recv.readExact(len), deadline, 'reply'));
      const decoded = decodeBody(body);
      const reply = decoded === undefined ? undefined : asReply(decoded.value);
      if (reply === undefined) throw new MgmtClientError('ProtocolError', 'the node answered something that is not a reply');
      return reply;
    } catch (e) {
      if (e instanceof MgmtClientError) throw e;
      if (e instanceof CodedError && e.code === 'DialTimeout') throw new MgmtClientError('Timeout', `no reply within ${timeoutMs} ms`);
      throw new MgmtClientError('Unreachable', errText(e));
    }
  }

  /** Closes the connection and the endpoint (waiting for the endpoint at most ENDPOINT_CLOSE_WAIT_MS). */
  async close(): Promise<void> {
    closeQuietly(this.conn, CloseCode.Normal, 'done');
    if (this.ep !== undefined) await closeEndpointWithin(this.ep, ENDPOINT_CLOSE_WAIT_MS);
  }
}
