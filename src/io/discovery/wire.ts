/**
 * The discovery message (ALPN `iroh-raft-discovery/0`): a member's current direct addresses with
 * their generation, and what it knows of other members' addresses (gossip), each with its own.
 *
 * On a stream the message is a frame, `length u32 little-endian, body`, the body a fixed binary
 * layout (all integers big-endian):
 *
 *   magic "IRDS" | version u8 (1) | reserved u8 (0) | gossip count u8 (0..{@link GOSSIP_MAX})
 *   self:    generation u64 | addrs
 *   gossip:  endpoint id (32 bytes) | generation u64 | addrs      (count times, ids distinct)
 *   addrs:   count u8 (1..{@link ADDRS_MAX}) | per address: length u8, ASCII `ip:port`
 *
 * Why binary rather than msgpack: the message is small and regular (ids, counters, addresses), so
 * validation is a walk over fixed fields with one encoding per value (an address must already be
 * in canonical form, a generation is a safe integer >= 1, nothing may follow the last entry), and
 * the largest body follows from the counts ({@link DISC_BODY_BYTES_MAX}) without a general decoder
 * in the way. Addresses are canonical text (as src/io/ticket.ts prints them), so they compare as
 * strings.
 *
 * The self part names no id: the sender is the connection's authenticated endpoint id. A gossip
 * entry is a hint about another member, never taken as true: the receiver dials that member at
 * the hinted addresses and learns only what the member itself answers (Iroh proves its key).
 */
import { CodedError } from '../../errors.js';
import { TicketError, normalizeAddr } from '../ticket.js';

/** ALPN of address exchanges between members. */
export const DISC_ALPN = 'iroh-raft-discovery/0';
/** {@link DISC_ALPN} as the binding wants it. */
export const DISC_ALPN_BYTES = Array.from(new TextEncoder().encode(DISC_ALPN));
/** Bytes of a frame's length prefix. */
export const LENGTH_BYTES = 4;
/** The layout's version; another one is refused, not guessed at. */
export const DISC_VERSION = 1;
/** Most addresses per member in one message (as in a ticket). */
export const ADDRS_MAX = 16;
/** Most gossip entries in one message (other members). */
export const GOSSIP_MAX = 64;
/** Longest address text: `[` 39 characters of IPv6 `]:65535`. */
const ADDR_CHARS_MAX = 47;
const MAGIC = [0x49, 0x52, 0x44, 0x53]; // "IRDS"
const HEAD_BYTES = 7;
const ID_BYTES = 32;
const GEN_BYTES = 8;
const ENTRY_ADDRS_BYTES_MAX = 1 + ADDRS_MAX * (1 + ADDR_CHARS_MAX);
/** Largest valid body, in bytes (about 52 KiB); a length prefix above it is refused unread. */
export const DISC_BODY_BYTES_MAX = HEAD_BYTES + GEN_BYTES + ENTRY_ADDRS_BYTES_MAX + GOSSIP_MAX * (ID_BYTES + GEN_BYTES + ENTRY_ADDRS_BYTES_MAX);

/** What one member says of one member's addresses. */
export interface AddrClaim {
  /**
   * Orders the claims about one member: a higher one replaces a lower one, never the reverse.
   * An integer in [1, 2^53 - 1].
   */
  readonly generation: number;
  /** Direct addresses, canonical `ip:port` or `[ipv6]:port`, distinct, 1..{@link ADDRS_MAX}. */
  readonly addrs: readonly string[];
}

/** One message: the sender's own addresses and its gossip about other members. */
export interface Announcement {
  readonly self: AddrClaim;
  readonly gossip: readonly (AddrClaim & { readonly id: string })[];
}

/** Why a body is not an announcement; the message says where. Never thrown for a valid body. */
export class DiscoveryWireError extends CodedError<'BadFrame'> {
  override readonly name = 'DiscoveryWireError';
  constructor(message: string) {
    super('BadFrame', message);
  }
}

function bad(message: string): never {
  throw new DiscoveryWireError(message);
}

/** The body of `a` (no length prefix). DiscoveryWireError when `a` breaks a rule of the layout (a bug in the caller). */
export function encodeAnnouncement(a: Announcement): Uint8Array {
  if (a.gossip.length > GOSSIP_MAX) bad(`at most ${GOSSIP_MAX} gossip entries, got ${a.gossip.length}`);
  const parts: number[] = [...MAGIC, DISC_VERSION, 0, a.gossip.length];
  const claim = (c: AddrClaim): void => {
    checkGeneration(c.generation);
    pushU64(parts, c.generation);
    if (c.addrs.length < 1 || c.addrs.length > ADDRS_MAX) bad(`1..${ADDRS_MAX} addresses per member, got ${c.addrs.length}`);
    parts.push(c.addrs.length);
    for (const s of c.addrs) {
      if (canonical(s) !== s) bad(`address ${JSON.stringify(s)} is not canonical`);
      parts.push(s.length, ...Buffer.from(s, 'latin1'));
    }
  };
  claim(a.self);
  const ids = new Set<string>();
  for (const g of a.gossip) {
    if (!/^[0-9a-f]{64}$/.test(g.id) || ids.has(g.id)) bad(`gossip id ${JSON.stringify(g.id)} is malformed or repeated`);
    ids.add(g.id);
    parts.push(...Buffer.from(g.id, 'hex'));
    claim(g);
  }
  return Uint8Array.from(parts);
}

