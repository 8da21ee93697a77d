/**
 * Snapshot transfer between nodes, beside the raft message path. When a shard's core wants a
 * follower to get a snapshot (it fell behind the compacted log, or joins), its worker hands the
 * router a SnapshotRequest; this module streams the data on a connection of its own (ALPN
 * `iroh-raft-snap/0`, the messages of src/wire/snapshot.ts) and the follower's node stages it in a
 * file, checks it and hands it to the follower's core, which installs it in one transaction.
 *
 * Sender: one transfer per (shard, follower) at a time and at most `sendsMax` at once; the data
 * comes from the worker piece by piece (one LMDB read transaction, so a consistent view at its
 * applied index, which may be later than the index the core asked for) and is deflated and
 * checksummed in the piscina pool; at most one piece is held, and bytes leave at most at
 * `bytesPerSecMax`. A transfer that fails (connection broken, sender or receiver restarted, a
 * checksum) is restarted from the beginning when the core asks again, after a backoff that grows
 * with each failure; a receiver that is busy says how long to wait.
 *
 * Receiver: at most `receivesMax` transfers at once and one per shard (more are answered Busy);
 * a stream must bring its offer within `offerTimeoutMs`, and at most `receivesMax` streams may be
 * waiting for theirs (more are closed at once), so streams that never offer cannot pile up;
 * only the leader named in the offer may send it (the connection's authenticated peer); each chunk
 * is inflated and its crc32 checked on arrival and appended to a staging file, never to the live
 * shard; End must match the chunk count, the byte total and the crc32 over everything, and only
 * then does the shard's core get the snapshot. Memory stays at one chunk whatever the size.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { CodecError, SnapAnswer, SnapMessageType, decodeSnapMessage, encodeSnapMessage, snapAnswerName } from '../wire/index.js';
import type { SnapMessage, SnapOffer } from '../wire/index.js';
import { assert } from '../shards/raft/index.js';
import type { LogIndex, NodeId, ShardId, SnapshotMetadata, Term } from '../shards/raft/index.js';
import type { SnapshotWish, StagedSnapshot } from '../shards/host.js';

/** What the transfers need of the worker pool (WorkerPool implements it). */
export interface SnapshotPool {
  snapshotOpen(shard: ShardId): Promise<{ stream: number; metadata: SnapshotMetadata } | undefined>;
  snapshotNext(shard: ShardId, stream: number, maxBytes: number): Promise<Uint8Array | undefined>;
  snapshotClose(shard: ShardId, stream: number): Promise<void>;
  snapshotOffer(shard: ShardId, index: LogIndex): Promise<'accept' | 'stale' | 'absent'>;
  snapshotInstall(shard: ShardId, staged: StagedSnapshot): Promise<'stepped' | 'absent' | 'bad'>;
  packSnapshotBytes(raw: Uint8Array): Promise<readonly { compressed: Uint8Array; length: number; crc32: number }[]>;
  unpackSnapshotChunk(chunk: { compressed: Uint8Array; rawLength: number; crc32: number }): Promise<Uint8Array>;
}

/** A snapshot stream (the transport's SnapStream implements it). */
export interface SnapshotStream {
  readonly peerId: string;
  write(body: Uint8Array): Promise<void>;
  read(timeoutMs: number): Promise<Uint8Array>;
  finish(): Promise<void>;
  /** Ends this half and waits (up to `timeoutMs`) for the peer to close, so a last answer arrives. */
  linger(timeoutMs: number): Promise<void>;
  close(reason: string): void;
}

export interface SnapshotLogger {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
}

export interface SnapshotOptions {
  readonly self: NodeId;
  readonly pool: SnapshotPool;
  /** Opens a stream to a member (Transport.openSnapshotStream). */
  readonly connect: (peerId: string) => Promise<SnapshotStream>;
  /** A member's endpoint id by raft node id. */
  readonly peerOf: (node: NodeId) => string | undefined;
  /** Where received snapshots are staged; emptied at start (what is left there is from a crash). */
  readonly stagingDir: string;
  /** Raw bytes read from the worker per piece (and per chunk). Default 1 MiB. */
  readonly chunkBytes?: number;
  /** Bytes per second one node sends at most, over all its transfers. Default 64 MiB. */
  readonly bytesPerSecMax?: number;
  /** Transfers this node sends at once. Default 2. */
  readonly sendsMax?: number;
  /** Transfers this node receives at once. Default 2. */
  readonly receivesMax?: number;
  /** A read that waits longer than this ends the transfer. Default 30 s. */
  readonly idleTimeoutMs?: number;
  /**
   * Time a received stream may take to bring its offer, in milliseconds (idleTimeoutMs when that
   * is shorter); past it the stream is closed without an answer. Default 5,000: a sender writes its offer as soon as the stream is
   * open, so it arrives within a round trip; the bound only has to cover a loaded node, and it
   * keeps a member that opens streams and says nothing from holding them for idleTimeoutMs.
   */
  readonly offerTimeoutMs?: number;
  /** Backoff after a failed transfer: `min(maxMs, initialMs * 2^(n-1))`, jittered to 50-100 %. Defaults 500 and 30,000. */
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  readonly log: SnapshotLogger;
}

