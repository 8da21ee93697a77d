/**
 * Client sessions: every proposal carries (client id, sequence); the host remembers each client's
 * last applied sequence and its reply in the data database (under the reserved 0xff prefix, so
 * snapshots carry sessions along), and a retried proposal gets that reply instead of applying
 * again. A client keeps one proposal outstanding per client id (as in the Raft dissertation, 6.3).
 */
import { assert } from './raft/index.js';
import type { Entry } from './raft/index.js';
import type { DataTxn, StateMachine } from './state-machine.js';
import { RESERVED_PREFIX } from './store.js';
import { pooledBytes } from '../wire/index.js';

/** What a request came to: the state machine's reply bytes, or an error with a stable `code`. */
export type Outcome =
  { readonly ok: true; readonly body: Uint8Array } | { readonly ok: false; readonly code: string; readonly message: string; readonly leaderHint: number };

/** The client reused a sequence number older than its last one: the reply is gone. */
export const SESSION_SEQ_STALE = 'SessionSeqStale';

const SESSION_TAG = 0x73; // 's'
/** Bytes of a proposal's entry data before its command: client id and sequence (see encodeProposal). */
export const PROPOSAL_HEADER_BYTES = 16;

/**
 * Entry data of a client proposal: client id (f64) and sequence (f64), then the state machine
 * command. Client id 0 means "no session" (the command is applied every time it is committed).
 */
export function encodeProposal(clientId: number, seq: number, command: Uint8Array): Uint8Array {
  const out = pooledBytes(PROPOSAL_HEADER_BYTES + command.length);
  const v = new DataView(out.buffer, out.byteOffset, PROPOSAL_HEADER_BYTES);
  v.setFloat64(0, clientId, true);
  v.setFloat64(8, seq, true);
  out.set(command, PROPOSAL_HEADER_BYTES);
  return out;
}

const SESSION_PREFIX = new Uint8Array([RESERVED_PREFIX, SESSION_TAG]);

function sessionKey(clientId: number): Uint8Array {
  const k = new Uint8Array(10);
  k[0] = RESERVED_PREFIX;
  k[1] = SESSION_TAG;
  new DataView(k.buffer).setFloat64(2, clientId, false);
  return k;
}

const utf8 = new TextEncoder();

/** Session record: last sequence applied (f64), index of its entry (f64), then the reply it got. */
function encodeSession(seq: number, index: number, reply: Outcome): Uint8Array {
  const body = reply.ok ? reply.body : utf8.encode(JSON.stringify({ code: reply.code, message: reply.message }));
  const out = pooledBytes(17 + body.length);
  const v = new DataView(out.buffer, out.byteOffset, 17);
  v.setFloat64(0, seq, true);
  v.setFloat64(8, index, true);
  v.setUint8(16, reply.ok ? 0 : 1);
  out.set(body, 17);
  return out;
}

/** The last sequence applied of a session record, without decoding the rest (read on every apply). */
function sessionSeq(b: Uint8Array): number {
  return new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true);
}

function decodeSession(b: Uint8Array): { seq: number; index: number; reply: Outcome } {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const seq = v.getFloat64(0, true);
  const index = v.getFloat64(8, true);
  const body = b.slice(17);
  if (v.getUint8(16) === 0) return { seq, index, reply: { ok: true, body } };
  const e = JSON.parse(new TextDecoder().decode(body)) as { code: string; message: string };
  return { seq, index, reply: { ok: false, code: e.code, message: e.message, leaderHint: 0 } };
}

/** Where entries are applied: the shard's data database inside a commit, or a replay copy. */
export interface ApplyTarget {
  txn(): DataTxn;
  /** Host-reserved keys (first byte 0xff): client sessions. */
  reservedGet(key: Uint8Array): Uint8Array | undefined;
  reservedPut(key: Uint8Array, value: Uint8Array): void;
  reservedRemove(key: Uint8Array): void;
  /** Reserved keys starting with `prefix`, in key order (copies). */
  reservedScan(prefix: Uint8Array): { key: Uint8Array; value: Uint8Array }[];
}

