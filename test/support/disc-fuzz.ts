/**
 * Seeded frames for fuzzing the discovery ALPN (`iroh-raft-discovery/0`, src/io/discovery/wire.ts),
 * and a speaker that writes bytes on a discovery stream to a node with a key of its choosing. The
 * same seed gives the same cases, so a failure replays from its printed seed.
 *
 * Kinds: random garbage (sometimes behind a right magic); a valid frame cut short; a length prefix
 * past DISC_BODY_BYTES_MAX; a valid body broken by one rule (`shape`); a valid frame whose own
 * claim is older than the one the node holds (`stale`), or as old with other addresses
 * (`conflict`); two frames on one stream; and replays of frames sent before. Their gossip names
 * other members at generations below and above what the node knows. None of them may change what
 * the node knows; every address is on 127.0.0.1.
 */
import { Buffer } from 'node:buffer';
import type * as Iroh from '@number0/iroh/index.js';
import { DISC_ALPN_BYTES, DISC_BODY_BYTES_MAX, decodeAnnouncement, encodeAnnouncement } from '../../src/io/discovery/index.js';
import type { AddrClaim, Announcement } from '../../src/io/discovery/index.js';
import type { PeerAddr } from '../../src/io/ticket.js';
import { withDeadline } from '../../src/io/transport/handshake.js';
import { iroh } from '../../src/io/transport/iroh.js';
import { Prng } from '../../src/shards/raft/prng.js';

export type DiscFuzzKind = 'garbage' | 'truncated' | 'oversize' | 'shape' | 'stale' | 'conflict' | 'twoFrames' | 'replay';
export const DISC_FUZZ_KINDS: readonly DiscFuzzKind[] = ['garbage', 'truncated', 'oversize', 'shape', 'stale', 'conflict', 'twoFrames', 'replay'];

export interface DiscFuzzCase {
  readonly kind: DiscFuzzKind;
  readonly bytes: Buffer;
}

/** `length u32 LE, body`. */
export function frame(body: Uint8Array): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32LE(body.length, 0);
  return Buffer.concat([head, body]);
}

export class DiscFuzz {
  private readonly rng: Prng;
  private readonly sent: Buffer[] = [];

  /**
   * `known`: the sender's claim as the node holds it now (stale frames go below or equal to its
   * generation); `others`: ids the gossip may name (never the node itself).
   */
  constructor(
    seed: number,
    private readonly known: AddrClaim,
    private readonly others: readonly string[],
  ) {
    this.rng = new Prng(seed);
  }

  next(): DiscFuzzCase {
    const kind = this.pick(DISC_FUZZ_KINDS);
    const bytes = this.make(kind);
    if (kind === 'stale' || kind === 'conflict') this.sent.push(bytes);
    return { kind, bytes };
  }

  private make(kind: DiscFuzzKind): Buffer {
    switch (kind) {
      case 'garbage': {
        const b = this.bytes(this.int(0, 300));
        if (b.length >= 11 && this.int(0, 1) === 0) {
          b.writeUInt32LE(b.length - 4, 0);
          b.set([0x49, 0x52, 0x44, 0x53, 1, 0], 4);
        }
        return b;
      }
      case 'truncated': {
        const whole = frame(encodeAnnouncement(this.staleAnnouncement()));
        return whole.subarray(0, this.int(0, whole.length - 1));
      }
      case 'oversize': {
        const head = Buffer.alloc(4);
        head.writeUInt32LE(this.int(DISC_BODY_BYTES_MAX + 1, 0xffffffff), 0);
        return Buffer.concat([head, this.bytes(this.int(0, 64))]);
      }
      case 'shape':
        return frame(this.broken());
      case 'stale':
        return frame(encodeAnnouncement(this.staleAnnouncement()));
      case 'conflict':
        return frame(encodeAnnouncement({ self: { generation: this.known.generation, addrs: this.otherAddrs() }, gossip: this.gossip() }));
      case 'twoFrames': {
        const f = frame(encodeAnnouncement(this.staleAnnouncement()));
        return Buffer.concat([f, f]);
      }
      case 'replay':
        return this.sent.length === 0 ? frame(encodeAnnouncement(this.staleAnnouncement())) : this.pick(this.sent);
    }
  }

