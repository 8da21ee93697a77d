/**
 * The node's side of the management ALPN (frame.ts has the wire, ops.ts the operations and who
 * may call them). The transport hands over every connection made with `iroh-raft-mgmt/0`; this
 * server owns it from then on.
 *
 * Bounds, each named in {@link MgmtLimits}: connections per node (beyond: closed at once),
 * concurrent streams per connection (beyond: answered `Overloaded` without reading the request),
 * a request's size (beyond: `PayloadTooLarge`, its body never read), a reply's size (beyond:
 * `ReplyTooLarge` instead), a deadline per request covering reading, running and answering
 * (beyond: `Timeout`; a write may still apply, as over HTTP), and an idle time after which a
 * connection with no stream open is closed, so idle callers cannot hold every connection.
 *
 * Checks, in order: the frame (length, msgpack, shape: `BadRequest`), then who asks (no role and
 * not a member: `Forbidden` whatever the op, so a stranger learns nothing), the op (`NotFound`),
 * the role (`Forbidden`), the args (`BadRequest`, `InvalidTenant`). A refused request changes
 * nothing. A throw from an op is a bug: logged, answered `Internal`, and the node carries on.
 */
import type * as Iroh from '@number0/iroh/index.js';
import { ServiceErrorCode, isInviteSecret, isServiceErrorCode } from '../../api/index.js';
import type { Failure, Result } from '../../api/index.js';
import { TransportError, errText, noopLogger } from '../transport/errors.js';
import type { TransportLogger } from '../transport/errors.js';
import { withDeadline } from '../transport/handshake.js';
import { CloseCode } from '../transport/hello.js';
import { closeQuietly } from '../transport/link.js';
import { LENGTH_BYTES, asRequest, decodeBody, encodeFrame, frameLength, fromArray, toArray } from './frame.js';
import type { MgmtReply } from './frame.js';
import { allowed, isMgmtOp, runOp, strangerMay } from './ops.js';
import type { Caller, MgmtServices } from './ops.js';

/** The server's bounds. */
export interface MgmtLimits {
  /** Largest request body (after the length prefix), in bytes. Default 64 KiB. */
  readonly requestBytesMax: number;
  /** Largest reply body, in bytes; a larger answer becomes `ReplyTooLarge`. Default 4 MiB. */
  readonly replyBytesMax: number;
  /** Time from a stream's arrival to its reply, in ms. Default 10,000. */
  readonly requestTimeoutMs: number;
  /** Requests served at once on one connection. Default 8. */
  readonly streamsPerConnectionMax: number;
  /** Management connections open at once on this node. Default 64. */
  readonly connectionsMax: number;
  /** A connection with no stream open for this long is closed, in ms. Default 30,000. */
  readonly connectionIdleMs: number;
}

export const MGMT_LIMITS_DEFAULT: MgmtLimits = {
  requestBytesMax: 64 * 1024,
  replyBytesMax: 4 << 20,
  requestTimeoutMs: 10_000,
  streamsPerConnectionMax: 8,
  connectionsMax: 64,
  connectionIdleMs: 30_000,
};

export interface MgmtServerOptions {
  readonly services: MgmtServices;
  readonly limits?: Partial<MgmtLimits>;
  readonly logger?: TransportLogger;
}

/** What the server has done so far (for metrics and tests). */
export interface MgmtCounters {
  connections: number;
  /** Connections closed at once: over connectionsMax, or the server closing. */
  connectionsRefused: number;
  requests: number;
  /** Requests answered with an error, by code. */
  errors: Record<string, number>;
}

/** Thrown inside a request to answer it with `code`. */
class Refused extends Error {
  constructor(
    readonly code: ServiceErrorCode,
    message: string,
  ) {
    super(message);
  }
}

interface Conn {
  readonly conn: Iroh.Connection;
  readonly peerId: string;
  /** Streams being served now; at most streamsPerConnectionMax. */
  active: number;
  idleTimer: NodeJS.Timeout | undefined;
}

export class MgmtServer {
  readonly limits: MgmtLimits;
  readonly counters: MgmtCounters = { connections: 0, connectionsRefused: 0, requests: 0, errors: {} };
  private readonly services: MgmtServices;
  private readonly log: TransportLogger;
  /** Open connections; at most limits.connectionsMax. */
  private readonly conns = new Set<Conn>();
  private closing = false;