/**
 * Applied entries a session outlives its last use, at least. A busy shard applies that many in
 * seconds, so this alone would not make a session outlive its client's retries: see
 * SESSION_TTL_MS.
 */
export const SESSION_TTL_ENTRIES = 100_000;
/**
 * Log time a session outlives its last use, at least, in milliseconds: 12 times the router's
 * default request deadline (5 s), during which it retries a proposal under the same session. Log
 * time is what leaders measured and wrote into the log (see LOG_CLOCK_CLIENT): it never runs
 * ahead of real time, so a session lives at least this long in real time, whatever the wall
 * clocks say. A session expires only once both its TTLs have passed; without log time (a log
 * with no clock entries) it never expires.
 */
export const SESSION_TTL_MS = 60_000;
/** Sessions are swept at every entry whose index is a multiple of this (on every replica alike). */
export const SESSION_SWEEP_EVERY_ENTRIES = 10_000;
/** A leader writes log time at most this often (by its monotonic clock), only while clients write. */
export const LOG_CLOCK_EVERY_MS = 1_000;
/** Log time one clock entry may add at most: a longer stretch counts as this (expiry only comes later). */
export const LOG_CLOCK_STEP_MAX_MS = SESSION_TTL_MS;
/**
 * Client id of a log clock entry: proposed by the shard host as leader (never by a client; the
 * host refuses negative client ids). Its command is an f64 (little endian): the milliseconds the
 * leader's monotonic clock moved since its previous clock entry in the same term (0 for its
 * first one in a term: it cannot know what passed before it led). Applying it adds that step,
 * clamped to [0, LOG_CLOCK_STEP_MAX_MS], to log time. Steps are measured within one leader's
 * term on one monotonic clock, so log time never runs ahead of real time (it lags it when
 * leaders change or write rarely): wall-clock jumps and skew between nodes do not matter.
 */
export const LOG_CLOCK_CLIENT = -1;
/** Log clock marks kept at most; older ones go first (which only delays expiry). */
export const LOG_CLOCK_MARKS_MAX = 1024;

const CLOCK_TAG = 0x63; // 'c'
const CLOCK_KEY = new Uint8Array([RESERVED_PREFIX, CLOCK_TAG]);

/** The command of a log clock entry: the step of log time, in ms. */
export function encodeLogClock(stepMs: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, stepMs, true);
  return b;
}

/** Log clock marks, (index, log time in ms) in index order, time never decreasing; f64 pairs. */
function readMarks(target: ApplyTarget): { index: number; ms: number }[] {
  const b = target.reservedGet(CLOCK_KEY);
  if (!b) return [];
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: { index: number; ms: number }[] = [];
  for (let o = 0; o + 16 <= b.byteLength; o += 16) out.push({ index: v.getFloat64(o, true), ms: v.getFloat64(o + 8, true) });
  return out;
}

function writeMarks(target: ApplyTarget, marks: readonly { index: number; ms: number }[]): void {
  const b = new Uint8Array(marks.length * 16);
  const v = new DataView(b.buffer);
  marks.forEach((m, i) => {
    v.setFloat64(i * 16, m.index, true);
    v.setFloat64(i * 16 + 8, m.ms, true);
  });
  target.reservedPut(CLOCK_KEY, b);
}

/** Position of the newest mark at least SESSION_TTL_MS older than the newest one, or -1. */
function cutOf(marks: readonly { index: number; ms: number }[]): number {
  const newest = marks[marks.length - 1];
  if (newest === undefined) return -1;
  for (let i = marks.length - 1; i >= 0; i--) if (marks[i]!.ms <= newest.ms - SESSION_TTL_MS) return i;
  return -1;
}

