/**
 * The raft transport between nodes: one Iroh endpoint (QUIC with ed25519 identities), one
 * long-lived connection per peer, and on it one bidirectional stream that carries frames of
 * records both ways.
 *
 * Wire, per connection (ALPN {@link RAFT_ALPN}): the dialer opens one bidirectional stream; each
 * side first writes a {@link HELLO_BYTES}-byte hello (`"IRFT"`, version u8 = 0, three zero bytes,
 * an 8-byte incarnation drawn at random when the transport starts), then frames: `length u32
 * little-endian, frame` where the frame is `encodeFrame(records)` from the shared wire layout
 * (src/wire/record.ts). A length above `maxFrameBytes`, a frame that `decodeFrame` refuses or a
 * malformed hello is a protocol error: counted, logged, and that connection is closed; the process
 * carries on and the peer reconnects.
 *
 * Identity: the sender of a record is the connection's authenticated remote endpoint id (the TLS
 * handshake proves the peer holds the key); nothing inside a frame is trusted for that. Only peers
 * for which `isMember` says yes may connect, and every frame is checked again, so a member removed
 * later is cut off at its next frame.
 *
 * One connection per peer. Both sides may dial (whoever has something to send and no connection),
 * so two nodes can dial each other at the same moment. The hello settles it deterministically:
 * - a connection from another incarnation of the peer (it restarted) replaces the old one at once;
 * - two connections between the same incarnations: both sides keep the one dialed by the lower
 *   endpoint id (as strings) and drain the other. Draining is graceful: no new frames go on it,
 *   each side finishes its send half, reads the peer's to the end, and the connection is closed
 *   once both halves are done (or after `closeTimeoutMs`), so no frame in flight is lost.
 * A lower-id-only dialing rule would avoid the race, but then a higher id could not reach a peer
 * that does not know its address, or that has nothing to send; the id rule only breaks ties.
 *
 * Batching: `send()` queues a record for its peer; all records queued in one event-loop turn are
 * flushed by one setImmediate as one frame per peer. While a frame is being written, new records
 * keep queuing and leave as the next frame, so a busy link coalesces more. Each peer's queue is
 * bounded by `peerQueueBytesMax`; beyond it records are dropped and counted (raft resends).
 *
 * Dialing: peers given to addPeer are kept connected (dialed at start, redialed after a break);
 * other peers are dialed on demand when they have records queued and an address is known. Keeping
 * connections matters after a crash: a peer killed without closing its connections leaves the
 * others holding a dead one (writes vanish until QUIC's 30 s idle timeout), so the restarted peer
 * dials everyone at once and its new incarnation replaces the dead connection. A dial (connect +
 * hello) that does not finish within `dialTimeoutMs` fails (Iroh alone would wait 30 s for an
 * unreachable address). Failed dials back off exponentially with jitter; after
 * `breaker.failures` consecutive failures the peer's breaker opens for `breaker.coolDownMs`,
 * during which sends to it are dropped at once without dialing; then one dial is tried
 * (half-open). A connection in either direction closes the breaker. Records queued while dialing
 * wait (bounded by the queue).
 *
 * Cost: these bindings pass bytes as `Array<number>` (about 50 ns per byte on the JS thread going
 * out, measured), so frames are converted once, in 64 KiB pieces (the event loop keeps running
 * between them), with the cheapest conversions measured here: a plain indexed loop into
 * `new Array(n)` going out (about 7 ns per byte, against about 40 for `Array.from`), and a plain
 * loop into a preallocated Uint8Array coming in (about 2 ns per byte, against about 20 for
 * `Uint8Array.prototype.set` with an array from the binding).
 */

import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type * as Iroh from '@number0/iroh/index.js';
import { CodecError, RECORD_HEADER_BYTES, decodeFrame, encodeFrame, isRecordKind, recordBytes } from '../wire/index.js';
import type { DecodedRecord, FrameRecord } from '../wire/index.js';
import { TicketError, checkPeerId, decodeTicket, encodeTicket, normalizeAddr } from './ticket.js';
import type { PeerAddr } from './ticket.js';
import { CodedError } from '../errors.js';

// The package's `main` names a file that does not exist; its index.js at the root is the real entry.
// Requiring it by path also avoids Node's DEP0128 warning.
const iroh = createRequire(import.meta.url)('@number0/iroh/index.js') as typeof Iroh;

// ------------------------------------------------------------------ wire constants

/** ALPN of raft traffic between members. */
export const RAFT_ALPN = 'iroh-raft/0';
const ALPN_BYTES = Array.from(new TextEncoder().encode(RAFT_ALPN));

/** Size of the hello each side writes first on a connection's stream. */
export const HELLO_BYTES = 16;
const HELLO_MAGIC = [0x49, 0x52, 0x46, 0x54]; // "IRFT"
/** 1: raft messages may carry the commit-only flag (bit3), which version 0 refuses. */
const WIRE_VERSION = 2;
const INCARNATION_BYTES = 8;
/** Length prefix of a frame on the stream. */
const LENGTH_BYTES = 4;
/** Largest frame length the u32 prefix can state. */
const U32_MAX = 0xffffffff;

