/**
 * The hello each side writes first on a connection's stream: `"IRFT"`, wire version u8, three zero
 * bytes, then an 8-byte incarnation drawn at random when the transport starts. The version is
 * checked exactly: a peer speaking another one is a protocol error, not a guess.
 */

import { TransportError } from './errors.js';

/** ALPN of raft traffic between members. */
export const RAFT_ALPN = 'iroh-raft/0';
/** {@link RAFT_ALPN} as the binding wants it. */
export const ALPN_BYTES = Array.from(new TextEncoder().encode(RAFT_ALPN));

/** Size of the hello each side writes first on a connection's stream. */
export const HELLO_BYTES = 16;
const HELLO_MAGIC = [0x49, 0x52, 0x46, 0x54]; // "IRFT"
/** 1: raft messages may carry the commit-only flag (bit3), which version 0 refuses. */
const WIRE_VERSION = 2;
/** Bytes of the random incarnation at the end of the hello. */
export const INCARNATION_BYTES = 8;

/** QUIC application close codes. */
export const CloseCode = {
  Normal: 0n,
  ProtocolError: 1n,
  NotMember: 2n,
  Superseded: 3n,
  ShuttingDown: 4n,
  /** A frame was not completed within frameTimeoutMs of its first byte (also a protocol error). */
  FrameTimeout: 5n,
} as const;

/**
 * The hello for `incarnation` (8 bytes): `"IRFT"`, the wire version, three zero bytes, incarnation.
 * Exported for tests that speak the wire by hand.
 */
export function encodeHello(incarnation: Uint8Array): Uint8Array {
  if (incarnation.length !== INCARNATION_BYTES) throw new TransportError('InvalidConfig', `incarnation must be ${INCARNATION_BYTES} bytes`);
  const b = new Uint8Array(HELLO_BYTES);
  b.set(HELLO_MAGIC, 0);
  b[4] = WIRE_VERSION;
  b.set(incarnation, 8);
  return b;
}

/** The incarnation (hex) of a peer's hello; TransportError `ProtocolError` when malformed. */
export function parseHello(b: readonly number[]): string {
  if (b.length !== HELLO_BYTES) throw new TransportError('ProtocolError', `hello of ${b.length} bytes`);
  for (let i = 0; i < HELLO_MAGIC.length; i++) {
    if (b[i] !== HELLO_MAGIC[i]) throw new TransportError('ProtocolError', 'hello has a wrong magic (not an iroh-raft peer)');
  }
  if (b[4] !== WIRE_VERSION) throw new TransportError('ProtocolError', `hello has wire version ${b[4]}, this node speaks ${WIRE_VERSION}`);
  if (b[5] !== 0 || b[6] !== 0 || b[7] !== 0) throw new TransportError('ProtocolError', 'hello reserved bytes are not zero');
  return Buffer.from(b.slice(8)).toString('hex');
}