function applyLogClock(target: ApplyTarget, index: number, command: Uint8Array): void {
  const step = command.byteLength === 8 ? new DataView(command.buffer, command.byteOffset, 8).getFloat64(0, true) : NaN;
  // A malformed mark (it cannot come from a host, which writes 8 bytes of a finite step) moves nothing.
  if (!Number.isFinite(step)) return;
  const marks = readMarks(target);
  const last = marks[marks.length - 1]?.ms ?? 0;
  marks.push({ index, ms: last + Math.min(LOG_CLOCK_STEP_MAX_MS, Math.max(0, step)) });
  // Marks older than the cut can never decide anything again: about SESSION_TTL_MS /
  // LOG_CLOCK_EVERY_MS marks stay.
  const cut = cutOf(marks);
  if (cut > 0) marks.splice(0, cut);
  if (marks.length > LOG_CLOCK_MARKS_MAX) marks.splice(0, marks.length - LOG_CLOCK_MARKS_MAX);
  writeMarks(target, marks);
}

/**
 * Called for every applied entry, of any type, in index order: at multiples of
 * SESSION_SWEEP_EVERY_ENTRIES, drops the sessions unused for SESSION_TTL_ENTRIES entries and for
 * SESSION_TTL_MS of log time. A session counts as unused for SESSION_TTL_MS when it was last used
 * before a clock mark at least that much older than the newest mark. Depends only on the log, so
 * every replica (and a replay) drops the same sessions at the same point.
 */
export function afterEntry(target: ApplyTarget, index: number): number {
  if (index % SESSION_SWEEP_EVERY_ENTRIES !== 0) return 0;
  const marks = readMarks(target);
  const cut = cutOf(marks);
  if (cut < 0) return 0;
  // Uses before the cut mark's index are at least SESSION_TTL_MS of log time old.
  const cutIndex = marks[cut]!.index;
  let dropped = 0;
  for (const { key, value } of target.reservedScan(SESSION_PREFIX)) {
    const used = decodeSession(value).index;
    if (used < index - SESSION_TTL_ENTRIES && used < cutIndex) {
      target.reservedRemove(key);
      dropped++;
    }
  }
  return dropped;
}

/**
 * Applies one client entry, at most once per (client id, sequence): a retry of the client's last
 * sequence gets the stored reply without applying again; an older sequence is refused.
 */
export function applyEntry(sm: StateMachine, target: ApplyTarget, e: Entry): { outcome: Outcome; duplicate: boolean } {
  if (e.data.length < PROPOSAL_HEADER_BYTES) assert(false, `entry ${e.index} has no proposal header`);
  const v = new DataView(e.data.buffer, e.data.byteOffset, e.data.byteLength);
  const clientId = v.getFloat64(0, true);
  const seq = v.getFloat64(8, true);
  const command = e.data.subarray(PROPOSAL_HEADER_BYTES);
  if (clientId === LOG_CLOCK_CLIENT) {
    applyLogClock(target, e.index, command);
    return { outcome: { ok: true, body: new Uint8Array(0) }, duplicate: false };
  }
  const run = (): Outcome => ({ ok: true, body: sm.apply(target.txn(), { index: e.index, term: e.term, command }) });
  if (clientId === 0) return { outcome: run(), duplicate: false };
  const key = sessionKey(clientId);
  const prev = target.reservedGet(key);
  if (prev) {
    const last = sessionSeq(prev);
    if (seq === last) return { outcome: decodeSession(prev).reply, duplicate: true };
    if (seq < last) {
      const message = `client ${clientId} sequence ${seq} is older than its last applied ${last}`;
      return { outcome: { ok: false, code: SESSION_SEQ_STALE, message, leaderHint: 0 }, duplicate: false };
    }
  }
  const outcome = run();
  target.reservedPut(key, encodeSession(seq, e.index, outcome));
  return { outcome, duplicate: false };
}