/** Bytes asked of one stream read; the binding allocates this much per call. */
const READ_CHUNK_BYTES = 64 * 1024;
/** Bytes handed to the binding per write, so a large frame does not stall the event loop. */
const WRITE_CHUNK_BYTES = 64 * 1024;

/** QUIC application close codes. */
const CloseCode = {
  Normal: 0n,
  ProtocolError: 1n,
  NotMember: 2n,
  Superseded: 3n,
  ShuttingDown: 4n,
} as const;

/**
 * The hello for `incarnation` (8 bytes): `"IRFT"`, version 0, three zero bytes, incarnation.
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
function parseHello(b: readonly number[]): string {
  if (b.length !== HELLO_BYTES) throw new TransportError('ProtocolError', `hello of ${b.length} bytes`);
  for (let i = 0; i < HELLO_MAGIC.length; i++) {
    if (b[i] !== HELLO_MAGIC[i]) throw new TransportError('ProtocolError', 'hello has a wrong magic (not an iroh-raft peer)');
  }
  if (b[4] !== WIRE_VERSION) throw new TransportError('ProtocolError', `hello has wire version ${b[4]}, this node speaks ${WIRE_VERSION}`);
  if (b[5] !== 0 || b[6] !== 0 || b[7] !== 0) throw new TransportError('ProtocolError', 'hello reserved bytes are not zero');
  return Buffer.from(b.slice(8)).toString('hex');
}

// ------------------------------------------------------------------ errors, options, stats

export type TransportErrorCode =
  /** An option is missing, out of range or inconsistent with another. */
  | 'InvalidConfig'
  /** The key file exists but does not hold a 32-byte key in hex. */
  | 'BadKeyFile'
  /** The endpoint could not bind its address (in use, not local, malformed). */
  | 'BindFailed'
  /** A peer id or address is malformed, or names this node. */
  | 'InvalidPeer'
  /** A record cannot be sent: unknown kind, shard not a u32 (a bug in the caller). */
  | 'InvalidRecord'
  /** Internal, logged: a dial or handshake did not finish in time. */
  | 'DialTimeout'
  /** Internal, logged and counted: a peer broke the wire protocol. */
  | 'ProtocolError';

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

