/**
 * The built-in multi-tenant key-value state machine: applies commands and serves queries over the
 * layouts of ./request.ts, ./reply.ts and ./storage.ts.
 */
import { assert } from '../raft/index.js';
import type { LogIndex } from '../raft/index.js';
import type { AppliedCommand, DataReader, DataTxn, StateMachine } from '../state-machine.js';
import { ByteReader, ByteWriter } from '../../wire/index.js';
import { SCAN_REPLY_HEADER_BYTES, resolveKvLimits } from './limits.js';
import type { KvLimits } from './limits.js';
import { checkKvRequest, decodeKvRequest, isKvCommandOp } from './request.js';
import type { GetRequest, KvRequest, ScanRequest } from './request.js';
import { KvErrorCode, KvOp, OP_NAMES, STATUS_OK, encodeKvFailure, failure } from './reply.js';
import type { KvFailure } from './reply.js';
import {
  STORED_HEADER_BYTES,
  addUsage,
  checkStored,
  checkedDataKey,
  compareBytes,
  prefixEnd,
  putDataKey,
  readUsage,
  storedValue,
  tenantPrefixBytes,
} from './storage.js';

/** status u8, version f64. */
const PUT_REPLY_BYTES = 9;
/** status u8, swapped u8, version f64. */
const CAS_REPLY_BYTES = 10;
/** status u8, deleted u8, version f64. */
const DELETE_IF_REPLY_BYTES = 10;
/** status u8, keys f64, bytes f64. */
const USAGE_REPLY_BYTES = 17;

/** Removes a stored key and takes it off its tenant's usage. */
function removeKey(txn: DataTxn, tenant: string, k: Uint8Array, stored: Uint8Array): void {
  txn.remove(k);
  addUsage(txn, tenant, -1, -(k.length - tenantPrefixBytes(tenant) + stored.length - STORED_HEADER_BYTES));
}

/** Removes the key when it is at `expected`; else answers its current version (0: absent). */
function deleteIf(txn: DataTxn, tenant: string, key: Uint8Array, expected: number): Uint8Array {
  const k = checkedDataKey(tenant, key);
  const old = txn.get(k);
  let current = 0;
  if (old !== undefined) {
    checkStored(old);
    current = new ByteReader(old).f64();
  }
  const deleted = current === expected;
  if (deleted) removeKey(txn, tenant, k, old!);
  const w = new ByteWriter(DELETE_IF_REPLY_BYTES);
  w.u8(STATUS_OK);
  w.u8(deleted ? 1 : 0);
  w.f64(deleted ? 0 : current);
  return w.finish();
}

/**
 * The multi-tenant KV. Deterministic: its state is the data database, its only inputs the command
 * bytes and the entry index. Bad input is answered with an error reply ({@link KvErrorCode}); it
 * never throws for bad input, and an exception from it is a broken invariant.
 */
export class KvStateMachine implements StateMachine {
  readonly limits: KvLimits;

  /** Throws KvError InvalidConfig for a limit out of range (see {@link resolveKvLimits}). */
  constructor(limits?: Partial<KvLimits>) {
    this.limits = resolveKvLimits(limits);
  }

  /** Decodes and checks; the request is a {@link KvFailure} when it may not run as `kind`. */
  private parse(bytes: Uint8Array, kind: 'command' | 'query'): KvRequest | KvFailure {
    const r = decodeKvRequest(bytes);
    if ('code' in r) return r;
    const bad = checkKvRequest(r, this.limits);
    if (bad) return bad;
    const isCommand = isKvCommandOp(r.op);
    if (kind === 'command' && !isCommand) return failure(KvErrorCode.BadRequest, `${OP_NAMES[r.op]} is a query; send it as a read, not a proposal`);
    if (kind === 'query' && isCommand) return failure(KvErrorCode.BadRequest, `${OP_NAMES[r.op]} is a command; propose it, not a read`);
    return r;
  }

  validateCommand(command: Uint8Array): { code: string; message: string } | undefined {
    const r = this.parse(command, 'command');
    return 'code' in r ? { code: r.code, message: r.message } : undefined;
  }

  apply(txn: DataTxn, cmd: AppliedCommand): Uint8Array {
    const r = this.parse(cmd.command, 'command');
    if ('code' in r) return encodeKvFailure(r.code, r.message);
    switch (r.op) {
      case KvOp.Put:
        return this.write(txn, r.tenant, r.key, r.value, cmd.index, undefined);
      case KvOp.Cas:
        return this.write(txn, r.tenant, r.key, r.value, cmd.index, r.expectedVersion);
      case KvOp.Delete: {
        const k = checkedDataKey(r.tenant, r.key);
        const old = txn.get(k);
        if (old !== undefined) {
          checkStored(old);
          removeKey(txn, r.tenant, k, old);
        }
        return new Uint8Array([STATUS_OK, old !== undefined ? 1 : 0]);
      }
      case KvOp.DeleteIf:
        return deleteIf(txn, r.tenant, r.key, r.expectedVersion);
      default:
        assert(false, `kv: query op ${r.op} passed the command check`);
    }
  }