/** Counts for metrics; monotonic. */
export interface SnapshotCounters {
  sent: number;
  sendFailures: number;
  /** Offers the receiver answered Busy (the sender waits as told). */
  sendBusy: number;
  /** Offers the receiver answered Stale: it already held that index. */
  sendStale: number;
  bytesSent: number;
  sendMs: number;
  received: number;
  receiveFailures: number;
  /** Offers this node answered Busy. */
  receiveBusy: number;
  /** Received streams closed without an offer: past offerTimeoutMs, or beyond receivesMax streams awaiting one. */
  receiveUnoffered: number;
  bytesReceived: number;
  receiveMs: number;
}

class SnapshotFailure extends Error {
  override readonly name = 'SnapshotFailure';
}

/** Waits for a snapshot's answer to End: installing reads the whole staged file once more. */
const INSTALL_TIMEOUT_MS = 120_000;

export class Snapshots {
  readonly counters: SnapshotCounters = {
    sent: 0,
    sendFailures: 0,
    sendBusy: 0,
    sendStale: 0,
    bytesSent: 0,
    sendMs: 0,
    received: 0,
    receiveFailures: 0,
    receiveBusy: 0,
    receiveUnoffered: 0,
    bytesReceived: 0,
    receiveMs: 0,
  };
  private readonly chunkBytes: number;
  private readonly bytesPerSecMax: number;
  private readonly sendsMax: number;
  private readonly receivesMax: number;
  private readonly idleTimeoutMs: number;
  private readonly offerTimeoutMs: number;
  private readonly backoff: { initialMs: number; maxMs: number };
  /** Transfers being sent, by `shard:follower`. */
  private readonly sending = new Set<string>();
  /** Wishes waiting for a free sending slot, by `shard:follower` (the latest wins). */
  private readonly waiting = new Map<string, { shard: ShardId; wish: SnapshotWish }>();
  /** Per `shard:follower`: failures in a row and when the next attempt may start (Date.now ms). */
  private readonly retry = new Map<string, { failures: number; notBefore: number }>();
  /** Received streams whose offer has not arrived yet; at most receivesMax (accept closes the rest). */
  private awaitingOffer = 0;
  /** Shards being received. */
  private readonly receiving = new Set<ShardId>();
  /**
   * The stream of every transfer under way, either way, and the member at its other end; a
   * transfer's own finally removes it. {@link peerGone} closes those of a member that went away.
   */
  private readonly streams = new Map<SnapshotStream, NodeId>();
  /** Rate limit: bytes sent in the current window and when it started. */
  private window = { startMs: Date.now(), bytes: 0 };
  private closed = false;

  constructor(private readonly opts: SnapshotOptions) {
    this.chunkBytes = opts.chunkBytes ?? 1 << 20;
    this.bytesPerSecMax = opts.bytesPerSecMax ?? 64 << 20;
    this.sendsMax = opts.sendsMax ?? 2;
    this.receivesMax = opts.receivesMax ?? 2;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 30_000;
    this.offerTimeoutMs = opts.offerTimeoutMs ?? 5_000;
    this.backoff = { initialMs: opts.backoff?.initialMs ?? 500, maxMs: opts.backoff?.maxMs ?? 30_000 };
    rmSync(opts.stagingDir, { recursive: true, force: true });
    mkdirSync(opts.stagingDir, { recursive: true });
  }

  /** Whether a snapshot of `shard` is being sent from here, or waits for a sending slot. */
  sends(shard: ShardId): boolean {
    const prefix = `${shard}:`;
    for (const key of this.sending) if (key.startsWith(prefix)) return true;
    for (const key of this.waiting.keys()) if (key.startsWith(prefix)) return true;
    return false;
  }

  /** Transfers in progress, each way. */
  active(): { sending: number; receiving: number } {
    return { sending: this.sending.size, receiving: this.receiving.size };
  }