  constructor(opts: MgmtServerOptions) {
    this.limits = checkLimits({ ...MGMT_LIMITS_DEFAULT, ...(opts.limits ?? {}) });
    this.services = opts.services;
    this.log = opts.logger ?? noopLogger;
  }

  /** Takes a connection made with the management ALPN; `peerId` is its authenticated endpoint id. */
  accept(conn: Iroh.Connection, peerId: string): void {
    if (this.closing || this.conns.size >= this.limits.connectionsMax) {
      this.counters.connectionsRefused++;
      this.log.info({ peer: peerId, open: this.conns.size }, 'management connection refused: too many open');
      closeQuietly(conn, CloseCode.ShuttingDown, this.closing ? 'shutting down' : 'too many management connections');
      return;
    }
    const c: Conn = { conn, peerId, active: 0, idleTimer: undefined };
    this.conns.add(c);
    this.counters.connections++;
    try {
      // QUIC itself holds the caller to a few streams beyond what is served, so a flood of
      // streams costs at most that many quick Overloaded answers at a time.
      conn.setMaxConcurrentBiStreams(BigInt(2 * this.limits.streamsPerConnectionMax));
    } catch {
      // Closed already: acceptStreams ends at once.
    }
    this.armIdle(c);
    void this.acceptStreams(c);
  }

  /** Open connections now. */
  get openConnections(): number {
    return this.conns.size;
  }

