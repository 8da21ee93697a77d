/**
 * Seeded fuzzing of an Iroh ALPN whose stream carries length-prefixed messages (`length u32
 * little-endian, body`): the raft link (`iroh-raft/0`), snapshot streams (`iroh-raft-snap/0`), and
 * any later protocol framed the same way. A fuzzer is a bare Iroh endpoint on 127.0.0.1 (with a
 * member's key or a stranger's) that opens a connection per case, writes the case's bytes on one
 * bidirectional stream, and reads whatever comes back until the other side ends or closes it.
 *
 * The generator knows framing only: it mutates valid bodies that the test supplies (garbage,
 * flipped bytes, truncation, lengths beyond the limit, replays, splices), so the same generator
 * serves every ALPN; what counts as accepted is the test's own oracle. Every case is reproducible
 * from the seed, which the test prints.
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as Iroh from '@number0/iroh/index.js';

const iroh = createRequire(import.meta.url)('@number0/iroh/index.js') as typeof Iroh;

/** A small seeded PRNG (mulberry32): the same seed gives the same cases. */
export class Rng {
  private s: number;
  constructor(readonly seed: number) {
    this.s = seed >>> 0;
  }
  /** A float in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(0, xs.length - 1)]!;
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.int(0, 255);
    return b;
  }
}

/** `length u32 LE, body`. */
export function framed(body: Uint8Array, length = body.length): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, length >>> 0, true);
  out.set(body, 4);
  return out;
}

