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

/** What a request came to: the state machine's reply bytes, or an error with a stable `code`. */
export type Outcome =
  | { readonly ok: true; readonly body: Uint8Array }
  | { readonly ok: false; readonly code: string; readonly message: string; readonly leaderHint: number };

/** The client reused a sequence number older than its last one: the reply is gone. */
export const SESSION_SEQ_STALE = 'SessionSeqStale';

const SESSION_TAG = 0x73; // 's'
const PROPOSAL_HEADER_BYTES = 16;

/**
 * Entry data of a client proposal: client id (f64) and sequence (f64), then the state machine
 * command. Client id 0 means "no session" (the command is applied every time it is committed).
 */
export function encodeProposal(clientId: number, seq: number, command: Uint8Array): Uint8Array {
  const out = new Uint8Array(PROPOSAL_HEADER_BYTES + command.length);
  const v = new DataView(out.buffer);
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

/** Session record: last sequence applied (f64), index of its entry (f64), then the reply it got. */
function encodeSession(seq: number, index: number, reply: Outcome): Uint8Array {
  const enc = new TextEncoder();
  const body = reply.ok ? reply.body : enc.encode(JSON.stringify({ code: reply.code, message: reply.message }));
  const out = new Uint8Array(17 + body.length);
  const v = new DataView(out.buffer);
  v.setFloat64(0, seq, true);
  v.setFloat64(8, index, true);
  v.setUint8(16, reply.ok ? 0 : 1);
  out.set(body, 17);
  return out;
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

/** Applied entries a session outlives its last use; a retry older than this may apply again. */
export const SESSION_TTL_ENTRIES = 100_000;
/** Sessions are swept at every entry whose index is a multiple of this (on every replica alike). */
export const SESSION_SWEEP_EVERY_ENTRIES = 10_000;

/**
 * Called for every applied entry, of any type, in index order: at multiples of
 * SESSION_SWEEP_EVERY_ENTRIES, drops the sessions unused for SESSION_TTL_ENTRIES. Depends only
 * on the index, so every replica (and a replay) drops the same sessions at the same point.
 */
export function afterEntry(target: ApplyTarget, index: number): number {
  if (index % SESSION_SWEEP_EVERY_ENTRIES !== 0) return 0;
  let dropped = 0;
  for (const { key, value } of target.reservedScan(SESSION_PREFIX)) {
    if (decodeSession(value).index < index - SESSION_TTL_ENTRIES) {
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
  assert(e.data.length >= PROPOSAL_HEADER_BYTES, `entry ${e.index} has no proposal header`);
  const v = new DataView(e.data.buffer, e.data.byteOffset, e.data.byteLength);
  const clientId = v.getFloat64(0, true);
  const seq = v.getFloat64(8, true);
  const command = e.data.subarray(PROPOSAL_HEADER_BYTES);
  const run = (): Outcome => ({ ok: true, body: sm.apply(target.txn(), { index: e.index, term: e.term, command }) });
  if (clientId === 0) return { outcome: run(), duplicate: false };
  const key = sessionKey(clientId);
  const prev = target.reservedGet(key);
  if (prev) {
    const session = decodeSession(prev);
    if (seq === session.seq) return { outcome: session.reply, duplicate: true };
    if (seq < session.seq) {
      const message = `client ${clientId} sequence ${seq} is older than its last applied ${session.seq}`;
      return { outcome: { ok: false, code: SESSION_SEQ_STALE, message, leaderHint: 0 }, duplicate: false };
    }
  }
  const outcome = run();
  target.reservedPut(key, encodeSession(seq, e.index, outcome));
  return { outcome, duplicate: false };
}