  /** A valid body broken by exactly one rule. */
  private broken(): Buffer {
    const b = Buffer.from(encodeAnnouncement(this.staleAnnouncement()));
    switch (this.int(0, 7)) {
      case 0:
        b[0] = 0x58;
        return b;
      case 1:
        b[4] = this.int(2, 255);
        return b;
      case 2:
        b[5] = this.int(1, 255);
        return b;
      case 3:
        b[6] = this.int(65, 255);
        return b;
      case 4:
        return Buffer.concat([b, this.bytes(this.int(1, 9))]);
      case 5:
        return b.subarray(0, this.int(0, b.length - 1));
      case 6:
        b.fill(0, 7, 15);
        return b;
      default:
        b[15] = this.pick([0, 17, 255]);
        return b;
    }
  }

  private staleAnnouncement(): Announcement {
    const generation = this.int(1, Math.max(1, this.known.generation - 1));
    return { self: { generation, addrs: this.otherAddrs() }, gossip: this.gossip() };
  }

  private gossip(): Announcement['gossip'] {
    const ids = this.others.filter(() => this.int(0, 1) === 0);
    // Half of them outrank any real claim (a generation starts at the clock in ms): the node may
    // only probe the member named, never take the gossip's addresses on its word.
    return ids.map((id) => ({ id, generation: this.int(0, 1) === 0 ? this.int(1, 2 ** 40) : 2 ** 52 + this.int(0, 2 ** 20), addrs: this.otherAddrs() }));
  }

  /** 1-3 addresses on 127.0.0.1, none of them one of `known`'s. */
  private otherAddrs(): string[] {
    const out = new Set<string>();
    for (let n = this.int(1, 3); out.size < n;) {
      const a = `127.0.0.1:${this.int(1, 65535)}`;
      if (!this.known.addrs.includes(a)) out.add(a);
    }
    return [...out];
  }

  private bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.rng.nextU32() & 0xff;
    return b;
  }

  private int(lo: number, hi: number): number {
    return lo + Math.floor(this.rng.next() * (hi - lo + 1));
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[this.int(0, xs.length - 1)]!;
  }
}

/** What came back for one stream of bytes: the node's announcement, or nothing (and why the connection ended). */
export interface Spoken {
  readonly reply: Announcement | undefined;
  readonly closed: string;
}

/** An Iroh endpoint on 127.0.0.1 with a key of the test's choosing, speaking discovery by hand. */
export class DiscSpeaker {
  private constructor(private readonly ep: Iroh.Endpoint) {}

  static async bind(secretKey: Uint8Array): Promise<DiscSpeaker> {
    const b = iroh.Endpoint.builder();
    iroh.presetMinimal(b);
    b.relayMode(iroh.RelayMode.disabled());
    b.secretKey(Array.from(secretKey));
    b.bindAddr('127.0.0.1:0');
    return new DiscSpeaker(await b.bind());
  }

  get id(): string {
    return this.ep.id().toString();
  }

  /** Connects to `node`, writes `bytes` on one stream and finishes it, then reads one frame or the connection's end. */
  async speak(node: PeerAddr, bytes: Uint8Array, timeoutMs = 10_000): Promise<Spoken> {
    const deadline = Date.now() + timeoutMs;
    const addr = new iroh.EndpointAddr(iroh.EndpointId.fromString(node.id), null, [...node.addrs]);
    const conn = await withDeadline(this.ep.connect(addr, DISC_ALPN_BYTES), deadline, 'connect');
    let reply: Announcement | undefined;
    try {
      const bi = await withDeadline(conn.openBi(), deadline, 'open');
      await withDeadline(bi.send.writeAll(Array.from(bytes)), deadline, 'write');
      await withDeadline(bi.send.finish(), deadline, 'finish');
      const head = Buffer.from(await withDeadline(bi.recv.readExact(4), deadline, 'reply'));
      const body = await withDeadline(bi.recv.readExact(head.readUInt32LE(0)), deadline, 'reply');
      reply = decodeAnnouncement(Uint8Array.from(body));
      conn.close(0n, []);
    } catch {
      // The node closed the connection: its reason says why.
    }
    const closed = await withDeadline(conn.closed(), deadline, 'closed');
    return { reply, closed };
  }

  async close(): Promise<void> {
    await this.ep.close();
  }
}
