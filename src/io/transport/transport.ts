/**
 * The raft transport between nodes: one Iroh endpoint (QUIC with ed25519 identities), one
 * long-lived connection per peer, and on it one bidirectional stream that carries frames of
 * records both ways.
 *
 * Connections with the management ALPN (`iroh-raft-mgmt/0`) go to `onMgmtConnection` from any
 * endpoint (src/io/mgmt checks roles per request); those with the discovery ALPN
 * (`iroh-raft-discovery/0`) go to `onDiscoveryConnection`, which closes a stranger's at once
 * (src/io/discovery counts them); the raft and snapshot ALPNs are members only.
 *
 * Wire, per connection (ALPN {@link RAFT_ALPN}): the dialer opens one bidirectional stream; each
 * side first writes a {@link HELLO_BYTES}-byte hello (`"IRFT"`, the wire version u8, three zero bytes,
 * an 8-byte incarnation drawn at random when the transport starts), then frames: `length u32
 * little-endian, frame` where the frame is `encodeFrame(records)` from the shared wire layout
 * (src/wire/record.ts). A length above `maxFrameBytes`, a frame that `decodeFrame` refuses, a
 * frame not complete within `frameTimeoutMs` of its first byte (it holds a buffer of its stated
 * length meanwhile) or a malformed hello is a protocol error: counted, logged, and that connection
 * is closed; the process carries on and the peer reconnects.
 *
 * Identity: the sender of a record is the connection's authenticated remote endpoint id (the TLS
 * handshake proves the peer holds the key); nothing inside a frame is trusted for that. Only peers
 * for which `isMember` says yes may connect, and every frame is checked again, so a member removed
 * later is cut off at its next frame.
 *
 * One connection per peer. Both sides may dial (whoever has something to send and no connection),
 * so two nodes can dial each other at the same moment; the hellos' incarnations and the endpoint
 * ids settle it deterministically, without losing a frame in flight (Peer.adopt in peer.ts).
 *
 * Batching: `send()` queues a record for its peer; all records queued in one event-loop turn are
 * flushed by one setImmediate as one frame per peer. While a frame is being written, new records
 * keep queuing and leave as the next frame, so a busy link coalesces more. Each peer's queue is
 * bounded by `peerQueueBytesMax`; beyond it records are dropped and counted (raft resends).
 * The queue has two lanes (lanes.ts): large records go in a bulk lane, of which a frame carries at
 * most `frameBulkBytesMax` bytes after every small record queued, so heartbeats, votes, responses
 * and liveness records never wait behind more than about one such frame of bulk.
 *
 * Dialing: peers given to addPeer are kept connected (dialed at start, redialed after a break);
 * other peers are dialed on demand when they have records queued and an address is known. A peer
 * `isMember` refuses is not dialed (its records are dropped) until it says yes again. Keeping
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
 * Files, one idea each, in this folder (index.ts is its public face): `hello.ts` (the hello and
 * the wire version), `key.ts` (the node key file), `options.ts` (options, limits, counters),
 * `backoff.ts` (backoff and breaker as pure functions of the time), `handshake.ts` (connect or
 * accept, then hellos, by a deadline), `link.ts` (one connection: framing, read loop, write
 * coalescing, drain; its header says what the byte conversions cost), `lanes.ts` (a peer's
 * two-lane queue of records), `peer.ts` (a peer's queue and links). This file is the coordinator:
 * the endpoint, the accept loop, the peers and their queues, dialing and shutdown.
 */

import { randomBytes } from 'node:crypto';
import type * as Iroh from '@number0/iroh/index.js';
import { isRecordKind } from '../../wire/index.js';
import { TicketError, checkPeerId, decodeTicket, encodeTicket, normalizeAddr } from '../ticket.js';
import type { PeerAddr } from '../ticket.js';
import { afterDialFailure, breakerOpen, dialDecision, peerState } from './backoff.js';
import { TransportError, errText, noopLogger } from './errors.js';
import type { TransportLogger } from './errors.js';
import { acceptHandshake, dialHandshake, withDeadline } from './handshake.js';
import { ALPN_BYTES, CloseCode, INCARNATION_BYTES, encodeHello } from './hello.js';
import { closeEndpointWithin, iroh } from './iroh.js';
import { Link, closeQuietly, protocolError } from './link.js';
import type { LinkHost } from './link.js';
import { U32_MAX, checkOptions, zeroCounters } from './options.js';
import type { Limits, PeerStats, TransportCounters, TransportOptions, TransportStats } from './options.js';
import { Peer } from './peer.js';
import { SNAP_ALPN_BYTES, SnapStream } from './snapshot-stream.js';
import { MGMT_ALPN_BYTES } from '../mgmt/frame.js';
import { DISC_ALPN_BYTES } from '../discovery/wire.js';

