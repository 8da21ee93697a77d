/**
 * Address exchange between members over `iroh-raft-discovery/0` (wire.ts has the message,
 * book.ts the rules). One exchange is one short connection with one bidirectional stream: the
 * dialer writes its announcement frame and finishes its half; the member it reached checks the
 * frame, applies it, answers with its own announcement and finishes; the dialer applies the
 * answer and closes the connection. Both sides learn from one round trip.
 *
 * When: at start to every member (at the addresses the book knows: stored, claimed or from the
 * ticket), then every `intervalMs` with jitter (0: only at start), to a peer that restarted (a new
 * incarnation reached the raft transport), and to a member named by a gossip hint with a higher
 * generation than known, at the hinted addresses (once per member and generation). Cost per
 * round: one connection per other member, a message of at most DISC_BODY_BYTES_MAX bytes each way.
 *
 * Refusals, none of which changes the book: a stranger's connection is closed at once with close
 * code NotMember (2), counted as `strangers`; over `connectionsMax` open exchanges, closed with
 * ShuttingDown (4), counted as `busy`; a frame that is not an announcement (garbage, truncated,
 * oversize length, wrong shape, bytes after it) closes the connection with ProtocolError (1),
 * counted as `badFrames`; a stale generation is ignored and counted as `stale`.
 */
import type * as Iroh from '@number0/iroh/index.js';
import { TransportError, errText, noopLogger } from '../transport/errors.js';
import type { TransportLogger } from '../transport/errors.js';
import { withDeadline } from '../transport/handshake.js';
import { CloseCode } from '../transport/hello.js';
import { closeQuietly } from '../transport/link.js';
import type { AddressBook, MemberAddrs, StoredPeers, Verdict } from './book.js';
import { DISC_BODY_BYTES_MAX, DiscoveryWireError, LENGTH_BYTES, decodeAnnouncement, encodeFrame } from './wire.js';
import type { Announcement } from './wire.js';

/** Tries of the exchange with each member at start. */
const START_TRIES = 5;

export interface DiscoveryOptions {
  readonly book: AddressBook;
  /** This node's direct addresses now (canonical `ip:port`). */
  readonly selfAddrs: () => readonly string[];
  /**
   * Connects to member `peerId` at `addrs` with the discovery ALPN, checking that the endpoint
   * reached is `peerId` (the transport's `connect`).
   */
  readonly connect: (peerId: string, addrs: readonly string[]) => Promise<Iroh.Connection>;
  /** `peerId`'s addresses changed in the book: dial it there from now on. */
  readonly onLearned: (peerId: string) => void;
  /** The book changed: keep `stored` (atomically); a throw is logged and the node carries on. */
  readonly persist: (stored: StoredPeers) => void;
  /** Between rounds of exchanges with every member, in ms, jittered to 75-125 %; 0: only at start. Default 30,000. */
  readonly intervalMs?: number;
  /** Time one exchange may take, dial included, in ms. Default 5,000. */
  readonly timeoutMs?: number;
  /** Exchanges served at once; one more connection is closed at once. Default 32. */
  readonly connectionsMax?: number;
  readonly logger?: TransportLogger;
  /** Epoch ms. Default Date.now. */
  readonly now?: () => number;
}

/** What discovery has done so far (for metrics, status and tests). */
export interface DiscoveryCounters {
  /** Exchanges completed, either side. */
  exchanges: number;
  /** Exchanges this node started that failed: unreachable, timed out, or answered with a bad frame. */
  exchangeFailures: number;
  /** Connections from endpoints that are not members, closed at once. */
  strangers: number;
  /** Connections closed at once over connectionsMax or while stopping. */
  busy: number;
  /** Frames refused: garbage, truncated, oversize length, wrong shape, bytes after the frame. */
  badFrames: number;
  /** Members' own claims, by outcome (book.ts). */
  learned: number;
  unchanged: number;
  stale: number;
  conflicts: number;
  /** Gossip hints probed (a dial to the hinted member). */
  hintsProbed: number;
  /** Claims about this node that moved its generation up. */
  refuted: number;
  /** Gossip entries naming no member, ignored. */
  unknownGossip: number;
}

export class Discovery {
  readonly counters: DiscoveryCounters = {
    exchanges: 0,
    exchangeFailures: 0,
    strangers: 0,
    busy: 0,
    badFrames: 0,
    learned: 0,
    unchanged: 0,
    stale: 0,
    conflicts: 0,
    hintsProbed: 0,
    refuted: 0,
    unknownGossip: 0,
  };
  private readonly book: AddressBook;
  private readonly log: TransportLogger;
  private readonly now: () => number;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly connectionsMax: number;
  /** Exchanges being served now; at most connectionsMax. */
  private serving = 0;
  /** Exchanges this node started, per member: one at a time each. */
  private readonly dialing = new Set<string>();
  /** Per member, the highest hinted generation probed already, so a repeated hint costs nothing. */
  private readonly probed = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  /** A round to every member after this node's generation moved to refute a claim; at most one per second. */
  private reannounceTimer: NodeJS.Timeout | undefined;
  private lastReannounceMs = 0;
  private closing = false;

