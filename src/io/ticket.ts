/**
 * Join tickets: a node's Iroh endpoint id and the direct addresses it listens on, as one string
 * to paste into another node's `--peers`.
 *
 * Format: `irohraft1` followed by the unpadded base64url of
 * `id (32 bytes), address count u8, per address: family u8 (4 or 6), ip (4 or 16 bytes),
 * port u16 big-endian, then crc32 (zlib polynomial) u32 big-endian of everything before it`.
 *
 * Why binary rather than JSON: the layout has one encoding per value, so validation is a walk over
 * fixed fields; the checksum turns a mistyped or truncated ticket into a clear error instead of a
 * dial to a wrong id; and the result stays short enough to pass on a command line (about 70
 * characters for one IPv4 address).
 *
 * Addresses are IP literals with a port: `1.2.3.4:7000` or `[::1]:7000`; no host names (a ticket
 * must not depend on DNS), no zone ids, no port 0. Decoding returns them in canonical form
 * (IPv6 compressed and lowercase), so equal tickets decode to equal values.
 */

import { isIPv4, isIPv6 } from 'node:net';
import { crc32 } from 'node:zlib';
import { INVITE_SECRET_CHARS, isInviteSecret } from '../api/index.js';
import { CodedError } from '../errors.js';

/** What a ticket carries. */
export interface PeerAddr {
  /** The peer's Iroh endpoint id: 64 lowercase hex characters (its ed25519 public key). */
  readonly id: string;
  /** Direct addresses, `ip:port` or `[ipv6]:port`; at most {@link TICKET_ADDRS_MAX}. */
  readonly addrs: readonly string[];
}

/** Every failure of this module: input that is not a valid ticket (or cannot become one). */
export class TicketError extends CodedError<'InvalidTicket'> {
  override readonly name = 'TicketError';
  constructor(message: string) {
    super('InvalidTicket', message);
  }
}

function invalid(message: string): never {
  throw new TicketError(message);
}

export const TICKET_PREFIX = 'irohraft1';
/** Most addresses one ticket may hold. */
export const TICKET_ADDRS_MAX = 16;
/** Longest ticket string accepted, in characters (checked before any decoding). */
const TICKET_CHARS_MAX = 1024;

const ID_BYTES = 32;
const CRC_BYTES = 4;
const ID_RE = /^[0-9a-f]{64}$/;
const BASE64URL_RE = /^[A-Za-z0-9_-]+$/;

// ------------------------------------------------------------------ addresses

/** A parsed socket address; `ip` is 4 or 16 bytes. */
interface SocketAddr {
  readonly ip: Uint8Array;
  readonly port: number;
}

function parseIPv4(s: string): Uint8Array {
  // isIPv4 already refused leading zeros, out-of-range parts and anything but four decimal parts.
  return Uint8Array.from(s.split('.').map(Number));
}

function parseIPv6(s: string): Uint8Array {
  const out = new Uint8Array(16);
  let head = s;
  let tail = '';
  const gap = s.indexOf('::');
  if (gap >= 0) {
    head = s.slice(0, gap);
    tail = s.slice(gap + 2);
  }
  const groups = (part: string): number[] => {
    if (part === '') return [];
    const words: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const v4 = parseIPv4(g);
        words.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        words.push(parseInt(g, 16));
      }
    }
    return words;
  };
  const h = groups(head);
  const t = groups(tail);
  const words = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  for (let i = 0; i < 8; i++) {
    out[2 * i] = words[i]! >> 8;
    out[2 * i + 1] = words[i]! & 0xff;
  }
  return out;
}

function formatIp(ip: Uint8Array): string {
  if (ip.length === 4) return ip.join('.');
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((ip[i]! << 8) | ip[i + 1]!).toString(16));
  // The WHATWG URL parser prints IPv6 in the RFC 5952 canonical form, inside brackets.
  return new URL(`http://[${words.join(':')}]/`).hostname.slice(1, -1);
}

function parseSocketAddr(s: unknown): SocketAddr {
  if (typeof s !== 'string') invalid(`address must be a string, got ${typeof s}`);
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  if (m === null) invalid(`address ${JSON.stringify(s)} is not ip:port or [ipv6]:port`);
  const port = Number(m[3]);
  if (!(port >= 1 && port <= 0xffff) || (m[3]!.length > 1 && m[3]!.startsWith('0'))) {
    invalid(`address ${JSON.stringify(s)} has a port outside 1..65535 (or with leading zeros)`);
  }
  const v6 = m[1];
  if (v6 !== undefined) {
    if (!isIPv6(v6) || v6.includes('%')) invalid(`address ${JSON.stringify(s)} is not an IPv6 literal`);
    return { ip: parseIPv6(v6), port };
  }
  const v4 = m[2]!;
  if (!isIPv4(v4)) invalid(`address ${JSON.stringify(s)} is not an IPv4 literal (host names are not allowed)`);
  return { ip: parseIPv4(v4), port };
}

function formatSocketAddr(a: SocketAddr): string {
  return a.ip.length === 4 ? `${formatIp(a.ip)}:${a.port}` : `[${formatIp(a.ip)}]:${a.port}`;
}

/**
 * Validates a direct address and returns its canonical form (`1.2.3.4:7000`, `[::1]:7000`).
 * TicketError `InvalidTicket` when it is not an IP literal with a port in 1..65535.
 */
export function normalizeAddr(s: string): string {
  return formatSocketAddr(parseSocketAddr(s));
}