/**
 * The raft transport of one node. Start with {@link Transport.start}; stop with close() (flush,
 * then drain) or destroy() (at once).
 */
export class Transport {
  /** This node's endpoint id (64 hex characters). */
  readonly id: string;

  private readonly log: TransportLogger;
  /** The limits in force (defaults filled in); the pool sizes its ring records within `maxRecordBytes`. */
  readonly limits: Limits;
  private readonly isMember: (peerId: string) => boolean;
  private readonly onSnapshotStream: ((stream: SnapStream) => void) | undefined;
  private readonly onPeerRestart: ((peerId: string) => void) | undefined;
  private readonly onMgmtConnection: TransportOptions['onMgmtConnection'];
  private readonly onDiscoveryConnection: TransportOptions['onDiscoveryConnection'];
  /** What this transport's links use of it. */
  private readonly host: LinkHost;
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
    this.onSnapshotStream = opts.onSnapshotStream;
    this.onPeerRestart = opts.onPeerRestart;
    this.onMgmtConnection = opts.onMgmtConnection;
    this.onDiscoveryConnection = opts.onDiscoveryConnection;
    this.host = {
      limits,
      log,
      isMember: opts.isMember,
      onRecords: opts.onRecords,
      onTraffic: opts.onTraffic ?? (() => undefined),
      closing: () => this.closing,
      count: (peer, what, n) => this.count(peer, what, n),
      pump: (peer) => this.pump(peer),
      random: Math.random,
    };
    this.hello = Array.from(encodeHello(randomBytes(INCARNATION_BYTES)));
    this.acceptLoop = this.runAcceptLoop(ep);
  }

  /**
   * Loads (or creates) the node key, binds the endpoint with no relays and no discovery (direct
   * addresses only) and starts accepting. TransportError `InvalidConfig` or
   * `BindFailed`.
   */
  static async start(opts: TransportOptions): Promise<Transport> {
    const limits = checkOptions(opts);
    const log = opts.logger ?? noopLogger;
    const addrs = typeof opts.bindAddr === 'string' ? [opts.bindAddr] : [...opts.bindAddr];
    if (addrs.length === 0 || addrs.length > 2) throw new TransportError('InvalidConfig', 'bindAddr must be one address, or one per IP family');
    const key = Array.from(opts.secretKey);
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
      b.alpns([
        ALPN_BYTES,
        SNAP_ALPN_BYTES,
        ...(opts.onMgmtConnection === undefined ? [] : [MGMT_ALPN_BYTES]),
        ...(opts.onDiscoveryConnection === undefined ? [] : [DISC_ALPN_BYTES]),
      ]);
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
    for (const l of [...peer.links]) l.close(CloseCode.Normal, 'peer removed');
    this.peers.delete(peerId);
    this.dirty.delete(peer);
  }

  /** Largest record payload this transport sends or accepts, in bytes (its maxRecordBytes). */
  get maxRecordBytes(): number {
    return this.limits.maxRecordBytes;
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
    if (breakerOpen(peer.dial, Date.now())) {
      this.count(peer, 'dropped', 1);
      return false;
    }
    const { queued, dropped } = peer.queue.push({ kind, shard, payload });
    if (dropped > 0) this.count(peer, 'dropped', dropped);
    if (!queued) return false;
    this.dirty.add(peer);
    this.flushHandle ??= setImmediate(() => this.flush());
    return true;
  }

  /**
   * Opens a snapshot stream to `peerId` on a connection of its own (never the raft link), within
   * dialTimeoutMs. TransportError `UnknownPeer` (no id or address known, or not a member),
   * `DialTimeout`, `ProtocolError` (another endpoint answered).
   */
  async openSnapshotStream(peerId: string): Promise<SnapStream> {
    const ep = this.ep;
    const peer = this.peers.get(peerId);
    if (ep === undefined || this.closing) throw new TransportError('DialTimeout', 'the transport is closed');
    if (peer?.endpointId === undefined || peer.addrs.length === 0 || !this.isMember(peerId)) {
      throw new TransportError('UnknownPeer', `no address known for member ${peerId}`);
    }
    const deadline = Date.now() + this.limits.dialTimeoutMs;
    const addr = new iroh.EndpointAddr(peer.endpointId, null, peer.addrs);
    const conn = await withDeadline(ep.connect(addr, SNAP_ALPN_BYTES), deadline, 'connect', (late) => closeQuietly(late, CloseCode.Normal, 'dial timed out'));
    try {
      if (conn.remoteId().toString() !== peerId) throw new TransportError('ProtocolError', 'connected to another endpoint id than dialed');
      const bi = await withDeadline(conn.openBi(), deadline, 'open stream');
      return new SnapStream(peerId, conn, bi.send, bi.recv);
    } catch (e) {
      closeQuietly(conn, CloseCode.Normal, errText(e));
      throw e;
    }
  }

  /**
   * Connects to `peerId` at `addrs` with another ALPN of this endpoint's (discovery), within
   * dialTimeoutMs; the caller owns the connection. Neither the raft link nor the peer's known
   * addresses change. TransportError `DialTimeout` (also when closed), `ProtocolError` when another
   * endpoint answered, `InvalidPeer` for a malformed id.
   */
  async connect(peerId: string, addrs: readonly string[], alpn: readonly number[]): Promise<Iroh.Connection> {
    const ep = this.ep;
    if (ep === undefined || this.closing) throw new TransportError('DialTimeout', 'the transport is closed');
    let endpointId: Iroh.EndpointId;
    try {
      endpointId = iroh.EndpointId.fromString(peerId);
    } catch (e) {
      throw new TransportError('InvalidPeer', `${peerId} is not a valid endpoint id: ${errText(e)}`);
    }
    const deadline = Date.now() + this.limits.dialTimeoutMs;
    const addr = new iroh.EndpointAddr(endpointId, null, [...addrs]);
    const conn = await withDeadline(ep.connect(addr, [...alpn]), deadline, 'connect', (late) => closeQuietly(late, CloseCode.Normal, 'dial timed out'));
    if (conn.remoteId().toString() !== peerId) {
      closeQuietly(conn, CloseCode.ProtocolError, 'another endpoint id than dialed');
      throw new TransportError('ProtocolError', 'connected to another endpoint id than dialed');
    }
    return conn;
  }

  /** Counters in total and per peer. */
  stats(): TransportStats {
    const now = Date.now();
    const peers: Record<string, PeerStats> = {};
    for (const p of this.peers.values()) {
      peers[p.id] = {
        ...p.counters,
        state: peerState(p.dial, now, { connected: p.active !== undefined, dialing: p.dialing, retryScheduled: p.retryTimer !== undefined }),
        consecutiveFailures: p.dial.failures,
        queuedRecords: p.queue.size,
        queuedBytes: p.queue.bytes,
        connections: p.links.size,
        addrs: [...p.addrs],
      };
    }
    return { ...this.totals, peers };
  }

  /**
   * Graceful stop: sends are refused from now on; queued records are flushed to connected peers
   * (and to a peer being dialed, unless its last dial failed), then every connection drains (both
   * halves finished and read), all within closeTimeoutMs; then the endpoint closes, awaited for at
   * most endpointCloseWaitMs. Records still queued at the deadline, or for a peer whose last dial
   * failed, are dropped and counted.
   */
  close(): Promise<void> {
    this.closed ??= this.shutdown(true);
    return this.closed;
  }

  /** Stops at once: connections are closed without flushing, the endpoint closes (awaited for at most endpointCloseWaitMs). */
  destroy(): Promise<void> {
    this.closed ??= this.shutdown(false);
    return this.closed;
  }

  // ---------------------------------------------------------------- sending

  private peer(id: string): Peer {
    let p = this.peers.get(id);
    if (p === undefined) {
      if (typeof id !== 'string' || !/^[0-9a-f]{64}$/.test(id))
        throw new TransportError('InvalidPeer', `peer id must be 64 lowercase hex characters, got ${JSON.stringify(id)}`);
      p = new Peer(id, this.limits);
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
      if (peer.queue.size > 0 && !l.writing) void l.writeLoop();
      return;
    }
    if (peer.queue.size > 0 || (peer.wanted && !this.closing)) this.ensureDial(peer);
  }

  private dropQueue(peer: Peer): void {
    const n = peer.queue.clear();
    if (n > 0) this.count(peer, 'dropped', n);
  }

  // ---------------------------------------------------------------- dialing

  private ensureDial(peer: Peer): void {
    if (this.stopped || peer.dialing || peer.retryTimer !== undefined || peer.active !== undefined) return;
    const now = Date.now();
    const retryAt = (at: number): void => {
      peer.retryTimer = setTimeout(() => {
        peer.retryTimer = undefined;
        this.pump(peer);
      }, at - now);
    };
    if (!this.isMember(peer.id)) {
      // A peer this node refuses (inbound and per frame) is not dialed either: whatever waits for
      // it goes, and a peer kept connected is asked about again after the longest backoff, since
      // it may become a member again.
      this.dropQueue(peer);
      if (peer.wanted && !this.closing) retryAt(now + this.limits.backoffMaxMs);
      return;
    }
    const decision = dialDecision(peer.dial, now);
    if (decision.kind === 'open') {
      this.dropQueue(peer);
      // A peer we keep a connection to gets one dial when the cool-down ends (half-open).
      if (peer.wanted && !this.closing) retryAt(decision.at);
      return;
    }
    if (peer.addrs.length === 0 || peer.endpointId === undefined) {
      // Nowhere to dial; the peer may still connect to us.
      this.dropQueue(peer);
      return;
    }
    if (decision.kind === 'wait') {
      retryAt(decision.at);
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
        const failed = afterDialFailure(peer.dial, Date.now(), this.limits, () => this.host.random());
        peer.dial = failed.state;
        this.totals.dialFailures++;
        if (e instanceof TransportError && e.code === 'ProtocolError') this.count(peer, 'protocolErrors', 1);
        if (this.stopped) return;
        const failures = peer.dial.failures;
        if (failed.breaker !== undefined) {
          const o = { peer: peer.id, failures, coolDownMs: this.limits.breakerCoolDownMs, err: errText(e) };
          if (failed.breaker === 'opened') this.log.warn(o, 'peer unreachable: breaker open');
          else this.log.debug?.(o, 'peer still unreachable: breaker open again');
          this.dropQueue(peer);
        } else {
          this.log.info({ peer: peer.id, failures, err: errText(e) }, 'dial failed');
        }
        this.pump(peer);
      },
    );
  }

  /** Connects and exchanges hellos, all within dialTimeoutMs. */
  private async dial(peer: Peer, endpointId: Iroh.EndpointId): Promise<Link> {
    const ep = this.ep;
    if (ep === undefined) throw new TransportError('DialTimeout', 'the transport is closed');
    const h = await dialHandshake(ep, endpointId, peer.id, peer.addrs, this.hello, Date.now() + this.limits.dialTimeoutMs);
    return new Link(this.host, peer, h.conn, h.send, h.recv, true, h.incarnation);
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
    // Management is for operators too, not only members: roles are checked per request there.
    if (this.onMgmtConnection !== undefined && sameBytes(conn.alpn(), MGMT_ALPN_BYTES)) {
      this.onMgmtConnection(conn, peerId);
      return;
    }
    // Discovery counts and closes strangers itself, so their attempts show in its metrics.
    if (this.onDiscoveryConnection !== undefined && sameBytes(conn.alpn(), DISC_ALPN_BYTES)) {
      this.onDiscoveryConnection(conn, peerId);
      return;
    }
    if (!this.isMember(peerId)) {
      this.count(this.peers.get(peerId), 'refused', 1);
      this.log.warn({ peer: peerId, from: from?.addr }, 'refused a connection from a non-member');
      closeQuietly(conn, CloseCode.NotMember, 'not a member');
      return;
    }
    if (sameBytes(conn.alpn(), SNAP_ALPN_BYTES)) {
      await this.acceptSnapshotStream(conn, peerId, deadline);
      return;
    }
    const peer = this.peer(peerId);
    try {
      const h = await acceptHandshake(conn, this.hello, deadline);
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
      this.register(new Link(this.host, peer, conn, h.send, h.recv, false, h.incarnation));
    } catch (e) {
      if (e instanceof TransportError && e.code === 'ProtocolError') {
        protocolError(this.host, peer, conn, e.message);
      } else {
        this.totals.handshakeFailures++;
        this.log.info({ peer: peerId, err: errText(e) }, 'inbound hello failed');
        closeQuietly(conn, CloseCode.Normal, errText(e));
      }
    }
  }

  /** A member's snapshot connection: its stream goes to the handler (which owns it from then on). */
  private async acceptSnapshotStream(conn: Iroh.Connection, peerId: string, deadline: number): Promise<void> {
    const handler = this.onSnapshotStream;
    if (handler === undefined) {
      closeQuietly(conn, CloseCode.Normal, 'snapshot streams are not taken here');
      return;
    }
    try {
      const bi = await withDeadline(conn.acceptBi(), deadline, 'snapshot stream');
      handler(new SnapStream(peerId, conn, bi.send, bi.recv));
    } catch (e) {
      this.totals.handshakeFailures++;
      this.log.info({ peer: peerId, err: errText(e) }, 'inbound snapshot stream failed');
      closeQuietly(conn, CloseCode.Normal, errText(e));
    }
  }

  // ---------------------------------------------------------------- links

  /** Makes a fresh link usable, settling duplicates (see the header comment). */
  private register(l: Link): void {
    // Membership may have changed while the connection was dialed or its hellos exchanged.
    if (!this.isMember(l.peer.id)) {
      this.count(l.peer, 'refused', 1);
      closeQuietly(l.conn, CloseCode.NotMember, 'not a member');
      this.pump(l.peer);
      return;
    }
    if (l.peer.adopt(l, this.id, this.log)) this.onPeerRestart?.(l.peer.id);
    void l.readLoop();
    this.pump(l.peer);
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
      // A dial after a failed one is not waited for: that peer is likely down, and the dial would
      // hold the close until dialTimeoutMs (what is queued for it is dropped, counted; raft resends).
      const busy = (): boolean =>
        [...this.peers.values()].some(
          (p) => (p.queue.size > 0 && (p.active !== undefined || (p.dialing && p.dial.failures === 0))) || p.active?.writing === true,
        );
      while (busy() && Date.now() < deadline) await sleep(5);
      for (const p of this.peers.values()) {
        this.dropQueue(p);
        for (const l of p.links) l.drain();
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
      for (const l of [...p.links]) l.close(CloseCode.ShuttingDown, 'shutting down');
    }
    const ep = this.ep;
    if (ep !== undefined) {
      this.lastAddrs = ep.addr().directAddresses();
      await this.closeEndpoint(ep);
    }
    await this.acceptLoop;
    this.ep = undefined;
    this.log.info({ id: this.id }, 'transport closed');
  }

  /**
   * The endpoint's close, awaited for at most endpointCloseWaitMs. Our connections are closed by
   * now and their close frames sent; what the endpoint still waits for is a peer's answer to them,
   * which never comes from a peer that is gone (about 3 s in the binding).
   */
  private async closeEndpoint(ep: Iroh.Endpoint): Promise<void> {
    const done = await closeEndpointWithin(ep, this.limits.endpointCloseWaitMs, (e) => this.log.warn({ err: errText(e) }, 'endpoint close failed'));
    if (!done) {
      this.log.info({ waitedMs: this.limits.endpointCloseWaitMs }, 'endpoint still closing (a peer gone already); not waiting for it');
    }
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const sameBytes = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