  constructor(private readonly opts: DiscoveryOptions) {
    this.book = opts.book;
    this.log = opts.logger ?? noopLogger;
    this.now = opts.now ?? Date.now;
    this.intervalMs = opts.intervalMs ?? 30_000;
    this.timeoutMs = opts.timeoutMs ?? 5_000;
    this.connectionsMax = opts.connectionsMax ?? 32;
  }

  /**
   * Persists the generation this run announces under, then exchanges with every member now
   * (retried a few times: a member starting at the same moment may not take exchanges yet) and
   * every intervalMs.
   */
  start(): void {
    this.save();
    for (const id of this.book.members()) void this.announceAtStart(id);
    this.schedule();
  }

  /** Exchanges with every member now (skipping one already in progress). */
  round(): void {
    for (const id of this.book.members()) void this.exchange(id);
    this.schedule();
  }

  private schedule(): void {
    if (this.intervalMs > 0 && !this.closing) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.round(), this.intervalMs * (0.75 + Math.random() / 2));
      this.timer.unref();
    }
  }

  /** One exchange with `id`, tried up to START_TRIES times, 0.5 s, 1 s, 2 s... apart. */
  private async announceAtStart(id: string): Promise<void> {
    for (let i = 0; i < START_TRIES && !this.closing; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 500 * 2 ** (i - 1)).unref());
      if (await this.exchange(id)) return;
    }
  }

  /**
   * The members changed (src/io/discovery/book.ts setMembers): each new one is dialed at the
   * addresses it came with and an exchange starts with it at once.
   */
  setMembers(members: readonly { readonly id: string; readonly addrs: readonly string[] }[]): void {
    for (const id of this.book.setMembers(members)) {
      this.opts.onLearned(id);
      if (!this.closing) void this.announceAtStart(id);
    }
  }

  /** Stops the rounds; exchanges in flight end by their deadline. */
  close(): void {
    this.closing = true;
    clearTimeout(this.timer);
    clearTimeout(this.reannounceTimer);
  }

  /** Status: this node's generation and addresses, every member's known addresses, the counters. */
  status(): { generation: number; addrs: readonly string[]; members: MemberAddrs[]; counters: DiscoveryCounters } {
    return { generation: this.book.generation, addrs: this.opts.selfAddrs(), members: this.book.view(), counters: { ...this.counters } };
  }

  /** Takes a connection made with the discovery ALPN; `peerId` is its authenticated endpoint id. */
  accept(conn: Iroh.Connection, peerId: string): void {
    if (!this.book.has(peerId)) {
      this.counters.strangers++;
      this.log.warn({ peer: peerId }, 'discovery: refused a connection from a non-member');
      closeQuietly(conn, CloseCode.NotMember, 'not a member');
      return;
    }
    if (this.closing || this.serving >= this.connectionsMax) {
      this.counters.busy++;
      closeQuietly(conn, CloseCode.ShuttingDown, this.closing ? 'shutting down' : 'too many discovery exchanges');
      return;
    }
    this.serving++;
    void this.serve(conn, peerId).finally(() => this.serving--);
  }

  /**
   * One exchange with member `peerId` at `addrs` (default: where the book would dial it). Resolves
   * true when it completed; failures are counted and logged, never thrown.
   */
  async exchange(peerId: string, addrs?: readonly string[]): Promise<boolean> {
    if (this.closing || this.dialing.has(peerId) || !this.book.has(peerId)) return false;
    const to = addrs ?? this.book.dialAddrs(peerId);
    if (to.length === 0) return false;
    this.dialing.add(peerId);
    const deadline = this.now() + this.timeoutMs;
    let conn: Iroh.Connection | undefined;
    try {
      conn = await withDeadline(this.opts.connect(peerId, to), deadline, 'connect');
      const bi = await withDeadline(conn.openBi(), deadline, 'open stream');
      await withDeadline(bi.send.writeAll(toArray(encodeFrame(this.announcement()))), deadline, 'announce');
      await withDeadline(bi.send.finish(), deadline, 'announce');
      this.apply(peerId, await readAnnouncement(bi.recv, deadline));
      this.counters.exchanges++;
      return true;
    } catch (e) {
      this.counters.exchangeFailures++;
      if (e instanceof DiscoveryWireError) this.counters.badFrames++;
      this.log.info({ peer: peerId, addrs: to, err: errText(e) }, 'discovery: exchange failed');
      return false;
    } finally {
      this.dialing.delete(peerId);
      if (conn !== undefined) closeQuietly(conn, CloseCode.Normal, 'done');
    }
  }

  private async serve(conn: Iroh.Connection, peerId: string): Promise<void> {
    const deadline = this.now() + this.timeoutMs;
    try {
      const bi = await withDeadline(conn.acceptBi(), deadline, 'stream');
      this.apply(peerId, await readAnnouncement(bi.recv, deadline));
      await withDeadline(bi.send.writeAll(toArray(encodeFrame(this.announcement()))), deadline, 'answer');
      await withDeadline(bi.send.finish(), deadline, 'answer');
      this.counters.exchanges++;
      // The dialer closes once it has read the answer; closing first could lose it in flight.
      await withDeadline(conn.closed(), deadline, 'close').catch(() => undefined);
      closeQuietly(conn, CloseCode.Normal, 'done');
    } catch (e) {
      if (e instanceof DiscoveryWireError) {
        this.counters.badFrames++;
        this.log.warn({ peer: peerId, err: e.message }, 'discovery: refused a bad frame');
        closeQuietly(conn, CloseCode.ProtocolError, e.message);
      } else {
        this.log.info({ peer: peerId, err: errText(e) }, 'discovery: inbound exchange failed');
        closeQuietly(conn, CloseCode.Normal, errText(e));
      }
    }
  }

  /** This node's announcement now; a change of its own addresses moves its generation (persisted). */
  private announcement(): Announcement {
    const { announcement, changed } = this.book.announce(this.opts.selfAddrs());
    if (changed) this.save();
    return announcement;
  }

  /** Applies a whole, valid announcement from member `from` (its own claim, then its gossip). */
  private apply(from: string, a: Announcement): void {
    const verdict: Verdict = this.book.applyOwn(from, a.self, this.now());
    this.counters[verdict === 'conflict' ? 'conflicts' : verdict]++;
    if (verdict === 'learned') this.log.info({ peer: from, addrs: a.self.addrs, generation: a.self.generation }, 'discovery: member addresses learned');
    const g = this.book.applyGossip(from, a.gossip);
    this.counters.unknownGossip += g.unknown;
    if (g.refuted) {
      this.counters.refuted++;
      this.log.info({ from, generation: this.book.generation }, 'discovery: a claim about this node was newer: generation moved above it');
      this.reannounce();
    }
    if (verdict === 'learned' || g.refuted) this.save();
    if (verdict === 'learned') this.opts.onLearned(from);
    for (const h of g.hints) {
      if ((this.probed.get(h.id) ?? 0) >= h.generation) continue;
      this.probed.set(h.id, h.generation);
      this.counters.hintsProbed++;
      void this.exchange(h.id, h.addrs);
    }
  }

  /**
   * Members that hold a newer claim about this node than its own (its peers.json was lost, or the
   * clock went back) ignored what it just said: tell every member again under the new generation,
   * soon, at most once per second however often it happens.
   */
  private reannounce(): void {
    if (this.reannounceTimer !== undefined || this.closing) return;
    const wait = Math.max(0, this.lastReannounceMs + 1_000 - this.now());
    this.reannounceTimer = setTimeout(() => {
      this.reannounceTimer = undefined;
      this.lastReannounceMs = this.now();
      for (const id of this.book.members()) void this.exchange(id);
    }, wait);
    this.reannounceTimer.unref();
  }

  private save(): void {
    try {
      this.opts.persist(this.book.stored());
    } catch (e) {
      this.log.error({ err: errText(e) }, 'discovery: could not persist known addresses');
    }
  }
}

