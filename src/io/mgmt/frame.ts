/**
 * The management protocol (ALPN `iroh-raft-mgmt/0`): one bidirectional stream per request. The
 * caller opens a stream, writes one frame holding the request and finishes its half; the node
 * answers with one frame holding the reply and finishes its half.
 *
 * A frame is `length u32 little-endian, body`, the body msgpack:
 *
 *   request  {op: string, args?: any}
 *   reply    {ok: true, result: any}  or  {ok: false, error: {code: string, message: string}}
 *
 * Codes are {@link ServiceErrorCode}s, with the meaning they have over HTTP (`Forbidden`,
 * `BadRequest`, `PayloadTooLarge`, `Timeout`, `Overloaded`, `NotFound` for an unknown op...).
 * Who asks is the connection's authenticated endpoint id; nothing in a request names it.
 */
import { Buffer } from 'node:buffer';
import { Packr } from 'msgpackr';
import type { ServiceErrorCode } from '../../api/index.js';

/** ALPN of management requests. */
export const MGMT_ALPN = 'iroh-raft-mgmt/0';
/** {@link MGMT_ALPN} as the binding wants it. */
export const MGMT_ALPN_BYTES = Array.from(new TextEncoder().encode(MGMT_ALPN));
/** Bytes of a frame's length prefix. */
export const LENGTH_BYTES = 4;
/** Longest op name, in characters. */
const OP_CHARS_MAX = 64;

/** A management request as sent. */
export interface MgmtRequest {
  readonly op: string;
  readonly args?: unknown;
}

/** A reply's error. */
export interface MgmtErrorBody {
  readonly code: ServiceErrorCode;
  readonly message: string;
}

/** A management reply as sent. */
export type MgmtReply = { readonly ok: true; readonly result: unknown } | { readonly ok: false; readonly error: MgmtErrorBody };

// No records, no structured clone: a frame is plain maps, arrays, strings and numbers, and
// 64-bit integers decode as numbers (a shape check refuses what does not fit).
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false, int64AsType: 'number' });

/** `length u32 LE, msgpack(value)` as one buffer. */
export function encodeFrame(value: unknown): Buffer {
  const body = packr.pack(value);
  const out = Buffer.allocUnsafe(LENGTH_BYTES + body.length);
  out.writeUInt32LE(body.length, 0);
  body.copy(out, LENGTH_BYTES);
  return out;
}

/** The length stated by a frame's 4-byte prefix. */
export function frameLength(head: Uint8Array): number {
  return Buffer.from(head.buffer, head.byteOffset, head.byteLength).readUInt32LE(0);
}

/** A frame body's msgpack value; undefined when it is not one whole msgpack value. */
export function decodeBody(body: Uint8Array): { value: unknown } | undefined {
  try {
    return { value: packr.unpack(body) };
  } catch {
    return undefined;
  }
}

/** The request in a decoded body, or why it is not one (a message for BadRequest). */
export function asRequest(v: unknown): MgmtRequest | string {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'a request is a map {op, args}';
  const keys = Object.keys(v);
  const extra = keys.filter((k) => k !== 'op' && k !== 'args');
  if (extra.length > 0) return `a request has only op and args, got ${JSON.stringify(extra.slice(0, 3)).slice(0, 100)}`;
  const { op, args } = v as { op?: unknown; args?: unknown };
  if (typeof op !== 'string' || op.length === 0 || op.length > OP_CHARS_MAX) return `op must be a string of 1..${OP_CHARS_MAX} characters`;
  return args === undefined ? { op } : { op, args };
}

/** The reply in a decoded body, or undefined when it is not one (a client's check of a node). */
export function asReply(v: unknown): MgmtReply | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const r = v as { ok?: unknown; result?: unknown; error?: { code?: unknown; message?: unknown } };
  if (r.ok === true) return { ok: true, result: r.result };
  if (r.ok === false && typeof r.error?.code === 'string' && typeof r.error.message === 'string') {
    return { ok: false, error: { code: r.error.code as ServiceErrorCode, message: r.error.message } };
  }
  return undefined;
}

/** Copies the binding's byte array into a Uint8Array (a plain loop: the cheapest, see transport/link.ts). */
export function fromArray(a: readonly number[]): Uint8Array {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]!;
  return out;
}

/** The bytes as the binding wants them. */
export function toArray(b: Uint8Array): number[] {
  const out = new Array<number>(b.length);
  for (let i = 0; i < b.length; i++) out[i] = b[i]!;
  return out;
}