export const concat = (parts: readonly Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

/** How a fuzzed message was made. */
export type Mutation = 'valid' | 'garbage' | 'garbage-body' | 'flip' | 'truncate' | 'oversize' | 'replay' | 'splice' | 'empty';

/**
 * One fuzzed message on the stream, prefix included (a `truncate` may cut the prefix too): made
 * from `valid` bodies by one mutation. `maxBytes` is the receiver's limit on a body; `oversize`
 * states a length above it and sends a few bytes of body, or (with `fullOversize`, for small
 * limits) a whole body of that length made of valid bodies end to end, which a receiver that
 * forgot its limit would take. `history` holds messages sent before, which `replay` sends again.
 */
export function mutate(
  rng: Rng,
  valid: readonly Uint8Array[],
  maxBytes: number,
  history: readonly Uint8Array[],
  opts: { readonly fullOversize?: boolean } = {},
): { mutation: Mutation; bytes: Uint8Array } {
  const base = rng.pick(valid);
  const m = rng.pick<Mutation>(['valid', 'garbage', 'garbage-body', 'flip', 'flip', 'truncate', 'oversize', 'replay', 'splice', 'empty']);
  switch (m) {
    case 'valid':
      return { mutation: m, bytes: framed(base) };
    case 'garbage':
      return { mutation: m, bytes: rng.bytes(rng.int(1, 64)) };
    case 'garbage-body':
      return { mutation: m, bytes: framed(rng.bytes(rng.int(0, 256))) };
    case 'flip': {
      const b = framed(base);
      for (let k = rng.int(1, 4); k > 0; k--) {
        const i = rng.int(0, b.length - 1);
        b[i] = b[i]! ^ (1 << rng.int(0, 7));
      }
      return { mutation: m, bytes: b };
    }
    case 'truncate': {
      const b = framed(base);
      return { mutation: m, bytes: b.slice(0, rng.int(0, b.length - 1)) };
    }
    case 'oversize': {
      const filler = valid.find((v) => v.length > 0);
      if (opts.fullOversize === true && filler !== undefined && rng.next() < 0.5) {
        const parts: Uint8Array[] = [];
        for (let n = 0; n <= maxBytes; n += filler.length) parts.push(filler);
        return { mutation: m, bytes: framed(concat(parts)) };
      }
      const length = rng.pick([maxBytes + 1, maxBytes + rng.int(2, 1 << 20), 0xffffffff, rng.int(maxBytes + 1, 0xffffffff)]);
      return { mutation: m, bytes: framed(rng.bytes(rng.int(0, 32)), length) };
    }
    case 'replay':
      return history.length > 0 ? { mutation: m, bytes: rng.pick(history) } : { mutation: 'valid', bytes: framed(base) };
    case 'splice': {
      const other = rng.pick(valid);
      const body = concat([base.slice(0, rng.int(0, base.length)), other.slice(rng.int(0, other.length))]);
      return { mutation: m, bytes: framed(body) };
    }
    case 'empty':
      return { mutation: m, bytes: framed(new Uint8Array(0)) };
  }
}

/** A bare Iroh endpoint on 127.0.0.1 speaking any ALPN by hand; `secretKey` (32 bytes) gives it an identity (a member's), else a fresh one. */
export async function fuzzEndpoint(secretKey: Uint8Array = new Uint8Array(randomBytes(32))): Promise<Iroh.Endpoint> {
  const b = iroh.Endpoint.builder();
  iroh.presetMinimal(b);
  b.relayMode(iroh.RelayMode.disabled());
  b.secretKey(Array.from(secretKey));
  b.bindAddr('127.0.0.1:0');
  return b.bind();
}

/** Where to reach a receiver: its endpoint id and direct addresses. */
export function endpointAddr(id: string, addrs: string[]): Iroh.EndpointAddr {
  return new iroh.EndpointAddr(iroh.EndpointId.fromString(id), null, addrs);
}

/** How one case's connection went, from the fuzzer's side. */
export interface CaseOutcome {
  /** The connection came up (a TLS handshake with the ALPN); false when it was refused before. */
  readonly connected: boolean;
  /** Bytes the receiver wrote back before its side ended or the connection closed. */
  readonly reply: Uint8Array;
  /** How it ended: the receiver finished its half (`end`), closed the connection (`closed`), or we gave up waiting (`timeout`). */
  readonly ended: 'end' | 'closed' | 'timeout';
}

/**
 * Sends `bytes` to `to` on a new connection with `alpn`: opens one bidirectional stream, writes the
 * bytes (in pieces of 64 KiB), finishes the stream when `finish` (else leaves it open, as a
 * stalled peer would), reads until the other side ends or closes, up to `waitMs`, then closes the
 * connection. With `abandon`, closes right after writing, without reading.
 */
export async function sendCase(
  ep: Iroh.Endpoint,
  to: Iroh.EndpointAddr,
  alpn: string,
  bytes: Uint8Array,
  opts: { readonly finish: boolean; readonly waitMs: number; readonly abandon?: boolean },
): Promise<CaseOutcome> {
  let conn: Iroh.Connection;
  try {
    conn = await ep.connect(to, Array.from(Buffer.from(alpn)));
  } catch {
    return { connected: false, reply: new Uint8Array(0), ended: 'closed' };
  }
  const reply: number[] = [];
  let ended: CaseOutcome['ended'] = 'closed';
  try {
    const bi = await conn.openBi();
    for (let at = 0; at < bytes.length; at += 65536) await bi.send.writeAll(Array.from(bytes.subarray(at, at + 65536)));
    if (opts.finish) await bi.send.finish();
    if (opts.abandon === true) return { connected: true, reply: new Uint8Array(0), ended: 'closed' };
    const deadline = Date.now() + opts.waitMs;
    for (;;) {
      const left = deadline - Date.now();
      let timer: NodeJS.Timeout | undefined;
      const chunk = await Promise.race([bi.recv.read(65536), new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), Math.max(0, left))))]);
      clearTimeout(timer);
      if (chunk === 'timeout') {
        ended = 'timeout';
        break;
      }
      if (chunk.length === 0) {
        ended = 'end';
        break;
      }
      reply.push(...chunk);
    }
  } catch {
    // The receiver closed the connection (or refused the stream): that is an outcome, not a failure.
  } finally {
    try {
      conn.close(0n, []);
    } catch {
      // Closed already.
    }
  }
  return { connected: true, reply: Uint8Array.from(reply), ended };
}

/** Runs `f` over `items` with at most `concurrency` at once, in order of start. */
export async function eachLimited<T>(items: readonly T[], concurrency: number, f: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await f(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/** The seed for a fuzz run: `FUZZ_SEED` from the environment (to replay a failure), else a fresh one; print it. */
export function fuzzSeed(): number {
  const env = process.env['FUZZ_SEED'];
  return env !== undefined && env !== '' ? Number(env) >>> 0 : randomBytes(4).readUInt32LE(0);
}