  /**
   * `node` went silent (liveness): its transfers end now, each way. A process killed without
   * closing its connections leaves them open here until QUIC's idle timeout (30 s), and until then
   * its transfers hold their slots: a receive holds its shard (the shard's new leader, or the
   * restarted sender, is answered Busy), a send holds its follower (the wishes of a restarted
   * follower's core are ignored). A transfer ended here fails as a broken one does; the next wish
   * starts it again.
   */
  peerGone(node: NodeId): void {
    for (const [stream, peer] of this.streams) if (peer === node) stream.close('snapshot peer gone');
  }

  /**
   * The member with endpoint `peerId` restarted (the transport saw a new incarnation): its
   * transfers from before end now, each way, as in {@link peerGone}. Needed besides liveness: a
   * restart quicker than the liveness timeout is never seen as silence.
   */
  peerRestarted(peerId: string): void {
    for (const stream of this.streams.keys()) if (stream.peerId === peerId) stream.close('snapshot peer restarted');
  }

  /** Stops starting transfers; running ones end at their next step. */
  close(): void {
    this.closed = true;
    this.waiting.clear();
  }

  // ---------------------------------------------------------------- sending

  /**
   * A core's wish (via its worker): ignored while the same transfer runs or backs off (the core
   * asks again every few election timeouts while the follower still needs it).
   */
  request(shard: ShardId, wish: SnapshotWish): void {
    if (this.closed) return;
    const key = `${shard}:${wish.to}`;
    if (this.sending.has(key)) return;
    const r = this.retry.get(key);
    if (r !== undefined && Date.now() < r.notBefore) return;
    this.waiting.set(key, { shard, wish });
    this.startWaiting();
  }

  private startWaiting(): void {
    for (const [key, w] of this.waiting) {
      if (this.sending.size >= this.sendsMax) return;
      this.waiting.delete(key);
      this.sending.add(key);
      void this.send(key, w.shard, w.wish).finally(() => {
        this.sending.delete(key);
        this.startWaiting();
      });
    }
  }

