/**
 * The payload of a NodeHeartbeat record (src/wire/record.ts): what a node says of itself to its
 * peers once per tick. Malformed input is a CodecError `BadFrame`; asking to encode an invalid
 * value is a bug (AssertionError).
 */

import { ByteReader, ByteWriter, U16_MAX, U8_MAX, isU32 } from './bytes.js';
import { bad, bug } from './errors.js';

/**
 * What a node says of itself in a NodeHeartbeat record. Only these records keep a peer counted as
 * alive: raft traffic from one healthy worker says nothing about the shards of another, dead one.
 */
export interface LivenessFrame {
  /**
   * Per worker thread of the sender, by index (the sender hosts shard `s` on worker
   * `s % running.length`): true while the worker runs, so the shards it hosts can lead. Empty:
   * the sender did not say (the payload of the previous layout, which was empty and sent only
   * while every worker ran): every worker counts as running.
   */
  readonly running: readonly boolean[];
  /** The sender's client load and HTTP address, for status pages; absent when not said this time. */
  readonly load?: NodeLoad;
  /**
   * Sections of later layouts that this version does not read (tags above {@link LOAD_TAG}),
   * kept in order so the frame re-encodes exactly as it came. Absent when there are none.
   */
  readonly sections?: readonly LivenessSection[];
}

/** A node's client load over its recent window, as it measured it. */
export interface NodeLoad {
  /** Client API requests answered per second, rounded; a u32. */
  readonly requestsPerSec: number;
  /** 99th percentile of their durations, in microseconds (0 when none was answered); a u32. */
  readonly p99Micros: number;
  /** The sender's HTTP API base URL (`http://127.0.0.1:7071`): printable ASCII, at most 255 bytes; '' when it has none. */
  readonly httpUrl: string;
}

/** A section of a later layout: its tag (2..255) and its body (at most 65,535 bytes). */
export interface LivenessSection {
  readonly tag: number;
  readonly body: Uint8Array;
}

/** Tag of the {@link NodeLoad} section, the first one defined. */
export const LOAD_TAG = 1;
/**
 * Tag of the leads section: how many data shards the sender leads, a u32 (little endian). Leader
 * balancing reads it when a node hosts only some of the shards and cannot count the others' leads
 * itself. Carried in {@link LivenessFrame.sections}; a receiver that does not know it keeps it unread.
 */
export const LEADS_TAG = 2;

/** The leads section for `count` data shards led (a u32). */
export function leadsSection(count: number): LivenessSection {
  if (!isU32(count)) bug(`leads ${count} is not a u32`);
  const body = new Uint8Array(4);
  new DataView(body.buffer).setUint32(0, count, true);
  return { tag: LEADS_TAG, body };
}

/** The leads a frame carries; undefined when it has no well-formed leads section. */
export function leadsOf(f: LivenessFrame): number | undefined {
  const s = f.sections?.find((x) => x.tag === LEADS_TAG);
  if (s === undefined || s.body.length !== 4) return undefined;
  return new DataView(s.body.buffer, s.body.byteOffset, 4).getUint32(0, true);
}
/**
 * Tag of the stopping section (no body): the sender is shutting down gracefully and hands its
 * leaderships over; peers give it none back while its records carry the section. Every record of
 * a stopping node carries it; a record without it says the sender is not stopping.
 */
export const STOPPING_TAG = 3;

/** The stopping section. */
export function stoppingSection(): LivenessSection {
  return { tag: STOPPING_TAG, body: new Uint8Array(0) };
}

/** Whether a frame says its sender is stopping (a stopping section, with no body). */
export function isStopping(f: LivenessFrame): boolean {
  return f.sections?.some((x) => x.tag === STOPPING_TAG && x.body.length === 0) === true;
}
/** Worker count u16. */
const LIVENESS_FIXED_BYTES = 2;
const LIVENESS_WORKERS_MAX = U16_MAX;
/** A section's header: tag u8, body length u16. */
const SECTION_HEADER_BYTES = 3;
/** The load section's body without its URL: requests/s u32, p99 u32, URL length u8. */
const LOAD_FIXED_BYTES = 9;
/** Characters a URL may hold here: printable ASCII without space, so a page can show it as it is. */
const URL_CHAR = (c: number): boolean => c > 0x20 && c < 0x7f;

/**
 * Layout: `workers u16, running bitmap (ceil(workers / 8) bytes: bit w & 7 of byte w >> 3 set
 * when worker w runs; the bits past workers are zero)`, then sections in strictly ascending tag
 * order, each `tag u8, length u16, body`: tag 1 is the load, `requestsPerSec u32, p99Micros u32,
 * urlBytes u8, url (ASCII)`. No payload at all when `running` is empty (and then no sections).
 * The payload of the layout before sections is the same bytes without them, so both layouts read
 * each other's worker states; a decoder of that earlier layout refuses a payload with sections,
 * and its router then keeps the sender up on its traffic alone.
 * AssertionError for more than 65,535 workers, sections without workers, a load field out of
 * range, a URL that is not printable ASCII or longer than 255, or a section tag or length the
 * layout cannot hold.
 */
