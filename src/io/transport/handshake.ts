/**
 * Opening a connection's stream and exchanging hellos, each way, within a deadline (Iroh alone
 * would wait 30 s for an unreachable address). The dialer opens the bidirectional stream and
 * writes first; the acceptor reads the dialer's hello, then answers with its own.
 */

import type * as Iroh from '@number0/iroh/index.js';
import { TransportError, errText } from './errors.js';
import { ALPN_BYTES, CloseCode, HELLO_BYTES, parseHello } from './hello.js';
import { iroh } from './iroh.js';
import { closeQuietly } from './link.js';

/** A connection whose hellos were exchanged. */
export interface Handshaken {
  readonly conn: Iroh.Connection;
  readonly send: Iroh.SendStream;
  readonly recv: Iroh.RecvStream;
  /** The peer's incarnation, from its hello (hex). */
  readonly incarnation: string;
}

/** `p`, or a DialTimeout rejection at `deadline` (epoch ms); a late value goes to `onLate`. */
export function withDeadline<T>(p: Promise<T>, deadline: number, what: string, onLate?: (v: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(
      () => {
        settled = true;
        reject(new TransportError('DialTimeout', `${what} did not finish in time`));
      },
      Math.max(0, deadline - Date.now()),
    );
    p.then(
      (v) => {
        if (settled) {
          onLate?.(v);
          return;
        }
        settled = true;
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/**
 * Connects to `peerId` at `addrs` and exchanges hellos, all by `deadline` (epoch ms).
 * TransportError `DialTimeout` when late, `ProtocolError` for another endpoint id than dialed or a
 * malformed hello; the connection is closed on any failure.
 */
export async function dialHandshake(
  ep: Iroh.Endpoint,
  endpointId: Iroh.EndpointId,
  peerId: string,
  addrs: string[],
  hello: number[],
  deadline: number,
): Promise<Handshaken> {
  const addr = new iroh.EndpointAddr(endpointId, null, addrs);
  const conn = await withDeadline(ep.connect(addr, ALPN_BYTES), deadline, 'connect', (late) => closeQuietly(late, CloseCode.Normal, 'dial timed out'));
  try {
    if (conn.remoteId().toString() !== peerId) throw new TransportError('ProtocolError', 'connected to another endpoint id than dialed');
    const bi = await withDeadline(conn.openBi(), deadline, 'open stream');
    const send = bi.send;
    const recv = bi.recv;
    await withDeadline(send.writeAll(hello), deadline, 'hello');
    const incarnation = parseHello(await withDeadline(recv.readExact(HELLO_BYTES), deadline, 'hello'));
    return { conn, send, recv, incarnation };
  } catch (e) {
    closeQuietly(conn, e instanceof TransportError && e.code === 'ProtocolError' ? CloseCode.ProtocolError : CloseCode.Normal, errText(e));
    throw e;
  }
}

/**
 * Takes the stream an accepted connection's dialer opens, reads its hello and answers, all by
 * `deadline`. TransportError `DialTimeout` when late, `ProtocolError` for a malformed or cut hello;
 * the caller closes the connection on failure.
 */
export async function acceptHandshake(conn: Iroh.Connection, hello: number[], deadline: number): Promise<Handshaken> {
  const bi = await withDeadline(conn.acceptBi(), deadline, 'stream');
  let theirs: number[];
  try {
    theirs = await withDeadline(bi.recv.readExact(HELLO_BYTES), deadline, 'hello');
  } catch (e) {
    if (errText(e).startsWith('FinishedEarly')) throw new TransportError('ProtocolError', 'stream ended inside the hello');
    throw e;
  }
  const incarnation = parseHello(theirs);
  await withDeadline(bi.send.writeAll(hello), deadline, 'hello');
  return { conn, send: bi.send, recv: bi.recv, incarnation };
}
