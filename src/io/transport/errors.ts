/** The transport's operating errors, its logger shape, and small helpers for error text. */

import { CodedError } from '../../errors.js';

export type TransportErrorCode =
  /** An option is missing, out of range or inconsistent with another. */
  | 'InvalidConfig'
  /** The endpoint could not bind its address (in use, not local, malformed). */
  | 'BindFailed'
  /** A peer id or address is malformed, or names this node. */
  | 'InvalidPeer'
  /** A record cannot be sent: unknown kind, shard not a u32 (a bug in the caller). */
  | 'InvalidRecord'
  /** Internal, logged: a dial or handshake did not finish in time. */
  | 'DialTimeout'
  /** Internal, logged and counted: a peer broke the wire protocol. */
  | 'ProtocolError'
  /** A snapshot stream ended under us: the peer closed it or went away. */
  | 'StreamClosed'
  /** No address or id is known for the peer, or it is not a member: nothing to dial. */
  | 'UnknownPeer';

/** Operating errors of the transport, with a stable `code`. */
export class TransportError extends CodedError<TransportErrorCode> {
  override readonly name = 'TransportError';
}

/** The subset of a pino logger the transport uses. */
export interface TransportLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  debug?(obj: object, msg: string): void;
}

/** A logger that drops everything, when none is given. */
export const noopLogger: TransportLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** The first line of an error's message (the binding's errors carry backtraces after it). */
export const errText = (e: unknown): string => (e instanceof Error ? e.message.split('\n')[0]! : String(e));