/**
 * One frame from `recv`, which must then end. DiscoveryWireError for a frame that is not an
 * announcement (a length above DISC_BODY_BYTES_MAX is refused unread); TransportError
 * `DialTimeout` past `deadline`.
 */
async function readAnnouncement(recv: Iroh.RecvStream, deadline: number): Promise<Announcement> {
  const head = await readExact(recv, LENGTH_BYTES, deadline);
  const len = new DataView(head.buffer).getUint32(0, true);
  if (len > DISC_BODY_BYTES_MAX) throw new DiscoveryWireError(`frame of ${len} bytes exceeds ${DISC_BODY_BYTES_MAX}`);
  const body = await readExact(recv, len, deadline);
  const more = await withDeadline(recv.read(1), deadline, 'end of stream');
  if (more.length > 0) throw new DiscoveryWireError('bytes after the frame');
  return decodeAnnouncement(body);
}

async function readExact(recv: Iroh.RecvStream, n: number, deadline: number): Promise<Uint8Array> {
  if (n === 0) return new Uint8Array(0);
  try {
    return Uint8Array.from(await withDeadline(recv.readExact(n), deadline, 'frame'));
  } catch (e) {
    if (e instanceof TransportError) throw e;
    throw new DiscoveryWireError(`the stream ended inside the frame (${errText(e)})`);
  }
}

function toArray(b: Uint8Array): number[] {
  return Array.from(b);
}