export function encodeLiveness(f: LivenessFrame): Uint8Array<ArrayBuffer> {
  const workers = f.running.length;
  if (workers > LIVENESS_WORKERS_MAX) bug(`${workers} workers exceed ${LIVENESS_WORKERS_MAX}`);
  const sections = f.sections ?? [];
  if (workers === 0) {
    if (f.load !== undefined || sections.length > 0) bug('liveness sections need a worker count');
    return new Uint8Array(0);
  }
  if (f.load !== undefined) checkLoad(f.load);
  checkSections(sections);
  const loadBytes = f.load === undefined ? 0 : SECTION_HEADER_BYTES + LOAD_FIXED_BYTES + f.load.httpUrl.length;
  const otherBytes = sections.reduce((n, s) => n + SECTION_HEADER_BYTES + s.body.length, 0);
  const w = new ByteWriter(LIVENESS_FIXED_BYTES + Math.ceil(workers / 8) + loadBytes + otherBytes);
  w.u16(workers, 'worker count');
  for (let at = 0; at < workers; at += 8) {
    let byte = 0;
    for (let i = 0; i < 8 && at + i < workers; i++) if (f.running[at + i]) byte |= 1 << i;
    w.u8(byte);
  }
  if (f.load !== undefined) {
    w.u8(LOAD_TAG);
    w.u16(LOAD_FIXED_BYTES + f.load.httpUrl.length, 'load section length');
    w.u32(f.load.requestsPerSec, 'requestsPerSec');
    w.u32(f.load.p99Micros, 'p99Micros');
    w.u8(f.load.httpUrl.length, 'httpUrl length');
    w.ascii(f.load.httpUrl, 'httpUrl');
  }
  for (const s of sections) {
    w.u8(s.tag, 'section tag');
    w.u16(s.body.length, 'section length');
    w.bytes(s.body);
  }
  return w.finish();
}

function checkLoad(l: NodeLoad): void {
  if (!isU32(l.requestsPerSec)) bug(`requestsPerSec must be a u32, got ${l.requestsPerSec}`);
  if (!isU32(l.p99Micros)) bug(`p99Micros must be a u32, got ${l.p99Micros}`);
  if (l.httpUrl.length > U8_MAX) bug(`httpUrl of ${l.httpUrl.length} characters exceeds ${U8_MAX}`);
  for (let i = 0; i < l.httpUrl.length; i++) if (!URL_CHAR(l.httpUrl.charCodeAt(i))) bug(`httpUrl ${JSON.stringify(l.httpUrl)} is not printable ASCII`);
}

function checkSections(sections: readonly LivenessSection[]): void {
  let last = LOAD_TAG;
  for (const s of sections) {
    if (!Number.isInteger(s.tag) || s.tag <= last || s.tag > U8_MAX)
      bug(`section tags must ascend within ${LOAD_TAG + 1}..${U8_MAX}, got ${s.tag} after ${last}`);
    if (s.body.length > U16_MAX) bug(`section ${s.tag} of ${s.body.length} bytes exceeds ${U16_MAX}`);
    last = s.tag;
  }
}

/**
 * Decodes {@link encodeLiveness}. CodecError `BadFrame` for a payload of one byte, a worker count
 * of 0, a bitmap shorter than the count says, a set bit past the count, a truncated section,
 * section tags of 0 or not ascending, or a load section whose length or URL does not fit its
 * layout. Sections of unknown tags (2..255) are kept as they came, unread.
 */
export function decodeLiveness(b: Uint8Array): LivenessFrame {
  if (b.length === 0) return { running: [] };
  if (b.length < LIVENESS_FIXED_BYTES) bad(`liveness payload of ${b.length} bytes is truncated`);
  const r = new ByteReader(b);
  const workers = r.u16();
  if (workers === 0) bad('liveness payload names 0 workers');
  const want = LIVENESS_FIXED_BYTES + Math.ceil(workers / 8);
  if (b.length < want) bad(`liveness payload for ${workers} workers needs ${want} bytes, got ${b.length}`);
  const running: boolean[] = [];
  let byte = 0;
  for (let w = 0; w < workers; w++) {
    if ((w & 7) === 0) byte = r.u8();
    running.push((byte & (1 << (w & 7))) !== 0);
  }
  if (workers % 8 !== 0 && byte >> (workers % 8) !== 0) bad('liveness payload sets bits past its worker count');
  let load: NodeLoad | undefined;
  const sections: LivenessSection[] = [];
  let last = 0;
  while (r.left > 0) {
    const tag = r.u8();
    const length = r.u16();
    if (r.short || r.left < length) bad(`liveness section ${tag} is truncated`);
    if (tag <= last) bad(`liveness section tag ${tag} does not ascend (after ${last})`);
    last = tag;
    if (tag === LOAD_TAG) load = decodeLoad(r.view(length));
    else sections.push({ tag, body: r.copy(length) });
  }
  return { running, ...(load === undefined ? {} : { load }), ...(sections.length === 0 ? {} : { sections }) };
}

function decodeLoad(body: Uint8Array): NodeLoad {
  const r = new ByteReader(body);
  const requestsPerSec = r.u32();
  const p99Micros = r.u32();
  const urlBytes = r.u8();
  if (r.short || body.length !== LOAD_FIXED_BYTES + urlBytes) bad(`load section of ${body.length} bytes does not fit its layout`);
  for (let i = LOAD_FIXED_BYTES; i < body.length; i++) if (!URL_CHAR(body[i]!)) bad('load section URL is not printable ASCII');
  return { requestsPerSec, p99Micros, httpUrl: r.latin1(urlBytes) };
}