/** Validates an endpoint id (64 lowercase hex characters). TicketError `InvalidTicket` otherwise. */
export function checkPeerId(id: string): string {
  if (typeof id !== 'string' || !ID_RE.test(id)) invalid(`endpoint id must be 64 lowercase hex characters, got ${JSON.stringify(id)}`);
  return id;
}

// ------------------------------------------------------------------ tickets

/**
 * Encodes `{ id, addrs }` as a ticket string. Duplicate addresses (after normalization) are kept
 * once. TicketError `InvalidTicket` for a malformed id or address, or more than
 * {@link TICKET_ADDRS_MAX} addresses.
 */
export function encodeTicket(peer: PeerAddr): string {
  const id = checkPeerId(peer.id);
  const list: unknown = peer.addrs;
  if (!Array.isArray(list)) invalid('addrs must be an array');
  const seen = new Set<string>();
  const addrs: SocketAddr[] = [];
  for (const s of list as unknown[]) {
    const a = parseSocketAddr(s);
    const key = formatSocketAddr(a);
    if (seen.has(key)) continue;
    seen.add(key);
    addrs.push(a);
  }
  if (addrs.length > TICKET_ADDRS_MAX) invalid(`a ticket holds at most ${TICKET_ADDRS_MAX} addresses, got ${addrs.length}`);

  let size = ID_BYTES + 1 + CRC_BYTES;
  for (const a of addrs) size += 1 + a.ip.length + 2;
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  bytes.set(Buffer.from(id, 'hex'), 0);
  let off = ID_BYTES;
  bytes[off++] = addrs.length;
  for (const a of addrs) {
    bytes[off++] = a.ip.length === 4 ? 4 : 6;
    bytes.set(a.ip, off);
    off += a.ip.length;
    view.setUint16(off, a.port, false);
    off += 2;
  }
  view.setUint32(off, crc32(bytes.subarray(0, off)), false);
  return TICKET_PREFIX + Buffer.from(bytes).toString('base64url');
}

/**
 * Decodes a ticket made by {@link encodeTicket}. Leading and trailing white space is ignored.
 * TicketError `InvalidTicket` for anything else: a wrong prefix, characters outside base64url,
 * a non-canonical encoding, a bad checksum, truncated or trailing bytes, an unknown address
 * family, port 0, duplicate addresses or too many of them.
 */
export function decodeTicket(s: string): { id: string; addrs: string[] } {
  if (typeof s !== 'string') invalid(`ticket must be a string, got ${typeof s}`);
  const t = s.trim();
  if (t.length > TICKET_CHARS_MAX) invalid(`ticket of ${t.length} characters is longer than ${TICKET_CHARS_MAX}`);
  if (!t.startsWith(TICKET_PREFIX)) invalid(`ticket must start with ${TICKET_PREFIX}`);
  const body = t.slice(TICKET_PREFIX.length);
  if (!BASE64URL_RE.test(body)) invalid('ticket is not base64url after its prefix');
  const buf = Buffer.from(body, 'base64url');
  // Node's decoder skips stray bits; one encoding per ticket keeps tickets comparable as strings.
  if (buf.toString('base64url') !== body) invalid('ticket is not canonical base64url');
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  const len = bytes.length;
  if (len < ID_BYTES + 1 + CRC_BYTES) invalid(`ticket of ${len} bytes is truncated`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, len);
  const end = len - CRC_BYTES;
  if (view.getUint32(end, false) !== crc32(bytes.subarray(0, end))) invalid('ticket checksum does not match (mistyped or truncated?)');

  const id = Buffer.from(bytes.subarray(0, ID_BYTES)).toString('hex');
  let off = ID_BYTES;
  const count = bytes[off++]!;
  if (count > TICKET_ADDRS_MAX) invalid(`ticket lists ${count} addresses, at most ${TICKET_ADDRS_MAX} are allowed`);
  const addrs: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < count; i++) {
    if (off >= end) invalid(`ticket is truncated at address ${i}`);
    const family = bytes[off++]!;
    if (family !== 4 && family !== 6) invalid(`address ${i} has unknown family ${family}`);
    const ipLen = family === 4 ? 4 : 16;
    if (end - off < ipLen + 2) invalid(`ticket is truncated at address ${i}`);
    const ip = bytes.slice(off, off + ipLen);
    off += ipLen;
    const port = view.getUint16(off, false);
    off += 2;
    if (port === 0) invalid(`address ${i} has port 0`);
    const a = formatSocketAddr({ ip, port });
    if (seen.has(a)) invalid(`address ${a} is listed twice`);
    seen.add(a);
    addrs.push(a);
  }
  if (off !== end) invalid(`${end - off} trailing bytes in ticket`);
  return { id, addrs };
}

// ------------------------------------------------------------------ join strings

/** The `--join` string of an invite: `ticket.secret`. */
export function joinString(ticket: string, secret: string): string {
  return `${ticket}.${secret}`;
}

/**
 * A `--join` value: a member's ticket, with an invite's secret after a dot or without one.
 * TicketError `InvalidTicket` for a bad ticket or a secret of the wrong shape.
 */
export function parseJoin(s: string): { id: string; addrs: string[]; invite?: string } {
  const t = s.trim();
  const dot = t.indexOf('.');
  if (dot < 0) return decodeTicket(t);
  const invite = t.slice(dot + 1);
  if (!isInviteSecret(invite)) throw new TicketError(`the invite after the ticket's "." must be ${INVITE_SECRET_CHARS} base64url characters`);
  return { ...decodeTicket(t.slice(0, dot)), invite };
}
