/** The transport's options, the limits checked from them, and the counters it reports. */

import type * as Iroh from '@number0/iroh/index.js';
import { RECORD_HEADER_BYTES } from '../../wire/index.js';
import type { SnapStream } from './snapshot-stream.js';
import type { DecodedRecord } from '../../wire/index.js';
import { TransportError } from './errors.js';
import type { TransportLogger } from './errors.js';

/** Largest frame length the u32 prefix can state, and the largest shard id. */
export const U32_MAX = 0xffffffff;

export interface TransportOptions {
  /** This node's secret key, 32 bytes: its identity (the caller keeps it, so the id survives restarts). */
  readonly secretKey: Uint8Array;
  /** `ip:port` to bind (port 0: any), e.g. `127.0.0.1:7000`; or one address per IP family. */
  readonly bindAddr: string | readonly string[];
  /** Whether `peerId` may speak raft with this node; asked per connection and per frame. */
  readonly isMember: (peerId: string) => boolean;
  /** Records of one frame from `peerId` (the authenticated sender), in order. Payloads are copies. */
  readonly onRecords: (peerId: string, records: DecodedRecord[]) => void;
  /**
   * Bytes arrived from `peerId` (the authenticated sender) on a raft link, before the frame they
   * belong to is whole: a large frame takes a while to cross, and the peer is there meanwhile.
   */
  readonly onTraffic?: (peerId: string) => void;
  /**
   * A member opened a snapshot stream to this node (ALPN `iroh-raft-snap/0`); the handler owns it
   * and closes it. Without a handler such connections are refused.
   */
  readonly onSnapshotStream?: (stream: SnapStream) => void;
  /**
   * A peer connected with a new incarnation while its old connection was still open here: it
   * restarted, and every other connection with its earlier incarnation (snapshot streams) is dead,
   * though QUIC would notice only at its idle timeout.
   */
  readonly onPeerRestart?: (peerId: string) => void;
  /**
   * A connection made with the management ALPN (`iroh-raft-mgmt/0`) from any endpoint, member or
   * not (roles are checked per request, src/io/mgmt); the handler owns it. Without a handler the
   * ALPN is not offered.
   */
  readonly onMgmtConnection?: (conn: Iroh.Connection, peerId: string) => void;
  /**
   * A connection made with the discovery ALPN (`iroh-raft-discovery/0`) from any endpoint: the
   * handler owns it, and closes a non-member's at once (src/io/discovery). Without a handler the
   * ALPN is not offered.
   */
  readonly onDiscoveryConnection?: (conn: Iroh.Connection, peerId: string) => void;
  /** Largest frame accepted or sent, in bytes. Default 16 MiB. */
  readonly maxFrameBytes?: number;
  /** Largest record payload accepted or sent, in bytes. Default 8 MiB. */
  readonly maxRecordBytes?: number;
  /** Records with a payload above this many bytes go in the peer's bulk lane (lanes.ts). Default 16 KiB. */
  readonly bulkRecordBytesMin?: number;
  /** Bulk bytes (on the wire) one frame carries at most, unless a single bulk record is larger. Default 512 KiB. */
  readonly frameBulkBytesMax?: number;
  /**
   * Time a frame may take to arrive once its first length byte is read, in milliseconds; past it
   * the connection is closed (close code `FrameTimeout`) and counted as a protocol error. A started
   * frame holds a buffer of its stated length (up to maxFrameBytes), so without this bound a member
   * could announce a large frame, stall, and pin that memory for as long as the connection lives.
   * Default 10,000: a frame of the largest record at the default limits (8 MiB) still arrives over
   * a link as slow as 1 MiB/s, and a frame of normal traffic (at most frameBulkBytesMax, 512 KiB)
   * over one of 64 KiB/s; raise it for slower links or larger limits.
   */
  readonly frameTimeoutMs?: number;
  /** Time a dial (connect + hello) may take, in milliseconds. Default 3,000. */
  readonly dialTimeoutMs?: number;
  /** Bytes (on the wire) queued for one peer; beyond it records are dropped and counted. Default 64 MiB. */
  readonly peerQueueBytesMax?: number;
  /** Delay before redialing after the n-th failure: `min(maxMs, initialMs * 2^(n-1))`, jittered to 50-100 %. */
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  /** After `failures` consecutive failed dials, sends to the peer are dropped for `coolDownMs`. Defaults 5 and 10,000. */
  readonly breaker?: { readonly failures?: number; readonly coolDownMs?: number };
  /** How long close() may spend flushing and draining, in milliseconds. Default 2,000. */
  readonly closeTimeoutMs?: number;
  /**
   * How long close() and destroy() wait for the Iroh endpoint's own close once every connection
   * was closed, in milliseconds. Default 250. The endpoint waits for its connections to finish
   * closing, about 3 s for a peer that was gone already (a node stopping after the others); the
   * close frames left earlier, so past this bound the close goes on in the background.
   */
  readonly endpointCloseWaitMs?: number;
  readonly logger?: TransportLogger;
}

/** What a peer's link is doing now. */
export type PeerState =
  /** A connection is up. */
  | 'connected'
  /** A dial is in progress. */
  | 'dialing'
  /** Waiting before the next dial after a failure. */
  | 'backoff'
  /** The breaker is open: sends are dropped until the cool-down ends. */
  | 'open'
  /** No connection and nothing to send. */
  | 'idle';

