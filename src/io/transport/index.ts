/**
 * The raft transport between nodes, over Iroh: see transport.ts for the protocol and the rules of
 * one connection per peer, batching, dialing and the breaker.
 */

export { Transport } from './transport.js';
export { HELLO_BYTES, RAFT_ALPN, encodeHello } from './hello.js';
export { TransportError } from './errors.js';
export { SnapStream } from './snapshot-stream.js';
export type { TransportErrorCode, TransportLogger } from './errors.js';
export type { PeerState, PeerStats, TransportCounters, TransportOptions, TransportStats } from './options.js';