  private async send(key: string, shard: ShardId, wish: SnapshotWish): Promise<void> {
    const started = Date.now();
    const peerId = this.opts.peerOf(wish.to);
    if (peerId === undefined) return;
    let opened: { stream: number; metadata: SnapshotMetadata } | undefined;
    let stream: SnapshotStream | undefined;
    try {
      opened = await this.opts.pool.snapshotOpen(shard);
      if (opened === undefined) return; // The shard left this node.
      const m = opened.metadata;
      stream = await this.opts.connect(peerId);
      this.streams.set(stream, wish.to);
      await stream.write(
        encodeSnapMessage({
          type: SnapMessageType.Offer,
          shard,
          from: wish.from,
          to: wish.to,
          term: wish.term,
          index: m.index,
          indexTerm: m.term,
          voters: m.confState.voters,
          learners: m.confState.learners,
        }),
      );
      const answer = await this.readAnswer(stream, this.idleTimeoutMs);
      if (answer.answer === SnapAnswer.Busy) {
        this.counters.sendBusy++;
        this.retry.set(key, { failures: this.retry.get(key)?.failures ?? 0, notBefore: Date.now() + answer.retryAfterMs });
        return;
      }
      if (answer.answer === SnapAnswer.Stale) {
        this.counters.sendStale++;
        this.retry.delete(key);
        return;
      }
      if (answer.answer !== SnapAnswer.Accept) throw new SnapshotFailure(`offer answered ${snapAnswerName(answer.answer)}`);
      const sent = await this.sendChunks(shard, opened.stream, stream);
      await stream.write(encodeSnapMessage({ type: SnapMessageType.End, chunks: sent.chunks, rawBytes: sent.rawBytes, crc32: sent.crc }));
      const done = await this.readAnswer(stream, INSTALL_TIMEOUT_MS);
      if (done.answer !== SnapAnswer.Installed) throw new SnapshotFailure(`transfer answered ${snapAnswerName(done.answer)}`);
      this.counters.sent++;
      this.retry.delete(key);
      const ms = Date.now() - started;
      this.counters.sendMs += ms;
      this.opts.log.info({ shard, to: wish.to, index: m.index, bytes: sent.rawBytes, chunks: sent.chunks, ms }, 'snapshot sent');
    } catch (e) {
      this.counters.sendFailures++;
      const failures = (this.retry.get(key)?.failures ?? 0) + 1;
      const delay = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** (failures - 1)) * (0.5 + Math.random() / 2);
      this.retry.set(key, { failures, notBefore: Date.now() + delay });
      this.opts.log.warn({ shard, to: wish.to, failures, retryInMs: Math.round(delay), err: errText(e) }, 'snapshot transfer failed');
    } finally {
      if (opened !== undefined) await this.opts.pool.snapshotClose(shard, opened.stream).catch(() => undefined);
      if (stream !== undefined) this.streams.delete(stream);
      stream?.close('snapshot transfer over');
    }
  }

  /** Streams every piece of the view: read, pack in the pool, pace, write; one piece held at a time. */
  private async sendChunks(shard: ShardId, reader: number, stream: SnapshotStream): Promise<{ chunks: number; rawBytes: number; crc: number }> {
    let chunks = 0;
    let rawBytes = 0;
    let crc = 0;
    for (;;) {
      if (this.closed) throw new SnapshotFailure('node stopping');
      const piece = await this.opts.pool.snapshotNext(shard, reader, this.chunkBytes);
      if (piece === undefined) return { chunks, rawBytes, crc };
      crc = crc32(piece, crc);
      rawBytes += piece.length;
      for (const c of await this.opts.pool.packSnapshotBytes(piece)) {
        await this.pace(c.compressed.length);
        const body = encodeSnapMessage({ type: SnapMessageType.Chunk, index: chunks, rawLength: c.length, crc32: c.crc32, compressed: c.compressed });
        await stream.write(body);
        this.counters.bytesSent += body.length;
        chunks++;
      }
    }
  }

  /** Waits until `bytes` more stay within bytesPerSecMax over one-second windows. */
  private async pace(bytes: number): Promise<void> {
    for (;;) {
      const now = Date.now();
      if (now - this.window.startMs >= 1000) this.window = { startMs: now, bytes: 0 };
      if (this.window.bytes === 0 || this.window.bytes + bytes <= this.bytesPerSecMax) {
        this.window.bytes += bytes;
        return;
      }
      await new Promise((r) => setTimeout(r, this.window.startMs + 1000 - now));
    }
  }

  private async readAnswer(stream: SnapshotStream, timeoutMs: number): Promise<{ answer: number; retryAfterMs: number }> {
    const m = decodeSnapMessage(await stream.read(timeoutMs));
    if (m.type !== SnapMessageType.Answer) throw new SnapshotFailure(`expected an answer, got message type ${m.type}`);
    return m;
  }

  // ---------------------------------------------------------------- receiving

  /**
   * A member opened a snapshot stream to this node; this owns it until it ends. Closed at once
   * (counted in receiveUnoffered) when receivesMax streams already wait for their offer.
   */
  accept(stream: SnapshotStream): void {
    if (this.awaitingOffer >= this.receivesMax) {
      this.counters.receiveUnoffered++;
      this.opts.log.warn({ peer: stream.peerId, awaitingOffer: this.awaitingOffer }, 'snapshot stream refused: too many awaiting an offer');
      stream.close('too many snapshot streams awaiting an offer');
      return;
    }
    this.awaitingOffer++;
    void this.receive(stream);
  }

  /** The stream's first message, which must come within offerTimeoutMs; it leaves the awaiting count either way. */
  private async readOffer(stream: SnapshotStream): Promise<SnapOffer> {
    let body: Uint8Array;
    try {
      body = await stream.read(Math.min(this.offerTimeoutMs, this.idleTimeoutMs));
    } catch (e) {
      this.counters.receiveUnoffered++;
      throw e;
    } finally {
      this.awaitingOffer--;
      assert(this.awaitingOffer >= 0, 'awaitingOffer went below zero');
    }
    const first = decodeSnapMessage(body);
    if (first.type !== SnapMessageType.Offer) throw new SnapshotFailure(`a snapshot stream starts with an offer, got message type ${first.type}`);
    return first;
  }

  private async receive(stream: SnapshotStream): Promise<void> {
    const started = Date.now();
    let offer: SnapOffer | undefined;
    let path: string | undefined;
    let file: FileHandle | undefined;
    let mine = false;
    let answered = true;
    try {
      offer = await this.readOffer(stream);
      const shard = offer.shard as ShardId;
      this.streams.set(stream, offer.from as NodeId);
      // Only the leader the offer names may send it: the connection's authenticated peer.
      if (offer.to !== this.opts.self || this.opts.peerOf(offer.from as NodeId) !== stream.peerId) {
        await this.answer(stream, SnapAnswer.Refused);
        return;
      }
      if (this.closed || this.receiving.size >= this.receivesMax || this.receiving.has(shard)) {
        this.counters.receiveBusy++;
        await this.answer(stream, SnapAnswer.Busy, 1000);
        return;
      }
      this.receiving.add(shard);
      mine = true;
      const verdict = await this.opts.pool.snapshotOffer(shard, offer.index as LogIndex);
      if (verdict !== 'accept') {
        await this.answer(stream, verdict === 'stale' ? SnapAnswer.Stale : SnapAnswer.Refused);
        return;
      }
      await this.answer(stream, SnapAnswer.Accept);
      path = join(this.opts.stagingDir, `s${shard}-t${offer.term}-i${offer.index}-${randomBytes(4).toString('hex')}.dump`);
      file = await open(path, 'w');
      const bytes = await this.receiveChunks(stream, file);
      await file.sync();
      await file.close();
      file = undefined;
      const metadata: SnapshotMetadata = {
        index: offer.index as LogIndex,
        term: offer.indexTerm as Term,
        confState: { voters: offer.voters as NodeId[], learners: offer.learners as NodeId[] },
      };
      const result = await this.opts.pool.snapshotInstall(shard, { from: offer.from as NodeId, term: offer.term as Term, metadata, path });
      path = undefined; // The worker owns the file now (it deletes it).
      if (result !== 'stepped') throw new SnapshotFailure(`install answered ${result}`, { cause: SnapAnswer.BadStream });
      await this.answer(stream, SnapAnswer.Installed);
      this.counters.received++;
      const ms = Date.now() - started;
      this.counters.receiveMs += ms;
      this.opts.log.info({ shard, from: offer.from, index: offer.index, bytes, ms }, 'snapshot received');
    } catch (e) {
      this.counters.receiveFailures++;
      this.opts.log.warn({ shard: offer?.shard, from: offer?.from, err: errText(e) }, 'snapshot receive failed');
      const code = e instanceof SnapshotFailure && typeof e.cause === 'number' ? e.cause : e instanceof CodecError ? SnapAnswer.BadStream : undefined;
      if (code !== undefined) await this.answer(stream, code as SnapAnswer).catch(() => undefined);
      else answered = false;
    } finally {
      if (file !== undefined) await file.close().catch(() => undefined);
      if (path !== undefined) rmSync(path, { force: true });
      if (mine && offer !== undefined) this.receiving.delete(offer.shard as ShardId);
      this.streams.delete(stream);
      // Lingering only lets a last answer arrive; a stream that never offered gets none.
      if (offer === undefined && !answered) stream.close('no snapshot offer');
      else await stream.linger(5000);
    }
  }

  /** Reads chunks into `file` until End, checking each chunk and then the whole; returns the raw bytes. */
  private async receiveChunks(stream: SnapshotStream, file: FileHandle): Promise<number> {
    let chunks = 0;
    let rawBytes = 0;
    let crc = 0;
    for (;;) {
      const body = await stream.read(this.idleTimeoutMs);
      this.counters.bytesReceived += body.length;
      const m: SnapMessage = decodeSnapMessage(body);
      if (m.type === SnapMessageType.End) {
        if (m.chunks !== chunks || m.rawBytes !== rawBytes || m.crc32 !== crc) {
          throw new SnapshotFailure(`end says ${m.chunks} chunks, ${m.rawBytes} bytes, crc ${m.crc32}; got ${chunks}, ${rawBytes}, ${crc}`, {
            cause: SnapAnswer.ChecksumMismatch,
          });
        }
        return rawBytes;
      }
      if (m.type !== SnapMessageType.Chunk || m.index !== chunks) {
        throw new SnapshotFailure(`expected chunk ${chunks}, got message type ${m.type}`, { cause: SnapAnswer.BadStream });
      }
      let raw: Uint8Array;
      try {
        raw = await this.opts.pool.unpackSnapshotChunk({ compressed: m.compressed, rawLength: m.rawLength, crc32: m.crc32 });
      } catch (e) {
        throw new SnapshotFailure(`chunk ${chunks}: ${errText(e)}`, { cause: SnapAnswer.ChecksumMismatch });
      }
      crc = crc32(raw, crc);
      rawBytes += raw.length;
      chunks++;
      await file.write(raw);
    }
  }

  private async answer(stream: SnapshotStream, answer: SnapAnswer, retryAfterMs = 0): Promise<void> {
    await stream.write(encodeSnapMessage({ type: SnapMessageType.Answer, answer, retryAfterMs }));
  }
}

/** Files left in a staging directory (for tests: none once transfers end). */
export function stagedFiles(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

const errText = (e: unknown): string => (e instanceof Error ? e.message.split('\n')[0]! : String(e));