export interface TransportCounters {
  /** Bytes written on raft streams (length prefixes and frames). */
  bytesSent: number;
  /** Bytes read from raft streams after the hello. */
  bytesReceived: number;
  framesSent: number;
  framesReceived: number;
  recordsSent: number;
  recordsReceived: number;
  /** Records not sent: queue full, breaker open, no address, lost with a broken connection, or sent after close. */
  dropped: number;
  /** Malformed hellos or frames, oversized lengths, and frames not completed within frameTimeoutMs; each closes its connection. */
  protocolErrors: number;
  /** Connections and frames refused because the peer is not a member. */
  refused: number;
}

export interface PeerStats extends TransportCounters {
  readonly state: PeerState;
  /** Failed dials since the last successful connection. */
  readonly consecutiveFailures: number;
  readonly queuedRecords: number;
  readonly queuedBytes: number;
  /** Open connections: 1 normally, 2 while a duplicate drains. */
  readonly connections: number;
  readonly addrs: readonly string[];
}

export interface TransportStats extends TransportCounters {
  /** Dials that failed (timeout, refused, unreachable, bad hello). */
  dialFailures: number;
  /** Inbound connections that failed before their hello (wrong ALPN, timeouts). */
  handshakeFailures: number;
  readonly peers: Record<string, PeerStats>;
}

export const zeroCounters = (): TransportCounters => ({
  bytesSent: 0,
  bytesReceived: 0,
  framesSent: 0,
  framesReceived: 0,
  recordsSent: 0,
  recordsReceived: 0,
  dropped: 0,
  protocolErrors: 0,
  refused: 0,
});

export interface Limits {
  readonly maxFrameBytes: number;
  readonly maxRecordBytes: number;
  readonly dialTimeoutMs: number;
  readonly frameTimeoutMs: number;
  readonly peerQueueBytesMax: number;
  readonly bulkRecordBytesMin: number;
  readonly frameBulkBytesMax: number;
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  readonly breakerFailures: number;
  readonly breakerCoolDownMs: number;
  readonly closeTimeoutMs: number;
  readonly endpointCloseWaitMs: number;
}

export function checkOptions(o: TransportOptions): Limits {
  const int = (name: string, v: number | undefined, dflt: number, min: number, max: number): number => {
    const x = v ?? dflt;
    if (!Number.isSafeInteger(x) || x < min || x > max) throw new TransportError('InvalidConfig', `${name} must be an integer in [${min}, ${max}], got ${x}`);
    return x;
  };
  if (!(o.secretKey instanceof Uint8Array) || o.secretKey.length !== 32) throw new TransportError('InvalidConfig', 'secretKey must be 32 bytes');
  if (typeof o.isMember !== 'function' || typeof o.onRecords !== 'function') throw new TransportError('InvalidConfig', 'isMember and onRecords are required');
  const l: Limits = {
    maxFrameBytes: int('maxFrameBytes', o.maxFrameBytes, 16 * 1024 * 1024, 1024, U32_MAX),
    maxRecordBytes: int('maxRecordBytes', o.maxRecordBytes, 8 * 1024 * 1024, 1, U32_MAX),
    dialTimeoutMs: int('dialTimeoutMs', o.dialTimeoutMs, 3000, 1, 600_000),
    frameTimeoutMs: int('frameTimeoutMs', o.frameTimeoutMs, 10_000, 1, 600_000),
    peerQueueBytesMax: int('peerQueueBytesMax', o.peerQueueBytesMax, 64 * 1024 * 1024, 1024, Number.MAX_SAFE_INTEGER),
    bulkRecordBytesMin: int('bulkRecordBytesMin', o.bulkRecordBytesMin, 16 * 1024, 0, U32_MAX),
    frameBulkBytesMax: int('frameBulkBytesMax', o.frameBulkBytesMax, 512 * 1024, 1, U32_MAX),
    backoffInitialMs: int('backoff.initialMs', o.backoff?.initialMs, 50, 1, 3_600_000),
    backoffMaxMs: int('backoff.maxMs', o.backoff?.maxMs, 5000, 1, 3_600_000),
    breakerFailures: int('breaker.failures', o.breaker?.failures, 5, 1, 1_000_000),
    breakerCoolDownMs: int('breaker.coolDownMs', o.breaker?.coolDownMs, 10_000, 0, 3_600_000),
    closeTimeoutMs: int('closeTimeoutMs', o.closeTimeoutMs, 2000, 0, 600_000),
    endpointCloseWaitMs: int('endpointCloseWaitMs', o.endpointCloseWaitMs, 250, 0, 600_000),
  };
  if (l.maxRecordBytes + RECORD_HEADER_BYTES + 3 > l.maxFrameBytes) {
    throw new TransportError('InvalidConfig', `maxRecordBytes (${l.maxRecordBytes}) plus a record header must fit in maxFrameBytes (${l.maxFrameBytes})`);
  }
  if (l.backoffInitialMs > l.backoffMaxMs)
    throw new TransportError('InvalidConfig', `backoff.initialMs (${l.backoffInitialMs}) exceeds backoff.maxMs (${l.backoffMaxMs})`);
  return l;
}