  /** Put, or Cas when `expected` is set: the write happens only if the current version equals it. */
  private write(txn: DataTxn, tenant: string, key: Uint8Array, value: Uint8Array, index: LogIndex, expected: number | undefined): Uint8Array {
    const k = checkedDataKey(tenant, key);
    const old = txn.get(k);
    let current = 0;
    let createIndex: number = index;
    if (old !== undefined) {
      checkStored(old);
      const r = new ByteReader(old);
      current = r.f64();
      createIndex = r.f64();
    }
    const swapped = expected === undefined || expected === current;
    const version = swapped ? current + 1 : current;
    if (swapped) {
      txn.put(k, storedValue(version, createIndex, index, value));
      // A new key counts its key and value; an overwrite only the change in value length.
      if (old === undefined) addUsage(txn, tenant, 1, key.length + value.length);
      else addUsage(txn, tenant, 0, value.length - (old.length - STORED_HEADER_BYTES));
    }
    const w = new ByteWriter(expected === undefined ? PUT_REPLY_BYTES : CAS_REPLY_BYTES);
    w.u8(STATUS_OK);
    if (expected !== undefined) w.u8(swapped ? 1 : 0);
    w.f64(version);
    return w.finish();
  }

  query(view: DataReader, request: Uint8Array): Uint8Array {
    const r = this.parse(request, 'query');
    if ('code' in r) return encodeKvFailure(r.code, r.message);
    switch (r.op) {
      case KvOp.Get:
        return get(view, r);
      case KvOp.Scan:
        return this.scan(view, r);
      case KvOp.Usage: {
        const u = readUsage(view, r.tenant);
        const w = new ByteWriter(USAGE_REPLY_BYTES);
        w.u8(STATUS_OK);
        w.f64(u.keys);
        w.f64(u.bytes);
        return w.finish();
      }
      default:
        assert(false, `kv: command op ${r.op} passed the query check`);
    }
  }

  private scan(view: DataReader, r: ScanRequest): Uint8Array {
    const lo = checkedDataKey(r.tenant, r.prefix);
    const hi = prefixEnd(lo);
    let start = lo;
    if (r.startAfter !== undefined) {
      // The smallest key after startAfter is startAfter + 0x00.
      const w = new ByteWriter(tenantPrefixBytes(r.tenant) + r.startAfter.length + 1);
      putDataKey(w, r.tenant, r.startAfter);
      w.u8(0);
      const after = w.finish();
      if (compareBytes(after, start) > 0) start = after;
    }
    const limit = Math.min(r.limit, this.limits.scanLimitMax);
    const w = new ByteWriter(SCAN_REPLY_HEADER_BYTES + 256);
    w.u8(STATUS_OK);
    w.u8(0); // more, known at the end
    w.u32(0); // count, known at the end
    let count = 0;
    let payload = 0;
    let more = false;
    if (compareBytes(start, hi) < 0) {
      const skip = tenantPrefixBytes(r.tenant);
      // Copy each entry at once: a database may reuse the arrays it hands out on the next step.
      for (const { key, value } of view.range(start, hi, limit + 1)) {
        checkStored(value);
        assert(key.length > skip && compareBytes(key, start) >= 0 && compareBytes(key, hi) < 0, 'kv: range returned a key outside [start, end)');
        const keyBytes = key.length - skip;
        const valueBytes = value.length - STORED_HEADER_BYTES;
        // The first item always goes in, so paging makes progress even past a lowered limit.
        if (count === limit || (count > 0 && payload + keyBytes + valueBytes > this.limits.scanBytesMax)) {
          more = true;
          break;
        }
        w.u16(keyBytes, 'key length');
        w.bytes(key.subarray(skip));
        w.bytes(value.subarray(0, 8)); // version, already f64 LE
        w.u32(valueBytes, 'value length');
        w.bytes(value.subarray(STORED_HEADER_BYTES));
        count++;
        payload += keyBytes + valueBytes;
      }
    }
    w.u8At(1, more ? 1 : 0, 'more');
    w.u32At(2, count, 'count');
    return w.finish();
  }
}

function get(view: DataReader, r: GetRequest): Uint8Array {
  const stored = view.get(checkedDataKey(r.tenant, r.key));
  if (stored === undefined) return new Uint8Array([STATUS_OK, 0]);
  checkStored(stored);
  const valueBytes = stored.length - STORED_HEADER_BYTES;
  const w = new ByteWriter(2 + STORED_HEADER_BYTES + 4 + valueBytes);
  w.u8(STATUS_OK);
  w.u8(1); // found
  w.bytes(stored.subarray(0, STORED_HEADER_BYTES)); // version, createIndex, modIndex: f64 LE
  w.u32(valueBytes, 'value length');
  w.bytes(stored.subarray(STORED_HEADER_BYTES));
  return w.finish();
}