export interface TransportOptions {
  /** File holding this node's secret key (hex); created with mode 0600 when missing, so the id survives restarts. */
  readonly keyPath: string;
  /** `ip:port` to bind (port 0: any), e.g. `127.0.0.1:7000`; or one address per IP family. */
  readonly bindAddr: string | readonly string[];
  /** Whether `peerId` may speak raft with this node; asked per connection and per frame. */
  readonly isMember: (peerId: string) => boolean;
  /** Records of one frame from `peerId` (the authenticated sender), in order. Payloads are copies. */
  readonly onRecords: (peerId: string, records: DecodedRecord[]) => void;
  /** Largest frame accepted or sent, in bytes. Default 16 MiB. */
  readonly maxFrameBytes?: number;
  /** Largest record payload accepted or sent, in bytes. Default 8 MiB. */
  readonly maxRecordBytes?: number;
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
  /** Malformed hellos or frames, and oversized lengths; each closes its connection. */
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

const zeroCounters = (): TransportCounters => ({
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

interface Limits {
  readonly maxFrameBytes: number;
  readonly maxRecordBytes: number;
  readonly dialTimeoutMs: number;
  readonly peerQueueBytesMax: number;
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  readonly breakerFailures: number;
  readonly breakerCoolDownMs: number;
  readonly closeTimeoutMs: number;
}

function checkOptions(o: TransportOptions): Limits {
  const int = (name: string, v: number | undefined, dflt: number, min: number, max: number): number => {
    const x = v ?? dflt;
    if (!Number.isSafeInteger(x) || x < min || x > max) throw new TransportError('InvalidConfig', `${name} must be an integer in [${min}, ${max}], got ${x}`);
    return x;
  };
  if (typeof o.keyPath !== 'string' || o.keyPath === '') throw new TransportError('InvalidConfig', 'keyPath is required');
  if (typeof o.isMember !== 'function' || typeof o.onRecords !== 'function') throw new TransportError('InvalidConfig', 'isMember and onRecords are required');
  const l: Limits = {
    maxFrameBytes: int('maxFrameBytes', o.maxFrameBytes, 16 * 1024 * 1024, 1024, U32_MAX),
    maxRecordBytes: int('maxRecordBytes', o.maxRecordBytes, 8 * 1024 * 1024, 1, U32_MAX),
    dialTimeoutMs: int('dialTimeoutMs', o.dialTimeoutMs, 3000, 1, 600_000),
    peerQueueBytesMax: int('peerQueueBytesMax', o.peerQueueBytesMax, 64 * 1024 * 1024, 1024, Number.MAX_SAFE_INTEGER),
    backoffInitialMs: int('backoff.initialMs', o.backoff?.initialMs, 50, 1, 3_600_000),
    backoffMaxMs: int('backoff.maxMs', o.backoff?.maxMs, 5000, 1, 3_600_000),
    breakerFailures: int('breaker.failures', o.breaker?.failures, 5, 1, 1_000_000),
    breakerCoolDownMs: int('breaker.coolDownMs', o.breaker?.coolDownMs, 10_000, 0, 3_600_000),
    closeTimeoutMs: int('closeTimeoutMs', o.closeTimeoutMs, 2000, 0, 600_000),
  };
  if (l.maxRecordBytes + RECORD_HEADER_BYTES + 3 > l.maxFrameBytes) {
    throw new TransportError('InvalidConfig', `maxRecordBytes (${l.maxRecordBytes}) plus a record header must fit in maxFrameBytes (${l.maxFrameBytes})`);
  }
  if (l.backoffInitialMs > l.backoffMaxMs) throw new TransportError('InvalidConfig', `backoff.initialMs (${l.backoffInitialMs}) exceeds backoff.maxMs (${l.backoffMaxMs})`);
  return l;
}

// ------------------------------------------------------------------ the key file

const KEY_RE = /^[0-9a-f]{64}$/;

/** Reads the node's secret key, creating it (mode 0600, atomically, never overwriting) when missing. */
async function loadOrCreateKey(path: string, log: TransportLogger): Promise<number[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new TransportError('BadKeyFile', `cannot read ${path}: ${errText(e)}`);
    await createKey(path);
    log.info({ keyPath: path }, 'created a new node key');
    text = await readFile(path, 'utf8');
  }
  const hex = text.trim();
  if (!KEY_RE.test(hex)) throw new TransportError('BadKeyFile', `${path} does not hold a 32-byte key as 64 lowercase hex characters`);
  const st = await stat(path);
  if ((st.mode & 0o077) !== 0) log.warn({ keyPath: path, mode: (st.mode & 0o777).toString(8) }, 'node key file is readable by group or others; chmod 600 it');
  return Array.from(Buffer.from(hex, 'hex'));
}

async function createKey(path: string): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(`${randomBytes(32).toString('hex')}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    // link() never replaces: when another process created the key first, its key wins.
    await link(tmp, path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    await unlink(tmp);
  }
  try {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    // Directory fsync is best effort (not supported everywhere).
  }
}

// ------------------------------------------------------------------ helpers

const noopLogger: TransportLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

const errText = (e: unknown): string => (e instanceof Error ? e.message.split('\n')[0]! : String(e));

const textBytes = (s: string): number[] => Array.from(Buffer.from(s, 'utf8'));

function closeQuietly(conn: Iroh.Connection, code: bigint, reason: string): void {
  try {
    conn.close(code, textBytes(reason));
  } catch {
    // Already closed.
  }
}

/** `p`, or a DialTimeout rejection at `deadline` (epoch ms); a late value goes to `onLate`. */
function withDeadline<T>(p: Promise<T>, deadline: number, what: string, onLate?: (v: T) => void): Promise<T> {
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

/** Writes `length u32 LE, frame` in pieces of at most WRITE_CHUNK_BYTES. */
async function writeFrame(send: Iroh.SendStream, frame: Uint8Array): Promise<void> {
  const len = frame.length;
  const total = LENGTH_BYTES + len;
  for (let pos = 0; pos < total; ) {
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

// ------------------------------------------------------------------ peers and links

/** One connection to a peer and its stream. */
class Link {
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

  constructor(
    readonly peer: Peer,
    readonly conn: Iroh.Connection,
    readonly send: Iroh.SendStream,
    readonly recv: Iroh.RecvStream,
    /** We opened this connection (we are its client). */
    readonly dialedByMe: boolean,
    /** The peer's incarnation, from its hello (hex). */
    readonly peerIncarnation: string,
  ) {}
}

class Peer {
  readonly counters = zeroCounters();
  /** Addresses to dial, canonical; replaced by addPeer, learned from an inbound connection when empty. */
  addrs: string[] = [];
  /** Added by addPeer: kept connected (dialed at once, redialed after a break), not only on demand. */
  wanted = false;
  endpointId: Iroh.EndpointId | undefined;
  /** Records waiting for the writer, oldest first; their wire size sums to `queuedBytes`. */
  queue: FrameRecord[] = [];
  queuedBytes = 0;
  /** The link new frames go to; undefined while none is up. */
  active: Link | undefined;
  /** Every open link (the active one and draining ones). */
  readonly links = new Set<Link>();
  dialing = false;
  retryTimer: NodeJS.Timeout | undefined;
  /** Failed dials since the last connection; reset by any connection that comes up. */
  failures = 0;
  /** No dial before this time (epoch ms). */
  nextDialAt = 0;
  /** The breaker is open until this time (epoch ms). */
  breakerUntil = 0;

  constructor(readonly id: string) {}

  /** A fresh start for dialing (new addresses, or a connection came up): no backoff, breaker closed. */
  resetDialing(): void {
    this.failures = 0;
    this.nextDialAt = 0;
    this.breakerUntil = 0;
    this.cancelRetry();
  }

  cancelRetry(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** Takes the oldest records that fit in one frame of `maxFrameBytes` (at least one). */
  takeBatch(maxFrameBytes: number): FrameRecord[] {
    if (this.queuedBytes <= maxFrameBytes) {
      const all = this.queue;
      this.queue = [];
      this.queuedBytes = 0;
      return all;
    }
    let bytes = 0;
    let n = 0;
    while (n < this.queue.length) {
      const w = recordBytes(this.queue[n]!.payload.length);
      if (n > 0 && bytes + w > maxFrameBytes) break;
      bytes += w;
      n++;
    }
    this.queuedBytes -= bytes;
    return this.queue.splice(0, n);
  }
}

// ------------------------------------------------------------------ the transport

/**
 * The raft transport of one node. Start with {@link Transport.start}; stop with close() (flush,
 * then drain) or destroy() (at once).
 */
export class Transport {
  /** This node's endpoint id (64 hex characters). */
  readonly id: string;

  private readonly log: TransportLogger;
  private readonly limits: Limits;
  private readonly isMember: (peerId: string) => boolean;
  private readonly onRecords: (peerId: string, records: DecodedRecord[]) => void;
  private readonly hello: number[];
  private readonly peers = new Map<string, Peer>();
  private readonly totals = { ...zeroCounters(), dialFailures: 0, handshakeFailures: 0 };
  /** Peers with records queued since the last flush. */
  private readonly dirty = new Set<Peer>();
  private flushHandle: NodeJS.Immediate | undefined;
  /** close() or destroy() was called: sends are dropped, no new connections are taken. */
  private closing = false;
  /** Everything is being torn down: no dials, no timers. */
  private stopped = false;
  private closed: Promise<void> | undefined;
  private readonly acceptLoop: Promise<void>;
  /**
   * The endpoint; let go once closed, because the binding releases its UDP sockets only when the
   * JS object is garbage-collected (Endpoint.close() alone keeps the port bound).
   */
  private ep: Iroh.Endpoint | undefined;
  /** The direct addresses last seen, for ticket() after close. */
  private lastAddrs: string[];

  private constructor(ep: Iroh.Endpoint, opts: TransportOptions, limits: Limits, log: TransportLogger) {
    this.ep = ep;
    this.lastAddrs = ep.addr().directAddresses();
    this.id = ep.id().toString();
    this.log = log;
    this.limits = limits;
    this.isMember = opts.isMember;
    this.onRecords = opts.onRecords;
    this.hello = Array.from(encodeHello(randomBytes(INCARNATION_BYTES)));
    this.acceptLoop = this.runAcceptLoop(ep);
  }

  /**
   * Loads (or creates) the node key, binds the endpoint with no relays and no discovery (direct
   * addresses only) and starts accepting. TransportError `InvalidConfig`, `BadKeyFile` or
   * `BindFailed`.
   */
  static async start(opts: TransportOptions): Promise<Transport> {
    const limits = checkOptions(opts);
    const log = opts.logger ?? noopLogger;
    const addrs = typeof opts.bindAddr === 'string' ? [opts.bindAddr] : [...opts.bindAddr];
    if (addrs.length === 0 || addrs.length > 2) throw new TransportError('InvalidConfig', 'bindAddr must be one address, or one per IP family');
    const key = await loadOrCreateKey(opts.keyPath, log);
    let ep: Iroh.Endpoint;
    try {
      const b = iroh.Endpoint.builder();
      // Minimal preset: crypto only. Never the n0 presets: no relay, no discovery, nothing goes to
      // third parties; peers are reached at the direct addresses their tickets name. (The binding
      // still runs iroh's port mapper, which sends one UPnP SSDP multicast, TTL 1, per bind; its
      // JS API has no switch for it.)
      iroh.presetMinimal(b);
      b.relayMode(iroh.RelayMode.disabled());
      b.secretKey(key);
      b.alpns([ALPN_BYTES]);
      for (const a of addrs) b.bindAddr(a);
      ep = await b.bind();
    } catch (e) {
      throw new TransportError('BindFailed', `cannot bind ${addrs.join(', ')}: ${errText(e)}`);
    }
    const t = new Transport(ep, opts, limits, log);
    log.info({ id: t.id, addrs: ep.addr().directAddresses() }, 'transport started');
    return t;
  }

  /** This node's ticket: its id and the direct addresses it is bound to. */
  ticket(): string {
    return encodeTicket({ id: this.id, addrs: this.addrs() });
  }

  /** The direct addresses this endpoint listens on (`ip:port`). */
  addrs(): string[] {
    if (this.ep !== undefined) this.lastAddrs = this.ep.addr().directAddresses();
    return [...this.lastAddrs];
  }

  /**
   * Remembers where `peer` can be dialed (a ticket string or `{ id, addrs }`) and keeps a
   * connection to it: dialed now, redialed with backoff after a break, once per cool-down while
   * its breaker is open. Idempotent; new addresses replace the old ones and, when they differ,
   * reset the peer's backoff and breaker.
   * TicketError `InvalidTicket` for a bad ticket; TransportError `InvalidPeer` for a bad id or
   * address, or this node's own id.
   */
  addPeer(peer: string | PeerAddr): void {
    let p: PeerAddr;
    if (typeof peer === 'string') {
      p = decodeTicket(peer);
    } else {
      try {
        p = { id: checkPeerId(peer.id), addrs: peer.addrs.map(normalizeAddr) };
      } catch (e) {
        throw new TransportError('InvalidPeer', e instanceof TicketError ? e.message : errText(e));
      }
    }
    if (p.id === this.id) throw new TransportError('InvalidPeer', 'cannot add this node itself as a peer');
    const entry = this.peer(p.id);
    let endpointId: Iroh.EndpointId;
    try {
      endpointId = iroh.EndpointId.fromString(p.id);
    } catch (e) {
      throw new TransportError('InvalidPeer', `${p.id} is not a valid endpoint id: ${errText(e)}`);
    }
    entry.endpointId = endpointId;
    entry.wanted = true;
    const addrs = [...new Set(p.addrs)];
    if (addrs.join(' ') !== entry.addrs.join(' ')) {
      entry.addrs = addrs;
      entry.resetDialing();
    }
    this.pump(entry);
  }

  /**
   * Forgets a peer: drops its queue (counted) and closes its connections. Its counters leave
   * stats().peers; the totals keep them.
   */
  removePeer(peerId: string): void {
    const peer = this.peers.get(peerId);
    if (peer === undefined) return;
    this.dropQueue(peer);
    peer.cancelRetry();
    for (const l of [...peer.links]) this.closeLink(l, CloseCode.Normal, 'peer removed');
    this.peers.delete(peerId);
    this.dirty.delete(peer);
  }

  /**
   * Queues a record for `peerId`; records queued in one event-loop turn leave as one frame.
   * `payload` is not copied: it must not change until the frame is written (pass a copy of any
   * buffer that gets reused).
   * Returns false when the record is dropped (and counted): transport closed, peer queue full,
   * breaker open, or a payload above maxRecordBytes. TransportError `InvalidRecord` for an unknown
   * kind or a shard that is not a u32, `InvalidPeer` for a malformed id (bugs in the caller).
   */
  send(peerId: string, kind: number, shard: number, payload: Uint8Array): boolean {
    if (this.closing) {
      this.totals.dropped++;
      const p = this.peers.get(peerId);
      if (p !== undefined) p.counters.dropped++;
      return false;
    }
    if (!isRecordKind(kind)) throw new TransportError('InvalidRecord', `unknown record kind ${kind}`);
    if (!(Number.isInteger(shard) && shard >= 0 && shard <= U32_MAX)) throw new TransportError('InvalidRecord', `shard must be a u32, got ${shard}`);
    const peer = this.peer(peerId);
    const len = payload.length;
    if (len > this.limits.maxRecordBytes) {
      this.count(peer, 'dropped', 1);
      this.log.error({ peer: peerId, kind, shard, bytes: len, maxRecordBytes: this.limits.maxRecordBytes }, 'record larger than maxRecordBytes dropped');
      return false;
    }
    const w = recordBytes(len);
    if (peer.queuedBytes + w > this.limits.peerQueueBytesMax || Date.now() < peer.breakerUntil) {
      this.count(peer, 'dropped', 1);
      return false;
    }
    peer.queue.push({ kind, shard, payload });
    peer.queuedBytes += w;
    this.dirty.add(peer);
    this.flushHandle ??= setImmediate(() => this.flush());
    return true;
  }

  /** Counters in total and per peer. */
  stats(): TransportStats {
    const now = Date.now();
    const peers: Record<string, PeerStats> = {};
    for (const p of this.peers.values()) {
      let state: PeerState;
      if (p.active !== undefined) state = 'connected';
      else if (p.dialing) state = 'dialing';
      else if (now < p.breakerUntil) state = 'open';
      else if (p.retryTimer !== undefined || now < p.nextDialAt) state = 'backoff';
      else state = 'idle';
      peers[p.id] = {
        ...p.counters,
        state,
        consecutiveFailures: p.failures,
        queuedRecords: p.queue.length,
        queuedBytes: p.queuedBytes,
        connections: p.links.size,
        addrs: [...p.addrs],
      };
    }
    return { ...this.totals, peers };
  }

  /**
   * Graceful stop: sends are refused from now on; queued records are flushed to connected peers,
   * then every connection drains (both halves finished and read), all within closeTimeoutMs; then
   * the endpoint closes. Records still queued at the deadline are dropped and counted.
   */
  close(): Promise<void> {
    this.closed ??= this.shutdown(true);
    return this.closed;
  }

  /** Stops at once: connections are closed without flushing, the endpoint closes. */
  destroy(): Promise<void> {
    this.closed ??= this.shutdown(false);
    return this.closed;
  }

  // ---------------------------------------------------------------- sending

  private peer(id: string): Peer {
    let p = this.peers.get(id);
    if (p === undefined) {
      if (typeof id !== 'string' || !/^[0-9a-f]{64}$/.test(id)) throw new TransportError('InvalidPeer', `peer id must be 64 lowercase hex characters, got ${JSON.stringify(id)}`);
      p = new Peer(id);
      this.peers.set(id, p);
    }
    return p;
  }

  private count(peer: Peer | undefined, what: keyof TransportCounters, n: number): void {
    this.totals[what] += n;
    if (peer !== undefined) peer.counters[what] += n;
  }

  private flush(): void {
    this.flushHandle = undefined;
    const peers = [...this.dirty];
    this.dirty.clear();
    for (const p of peers) this.pump(p);
  }

  /** Moves a peer's queue along: to the writer when connected, else towards a dial. */
  private pump(peer: Peer): void {
    if (this.stopped) return;
    const l = peer.active;
    if (l !== undefined) {
      if (peer.queue.length > 0 && !l.writing) void this.writeLoop(l);
      return;
    }
    if (peer.queue.length > 0 || (peer.wanted && !this.closing)) this.ensureDial(peer);
  }

  private dropQueue(peer: Peer): void {
    if (peer.queue.length === 0) return;
    this.count(peer, 'dropped', peer.queue.length);
    peer.queue = [];
    peer.queuedBytes = 0;
  }

  private async writeLoop(l: Link): Promise<void> {
    const peer = l.peer;
    l.writing = true;
    try {
      while (peer.active === l && l.state === 'active' && peer.queue.length > 0) {
        const batch = peer.takeBatch(this.limits.maxFrameBytes);
        const frame = encodeFrame(batch);
        try {
          await writeFrame(l.send, frame);
        } catch (e) {
          this.count(peer, 'dropped', batch.length);
          this.linkBroken(l, e);
          return;
        }
        this.count(peer, 'framesSent', 1);
        this.count(peer, 'recordsSent', batch.length);
        this.count(peer, 'bytesSent', LENGTH_BYTES + frame.length);
      }
    } finally {
      l.writing = false;
    }
    if (l.state === 'draining') void this.finishSend(l);
    // The link may have been replaced while the last frame was written.
    if (peer.active !== l) this.pump(peer);
  }

  // ---------------------------------------------------------------- dialing

  private backoffMs(failures: number): number {
    const { backoffInitialMs, backoffMaxMs } = this.limits;
    const d = Math.min(backoffMaxMs, backoffInitialMs * 2 ** Math.min(30, failures - 1));
    return Math.round(d / 2 + (Math.random() * d) / 2);
  }

  private ensureDial(peer: Peer): void {
    if (this.stopped || peer.dialing || peer.retryTimer !== undefined || peer.active !== undefined) return;
    const now = Date.now();
    const retryAt = (at: number): void => {
      peer.retryTimer = setTimeout(() => {
        peer.retryTimer = undefined;
        this.pump(peer);
      }, at - now);
    };
    if (now < peer.breakerUntil) {
      this.dropQueue(peer);
      // A peer we keep a connection to gets one dial when the cool-down ends (half-open).
      if (peer.wanted && !this.closing) retryAt(peer.breakerUntil);
      return;
    }
    if (peer.addrs.length === 0 || peer.endpointId === undefined) {
      // Nowhere to dial; the peer may still connect to us.
      this.dropQueue(peer);
      return;
    }
    if (now < peer.nextDialAt) {
      retryAt(peer.nextDialAt);
      return;
    }
    peer.dialing = true;
    this.dial(peer, peer.endpointId).then(
      (l) => {
        peer.dialing = false;
        if (this.stopped) {
          closeQuietly(l.conn, CloseCode.ShuttingDown, 'shutting down');
          return;
        }
        this.register(l);
      },
      (e: unknown) => {
        peer.dialing = false;
        peer.failures++;
        this.totals.dialFailures++;
        if (e instanceof TransportError && e.code === 'ProtocolError') this.count(peer, 'protocolErrors', 1);
        if (this.stopped) return;
        if (peer.failures >= this.limits.breakerFailures) {
          peer.breakerUntil = Date.now() + this.limits.breakerCoolDownMs;
          const o = { peer: peer.id, failures: peer.failures, coolDownMs: this.limits.breakerCoolDownMs, err: errText(e) };
          if (peer.failures === this.limits.breakerFailures) this.log.warn(o, 'peer unreachable: breaker open');
          else this.log.debug?.(o, 'peer still unreachable: breaker open again');
          this.dropQueue(peer);
        } else {
          peer.nextDialAt = Date.now() + this.backoffMs(peer.failures);
          this.log.info({ peer: peer.id, failures: peer.failures, err: errText(e) }, 'dial failed');
        }
        this.pump(peer);
      },
    );
  }

  /** Connects and exchanges hellos, all within dialTimeoutMs. */
  private async dial(peer: Peer, endpointId: Iroh.EndpointId): Promise<Link> {
    const ep = this.ep;
    if (ep === undefined) throw new TransportError('DialTimeout', 'the transport is closed');
    const deadline = Date.now() + this.limits.dialTimeoutMs;
    const addr = new iroh.EndpointAddr(endpointId, null, peer.addrs);
    const conn = await withDeadline(ep.connect(addr, ALPN_BYTES), deadline, 'connect', (late) => closeQuietly(late, CloseCode.Normal, 'dial timed out'));
    try {
      if (conn.remoteId().toString() !== peer.id) throw new TransportError('ProtocolError', 'connected to another endpoint id than dialed');
      const bi = await withDeadline(conn.openBi(), deadline, 'open stream');
      const send = bi.send;
      const recv = bi.recv;
      await withDeadline(send.writeAll(this.hello), deadline, 'hello');
      const incarnation = parseHello(await withDeadline(recv.readExact(HELLO_BYTES), deadline, 'hello'));
      return new Link(peer, conn, send, recv, true, incarnation);
    } catch (e) {
      closeQuietly(conn, e instanceof TransportError && e.code === 'ProtocolError' ? CloseCode.ProtocolError : CloseCode.Normal, errText(e));
      throw e;
    }
  }

  // ---------------------------------------------------------------- accepting

  private async runAcceptLoop(ep: Iroh.Endpoint): Promise<void> {
    for (;;) {
      let inc: Iroh.Incoming | null;
      try {
        inc = await ep.acceptNext();
      } catch (e) {
        if (this.stopped) return;
        this.log.error({ err: errText(e) }, 'accept failed');
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      if (inc === null) return; // The endpoint closed.
      void this.handleIncoming(inc);
    }
  }

  private async handleIncoming(inc: Iroh.Incoming): Promise<void> {
    const deadline = Date.now() + this.limits.dialTimeoutMs;
    let conn: Iroh.Connection;
    let from: Iroh.IncomingAddr | undefined;
    try {
      from = await inc.remoteAddr();
      const accepting = await withDeadline(inc.accept(), deadline, 'accept');
      conn = await withDeadline(accepting.connect(), deadline, 'handshake', (late) => closeQuietly(late, CloseCode.Normal, 'handshake timed out'));
    } catch (e) {
      // A wrong ALPN lands here (the TLS handshake refuses it): count it and keep accepting.
      this.totals.handshakeFailures++;
      this.log.info({ from: from?.addr, err: errText(e) }, 'inbound handshake failed');
      return;
    }
    if (this.closing) {
      closeQuietly(conn, CloseCode.ShuttingDown, 'shutting down');
      return;
    }
    const peerId = conn.remoteId().toString();
    if (!this.isMember(peerId)) {
      this.count(this.peers.get(peerId), 'refused', 1);
      this.log.warn({ peer: peerId, from: from?.addr }, 'refused a connection from a non-member');
      closeQuietly(conn, CloseCode.NotMember, 'not a member');
      return;
    }
    const peer = this.peer(peerId);
    try {
      const bi = await withDeadline(conn.acceptBi(), deadline, 'stream');
      let hello: number[];
      try {
        hello = await withDeadline(bi.recv.readExact(HELLO_BYTES), deadline, 'hello');
      } catch (e) {
        if (errText(e).startsWith('FinishedEarly')) throw new TransportError('ProtocolError', 'stream ended inside the hello');
        throw e;
      }
      const incarnation = parseHello(hello);
      await withDeadline(bi.send.writeAll(this.hello), deadline, 'hello');
      if (this.closing) {
        closeQuietly(conn, CloseCode.ShuttingDown, 'shutting down');
        return;
      }
      // The dialer's socket is its listening socket: learn it when nothing better is known.
      if (peer.addrs.length === 0 && from?.kind === 'ip' && from.addr !== undefined) {
        try {
          peer.addrs = [normalizeAddr(from.addr)];
        } catch {
          // Not an address we can dial back.
        }
      }
      peer.endpointId ??= conn.remoteId();
      this.register(new Link(peer, conn, bi.send, bi.recv, false, incarnation));
    } catch (e) {
      if (e instanceof TransportError && e.code === 'ProtocolError') {
        this.protocolError(peer, conn, e.message);
      } else {
        this.totals.handshakeFailures++;
        this.log.info({ peer: peerId, err: errText(e) }, 'inbound hello failed');
        closeQuietly(conn, CloseCode.Normal, errText(e));
      }
    }
  }

  // ---------------------------------------------------------------- links

  /** Makes a fresh link usable, settling duplicates (see the header comment). */
  private register(l: Link): void {
    const peer = l.peer;
    peer.links.add(l);
    const cur = peer.active;
    if (cur === undefined) {
      peer.active = l;
    } else if (cur.peerIncarnation !== l.peerIncarnation) {
      peer.active = l;
      this.log.info({ peer: peer.id }, 'peer restarted: replacing its old connection');
      this.closeLink(cur, CloseCode.Superseded, 'peer restarted');
    } else {
      // Same incarnations: keep the connection dialed by the lower id; between two of the same
      // direction (the dialer gave up on the older one), the newer.
      const keepNew = cur.dialedByMe === l.dialedByMe || l.dialedByMe === (this.id < peer.id);
      const loser = keepNew ? cur : l;
      peer.active = keepNew ? l : cur;
      this.log.debug?.({ peer: peer.id, kept: peer.active.dialedByMe ? 'outbound' : 'inbound' }, 'duplicate connection: draining one');
      this.drain(loser);
    }
    peer.resetDialing();
    void this.readLoop(l);
    this.pump(peer);
  }

  private async readLoop(l: Link): Promise<void> {
    const peer = l.peer;
    const maxFrameBytes = this.limits.maxFrameBytes;
    // Parser state: the length prefix being read, then the frame being filled.
    let lenValue = 0;
    let lenHave = 0;
    let frame: Uint8Array | undefined;
    let filled = 0;
    for (;;) {
      let chunk: number[];
      try {
        chunk = await l.recv.read(READ_CHUNK_BYTES);
      } catch (e) {
        this.linkBroken(l, e);
        return;
      }
      if (l.state === 'closed') return;
      const n = chunk.length;
      if (n === 0) {
        if (frame !== undefined || lenHave !== 0) {
          this.protocolError(peer, l.conn, 'stream ended inside a frame', l);
          return;
        }
        l.recvDone = true;
        this.drain(l);
        this.maybeClose(l);
        return;
      }
      this.count(peer, 'bytesReceived', n);
      let i = 0;
      while (i < n) {
        if (frame === undefined) {
          while (i < n && lenHave < LENGTH_BYTES) lenValue += chunk[i++]! * 2 ** (8 * lenHave++);
          if (lenHave < LENGTH_BYTES) break;
          if (lenValue > maxFrameBytes) {
            this.protocolError(peer, l.conn, `frame of ${lenValue} bytes exceeds maxFrameBytes ${maxFrameBytes}`, l);
            return;
          }
          frame = new Uint8Array(lenValue);
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
          if (!this.deliver(l, f)) return;
        }
      }
    }
  }

  /** Hands one frame's records to onRecords; false when the link was closed for it. */
  private deliver(l: Link, frame: Uint8Array): boolean {
    const peer = l.peer;
    if (!this.isMember(peer.id)) {
      this.count(peer, 'refused', 1);
      this.log.warn({ peer: peer.id }, 'refused a frame from a peer that is no longer a member');
      this.closeLink(l, CloseCode.NotMember, 'not a member');
      return false;
    }
    let records: DecodedRecord[];
    try {
      records = decodeFrame(frame, this.limits.maxRecordBytes);
    } catch (e) {
      if (!(e instanceof CodecError)) throw e;
      this.protocolError(peer, l.conn, `bad frame: ${e.message}`, l);
      return false;
    }
    this.count(peer, 'framesReceived', 1);
    this.count(peer, 'recordsReceived', records.length);
    if (records.length > 0) {
      try {
        this.onRecords(peer.id, records);
      } catch (e) {
        this.log.error({ peer: peer.id, err: errText(e) }, 'onRecords threw');
      }
    }
    return l.state !== 'closed';
  }

  private protocolError(peer: Peer, conn: Iroh.Connection, why: string, l?: Link): void {
    this.count(peer, 'protocolErrors', 1);
    this.log.warn({ peer: peer.id, err: why }, 'protocol error: closing the connection');
    if (l !== undefined) this.closeLink(l, CloseCode.ProtocolError, why);
    else closeQuietly(conn, CloseCode.ProtocolError, why);
  }

  /** Stops new frames on `l`; it closes once both halves are finished and read (or at closeTimeoutMs). */
  private drain(l: Link): void {
    if (l.state !== 'active') return;
    l.state = 'draining';
    const peer = l.peer;
    if (peer.active === l) peer.active = undefined;
    l.drainTimer = setTimeout(() => this.closeLink(l, CloseCode.Normal, 'drain timed out'), this.limits.closeTimeoutMs);
    if (!l.writing) void this.finishSend(l);
    this.pump(peer);
  }

  private async finishSend(l: Link): Promise<void> {
    if (l.sendFinished) return;
    l.sendFinished = true;
    try {
      await l.send.finish();
      // Resolves once the peer has acknowledged every byte: closing after that loses nothing.
      await l.send.stopped();
    } catch {
      // The connection is gone; the reader sees it too.
    }
    l.sendAcked = true;
    this.maybeClose(l);
  }

  private maybeClose(l: Link): void {
    if (l.state === 'draining' && l.sendAcked && l.recvDone) this.closeLink(l, CloseCode.Normal, 'drained');
  }

  private linkBroken(l: Link, e: unknown): void {
    if (l.state === 'closed') return;
    if (!this.closing) this.log.info({ peer: l.peer.id, err: errText(e) }, 'connection lost');
    this.closeLink(l, CloseCode.Normal, 'broken');
  }

  private closeLink(l: Link, code: bigint, reason: string): void {
    if (l.state === 'closed') return;
    l.state = 'closed';
    if (l.drainTimer !== undefined) clearTimeout(l.drainTimer);
    closeQuietly(l.conn, code, reason);
    const peer = l.peer;
    peer.links.delete(l);
    if (peer.active === l) {
      peer.active = undefined;
      // A connection that just broke is redialed soon, but not in a tight loop.
      peer.nextDialAt = Math.max(peer.nextDialAt, Date.now() + this.backoffMs(1));
    }
    this.pump(peer);
  }

  // ---------------------------------------------------------------- shutdown

  private async shutdown(graceful: boolean): Promise<void> {
    this.closing = true;
    if (graceful) {
      const deadline = Date.now() + this.limits.closeTimeoutMs;
      if (this.flushHandle !== undefined) {
        clearImmediate(this.flushHandle);
        this.flush();
      }
      const busy = (): boolean => [...this.peers.values()].some((p) => (p.queue.length > 0 && (p.active !== undefined || p.dialing)) || p.active?.writing === true);
      while (busy() && Date.now() < deadline) await sleep(5);
      for (const p of this.peers.values()) {
        this.dropQueue(p);
        for (const l of p.links) this.drain(l);
      }
      const open = (): boolean => [...this.peers.values()].some((p) => p.links.size > 0);
      while (open() && Date.now() < deadline) await sleep(5);
    }
    this.stopped = true;
    if (this.flushHandle !== undefined) clearImmediate(this.flushHandle);
    this.flushHandle = undefined;
    for (const p of this.peers.values()) {
      this.dropQueue(p);
      p.cancelRetry();
      for (const l of [...p.links]) this.closeLink(l, CloseCode.ShuttingDown, 'shutting down');
    }
    const ep = this.ep;
    if (ep !== undefined) {
      this.lastAddrs = ep.addr().directAddresses();
      await ep.close();
    }
    await this.acceptLoop;
    this.ep = undefined;
    this.log.info({ id: this.id }, 'transport closed');
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