/** `length u32 LE, body` of `a`, as one buffer. */
export function encodeFrame(a: Announcement): Uint8Array {
  const body = encodeAnnouncement(a);
  const out = new Uint8Array(LENGTH_BYTES + body.length);
  new DataView(out.buffer).setUint32(0, body.length, true);
  out.set(body, LENGTH_BYTES);
  return out;
}

/**
 * The announcement in `body`. DiscoveryWireError (code `BadFrame`) for anything else: a wrong
 * magic or version, a non-zero reserved byte, a count out of range, a truncated entry, a
 * generation of 0 or past 2^53 - 1, an address that is not a canonical IP literal with a port,
 * a repeated address or gossip id, or bytes after the last entry.
 */
export function decodeAnnouncement(body: Uint8Array): Announcement {
  if (body.length > DISC_BODY_BYTES_MAX) bad(`body of ${body.length} bytes exceeds ${DISC_BODY_BYTES_MAX}`);
  if (body.length < HEAD_BYTES) bad(`body of ${body.length} bytes is shorter than the header`);
  for (let i = 0; i < MAGIC.length; i++) if (body[i] !== MAGIC[i]) bad('wrong magic (not a discovery message)');
  if (body[4] !== DISC_VERSION) bad(`version ${body[4]}, this node speaks ${DISC_VERSION}`);
  if (body[5] !== 0) bad('reserved byte is not zero');
  const count = body[6]!;
  if (count > GOSSIP_MAX) bad(`${count} gossip entries, at most ${GOSSIP_MAX}`);
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  let off = HEAD_BYTES;
  const need = (n: number, what: string): void => {
    if (body.length - off < n) bad(`truncated in ${what}`);
  };
  const claim = (what: string): AddrClaim => {
    need(GEN_BYTES + 1, what);
    const hi = view.getUint32(off, false);
    const lo = view.getUint32(off + 4, false);
    off += GEN_BYTES;
    if (hi > 0x1fffff) bad(`${what}: generation past 2^53 - 1`);
    const generation = hi * 2 ** 32 + lo;
    if (generation === 0) bad(`${what}: generation 0`);
    const n = body[off++]!;
    if (n < 1 || n > ADDRS_MAX) bad(`${what}: ${n} addresses, expected 1..${ADDRS_MAX}`);
    const addrs: string[] = [];
    for (let i = 0; i < n; i++) {
      need(1, what);
      const len = body[off++]!;
      if (len < 1 || len > ADDR_CHARS_MAX) bad(`${what}: address ${i} of ${len} characters`);
      need(len, what);
      const s = Buffer.from(body.subarray(off, off + len)).toString('latin1');
      off += len;
      if (canonical(s) !== s) bad(`${what}: address ${i} is not a canonical ip:port`);
      if (addrs.includes(s)) bad(`${what}: address ${s} is listed twice`);
      addrs.push(s);
    }
    return { generation, addrs };
  };
  const self = claim('self');
  const gossip: (AddrClaim & { id: string })[] = [];
  const ids = new Set<string>();
  for (let i = 0; i < count; i++) {
    need(ID_BYTES, `gossip ${i}`);
    const id = Buffer.from(body.subarray(off, off + ID_BYTES)).toString('hex');
    off += ID_BYTES;
    if (ids.has(id)) bad(`gossip ${i}: id listed twice`);
    ids.add(id);
    gossip.push({ id, ...claim(`gossip ${i}`) });
  }
  if (off !== body.length) bad(`${body.length - off} bytes after the last entry`);
  return { self, gossip };
}

function checkGeneration(g: number): void {
  if (!Number.isSafeInteger(g) || g < 1) bad(`generation must be an integer in [1, 2^53 - 1], got ${g}`);
}

function pushU64(out: number[], v: number): void {
  const hi = Math.floor(v / 2 ** 32);
  const lo = v % 2 ** 32;
  out.push(hi >>> 24, (hi >>> 16) & 0xff, (hi >>> 8) & 0xff, hi & 0xff, lo >>> 24, (lo >>> 16) & 0xff, (lo >>> 8) & 0xff, lo & 0xff);
}

/** The canonical form of an address, or undefined when it is not one. */
function canonical(s: string): string | undefined {
  try {
    return normalizeAddr(s);
  } catch (e) {
    if (e instanceof TicketError) return undefined;
    throw e;
  }
}