  /** Stops taking connections, lets requests in flight answer (up to `timeoutMs`), then closes every connection. */
  async close(timeoutMs = 2_000): Promise<void> {
    this.closing = true;
    const deadline = Date.now() + timeoutMs;
    while ([...this.conns].some((c) => c.active > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const c of [...this.conns]) {
      clearTimeout(c.idleTimer);
      closeQuietly(c.conn, CloseCode.ShuttingDown, 'shutting down');
      this.conns.delete(c);
    }
  }

  private armIdle(c: Conn): void {
    clearTimeout(c.idleTimer);
    c.idleTimer = setTimeout(() => {
      if (c.active === 0) closeQuietly(c.conn, CloseCode.Normal, 'idle');
    }, this.limits.connectionIdleMs);
    c.idleTimer.unref();
  }

  private async acceptStreams(c: Conn): Promise<void> {
    try {
      for (;;) {
        const bi = await c.conn.acceptBi();
        if (this.closing) break;
        if (c.active >= this.limits.streamsPerConnectionMax) {
          void this.answer(
            bi,
            refusal(ServiceErrorCode.Overloaded, `more than ${this.limits.streamsPerConnectionMax} requests at once on one connection`),
            Date.now() + this.limits.requestTimeoutMs,
          );
          continue;
        }
        c.active++;
        clearTimeout(c.idleTimer);
        void this.serveStream(c, bi).finally(() => {
          c.active--;
          if (c.active === 0 && this.conns.has(c)) this.armIdle(c);
        });
      }
    } catch {
      // The connection closed (by the caller, idle, or the node shutting down).
    } finally {
      clearTimeout(c.idleTimer);
      this.conns.delete(c);
    }
  }

  private async serveStream(c: Conn, bi: Iroh.BiStream): Promise<void> {
    const deadline = Date.now() + this.limits.requestTimeoutMs;
    this.counters.requests++;
    let reply: MgmtReply;
    try {
      reply = await withDeadline(this.handle(c, bi.recv, deadline), deadline, 'request');
    } catch (e) {
      reply =
        e instanceof Refused
          ? refusal(e.code, e.message)
          : e instanceof TransportError && e.code === 'DialTimeout'
            ? refusal(ServiceErrorCode.Timeout, `no answer within ${this.limits.requestTimeoutMs} ms (a change may still be applied)`)
            : this.bug(c, e);
    }
    await this.answer(bi, reply, deadline);
  }

  /** Reads, checks and runs one request. Throws Refused for a request it will not run. */
  private async handle(c: Conn, recv: Iroh.RecvStream, deadline: number): Promise<MgmtReply> {
    const head = await readExact(recv, LENGTH_BYTES, deadline);
    const len = frameLength(head);
    if (len > this.limits.requestBytesMax)
      throw new Refused(ServiceErrorCode.PayloadTooLarge, `a request is at most ${this.limits.requestBytesMax} bytes, this one says ${len}`);
    const decoded = decodeBody(await readExact(recv, len, deadline));
    if (decoded === undefined) throw new Refused(ServiceErrorCode.BadRequest, 'the request is not one msgpack value');
    const req = asRequest(decoded.value);
    if (typeof req === 'string') throw new Refused(ServiceErrorCode.BadRequest, req);
    const caller = await this.caller(c.peerId);
    // A stranger may ask what the cluster says of itself (members.self); to join while joins are
    // open (auth off), or with an invite at any time (members.join checks the invite in the same
    // change that admits it); nothing else.
    const open = this.services.joinOpen || (req.op === 'members.join' && hasInvite(req.args));
    const stranger = caller.role === undefined && !caller.member;
    if (stranger && !strangerMay(req.op, open)) throw new Refused(ServiceErrorCode.Forbidden, `endpoint ${c.peerId} has no role on this cluster`);
    if (!isMgmtOp(req.op)) throw new Refused(ServiceErrorCode.NotFound, `no op ${JSON.stringify(req.op)}`);
    if (!allowed(req.op, caller, open)) throw new Refused(ServiceErrorCode.Forbidden, `op ${req.op} is not allowed to role ${caller.role ?? '(member)'}`);
    return toReply(await runOp(req.op, req.args, this.services, caller));
  }

  private async caller(endpointId: string): Promise<Caller> {
    const r = await this.services.roles.roleOf(endpointId);
    if (!r.ok) throw new Refused(isServiceErrorCode(r.code) ? r.code : ServiceErrorCode.Internal, r.message);
    return { endpointId, role: r.value, member: this.services.isMember(endpointId) };
  }

  private bug(c: Conn, e: unknown): MgmtReply {
    this.log.error({ peer: c.peerId, err: errText(e) }, 'management request failed (a bug)');
    return refusal(ServiceErrorCode.Internal, 'internal error');
  }

  /** Writes the reply (ReplyTooLarge instead of one past the limit) and ends the stream. */
  private async answer(bi: Iroh.BiStream, reply: MgmtReply, deadline: number): Promise<void> {
    let frame: Uint8Array;
    try {
      frame = encodeFrame(reply);
    } catch (e) {
      frame = encodeFrame(refusal(ServiceErrorCode.Internal, `the reply cannot be encoded: ${errText(e)}`));
    }
    if (frame.length - LENGTH_BYTES > this.limits.replyBytesMax) {
      reply = refusal(ServiceErrorCode.ReplyTooLarge, `the reply is ${frame.length - LENGTH_BYTES} bytes, more than ${this.limits.replyBytesMax}`);
      frame = encodeFrame(reply);
    }
    if (!reply.ok) this.counters.errors[reply.error.code] = (this.counters.errors[reply.error.code] ?? 0) + 1;
    try {
      await withDeadline(bi.send.writeAll(toArray(frame)), deadline + 1_000, 'reply');
      await withDeadline(bi.send.finish(), deadline + 1_000, 'reply');
    } catch {
      // The caller went away; nothing to tell it.
    }
    bi.recv.stop(0n).catch(() => undefined);
  }
}

function refusal(code: ServiceErrorCode, message: string): MgmtReply {
  return { ok: false, error: { code, message } };
}

function toReply(r: Result<unknown>): MgmtReply {
  if (r.ok) return { ok: true, result: r.value };
  const f: Failure = r;
  return refusal(isServiceErrorCode(f.code) ? f.code : ServiceErrorCode.Internal, f.message);
}

/** `n` bytes by `deadline`; Refused BadRequest when the stream ends first. */
async function readExact(recv: Iroh.RecvStream, n: number, deadline: number): Promise<Uint8Array> {
  if (n === 0) return new Uint8Array(0);
  try {
    return fromArray(await withDeadline(recv.readExact(n), deadline, 'request'));
  } catch (e) {
    if (e instanceof TransportError) throw e;
    throw new Refused(ServiceErrorCode.BadRequest, `the request ended early (${errText(e)})`);
  }
}

function checkLimits(l: MgmtLimits): MgmtLimits {
  for (const [k, v] of Object.entries(l)) {
    if (!(Number.isSafeInteger(v) && (v as number) > 0))
      throw new TransportError('InvalidConfig', `mgmt limit ${k} must be a positive integer, got ${String(v)}`);
  }
  return l;
}

/** Whether `args` carry an invite's secret (its shape; the op checks it is a live invite). */
function hasInvite(args: unknown): boolean {
  return typeof args === 'object' && args !== null && isInviteSecret((args as { invite?: unknown }).invite);
}
