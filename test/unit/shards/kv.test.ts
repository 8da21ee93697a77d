/**
 * The KV state machine: its byte layouts, its semantics (versions, indexes, CAS, delete, scans
 * with paging and budgets), agreement with the reference model in kv-model.ts on random
 * operation sequences over two storage backends (an in-memory sorted store that reuses the
 * arrays it hands out, and real LMDB), determinism, and refusal of bad input with stable codes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { open } from 'lmdb';
import type { Database, RootDatabase } from 'lmdb';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  KEY_BYTES_LIMIT,
  KV_LIMITS_DEFAULT,
  KvError,
  KvErrorCode,
  KvOp,
  KvStateMachine,
  STORE_KEY_BYTES_MAX,
  dataKey,
  decodeKvReply,
  decodeKvRequest,
  encodeCas,
  encodeDelete,
  encodeDeleteIf,
  encodeGet,
  encodePut,
  encodeScan,
  encodeUsage,
  resolveKvLimits,
  usageKey,
} from '../../../src/shards/kv/index.js';
import type { KvLimits, KvReply } from '../../../src/shards/kv/index.js';
import type { DataTxn } from '../../../src/shards/state-machine.js';
import { logIndex, term } from '../../../src/shards/raft/index.js';
import { KvModel, sortEntries } from './kv-model.js';
import type { ModelEntry } from './kv-model.js';

const te = new TextEncoder();
const b = (s: string): Uint8Array => te.encode(s);
const bytes = (...xs: number[]): Uint8Array => new Uint8Array(xs);

function compareBytes(a: Uint8Array, c: Uint8Array): number {
  const n = Math.min(a.length, c.length);
  for (let i = 0; i < n; i++) if (a[i] !== c[i]) return a[i]! - c[i]!;
  return a.length - c.length;
}

function f64(buf: Uint8Array, at: number): number {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getFloat64(at, true);
}

/** Turns raw data-database pairs back into model entries (tests the documented layout); usage records are skipped. */
function toEntries(pairs: Iterable<{ key: Uint8Array; value: Uint8Array }>): ModelEntry[] {
  const out: ModelEntry[] = [];
  for (const { key, value } of pairs) {
    if (key[0] === 0) continue;
    const n = key[0]!;
    out.push({
      tenant: String.fromCharCode(...key.subarray(1, 1 + n)),
      key: new Uint8Array(key.subarray(1 + n)),
      value: new Uint8Array(value.subarray(24)),
      version: f64(value, 0),
      createIndex: f64(value, 8),
      modIndex: f64(value, 16),
    });
  }
  return sortEntries(out);
}

/** The usage records among raw data-database pairs ([0x00][tenant length][tenant] -> keys f64, bytes f64), by tenant. */
function toUsage(pairs: Iterable<{ key: Uint8Array; value: Uint8Array }>): Record<string, { keys: number; bytes: number }> {
  const out: Record<string, { keys: number; bytes: number }> = {};
  for (const { key, value } of pairs) {
    if (key[0] !== 0) continue;
    expect(key[1]).toBe(key.length - 2);
    expect(value.length).toBe(16);
    out[String.fromCharCode(...key.subarray(2))] = { keys: f64(value, 0), bytes: f64(value, 8) };
  }
  return out;
}

/**
 * A sorted in-memory data database. `range` hands out views of two scratch arrays that the next
 * step overwrites, the worst a real database may do, so a state machine that keeps them breaks.
 */
class MemoryData implements DataTxn {
  private keys: Uint8Array[] = [];
  private values: Uint8Array[] = [];

  private find(key: Uint8Array): { i: number; found: boolean } {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareBytes(this.keys[mid]!, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return { i: lo, found: lo < this.keys.length && compareBytes(this.keys[lo]!, key) === 0 };
  }

  get(key: Uint8Array): Uint8Array | undefined {
    const { i, found } = this.find(key);
    return found ? this.values[i]!.slice() : undefined;
  }

  put(key: Uint8Array, value: Uint8Array): void {
    expect(key.length).toBeGreaterThan(0);
    expect(key[0]).not.toBe(0xff);
    const { i, found } = this.find(key);
    if (found) this.values[i] = value.slice();
    else {
      this.keys.splice(i, 0, key.slice());
      this.values.splice(i, 0, value.slice());
    }
  }

  remove(key: Uint8Array): void {
    const { i, found } = this.find(key);
    if (found) {
      this.keys.splice(i, 1);
      this.values.splice(i, 1);
    }
  }

  *range(start: Uint8Array, end: Uint8Array, limit: number): Iterable<{ readonly key: Uint8Array; readonly value: Uint8Array }> {
    const scratchKey = new Uint8Array(4096);
    const scratchValue = new Uint8Array(1 << 16);
    let n = 0;
    for (let i = this.find(start).i; i < this.keys.length && n < limit; i++, n++) {
      const k = this.keys[i]!;
      if (compareBytes(k, end) >= 0) return;
      const v = this.values[i]!;
      scratchKey.fill(0xee);
      scratchValue.fill(0xee);
      scratchKey.set(k);
      scratchValue.set(v);
      yield { key: scratchKey.subarray(0, k.length), value: scratchValue.subarray(0, v.length) };
    }
  }

  pairs(): { key: Uint8Array; value: Uint8Array }[] {
    return this.keys.map((key, i) => ({ key, value: this.values[i]! }));
  }
}

/** Runs a state machine over one backend: apply in a write transaction, query outside. */
interface Backend {
  apply(cmd: Uint8Array, index: number): Uint8Array;
  query(req: Uint8Array): Uint8Array;
  entries(): ModelEntry[];
  /** The usage records as stored. */
  usage(): Record<string, { keys: number; bytes: number }>;
}

function memoryBackend(sm: KvStateMachine, data = new MemoryData()): Backend {
  return {
    apply: (cmd, index) => sm.apply(data, { index: logIndex(index), term: term(1), command: cmd }),
    query: (req) => sm.query(data, req),
    entries: () => toEntries(data.pairs()),
    usage: () => toUsage(data.pairs()),
  };
}

/** The data database of the shard store, minus the reserved-key checks: the same lmdb calls. */
function lmdbAccess(db: Database<Buffer, Buffer>): DataTxn {
  return {
    // A view, not a copy: lmdb only reads the key.
    get: (key) => db.get(Buffer.from(key.buffer, key.byteOffset, key.byteLength)),
    put: (key, value) => {
      expect(key[0]).not.toBe(0xff);
      db.putSync(Buffer.from(key), Buffer.from(value));
    },
    remove: (key) => {
      db.removeSync(Buffer.from(key));
    },
    range: (start, end, limit) => db.getRange({ start: Buffer.from(start), end: Buffer.from(end), limit }),
  };
}

let lmdbDir = '';
let env: RootDatabase;
let lmdbDb: Database<Buffer, Buffer>;

beforeAll(() => {
  lmdbDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kv-test-'));
  // noSync: these tests never crash the process, and an fsync per command makes them slow.
  env = open({ path: lmdbDir, noSync: true });
  lmdbDb = env.openDB<Buffer, Buffer>({ name: 'data', keyEncoding: 'binary', encoding: 'binary' });
});

afterAll(async () => {
  await env.close();
  fs.rmSync(lmdbDir, { recursive: true, force: true });
});

/** A backend on the shared LMDB database, emptied first. */
function lmdbBackend(sm: KvStateMachine): Backend {
  lmdbDb.clearSync();
  const access = lmdbAccess(lmdbDb);
  return {
    apply: (cmd, index) => env.transactionSync(() => sm.apply(access, { index: logIndex(index), term: term(1), command: cmd })),
    query: (req) => sm.query(access, req),
    entries: () => toEntries(lmdbDb.getRange({})),
    usage: () => toUsage(lmdbDb.getRange({})),
  };
}

/** The op to decode a reply with: the request's, or any op for garbage (its reply is an error). */
const opOf = (req: Uint8Array): KvOp => {
  const op = req[0];
  return op !== undefined && op >= 1 && op <= KvOp.Usage ? (op as KvOp) : KvOp.Put;
};

const decode = (req: Uint8Array, reply: Uint8Array): KvReply => decodeKvReply(opOf(req), reply);

describe('layouts', () => {
  test('a data key is [tenant length][tenant][key]; a tenant is never a prefix of another', () => {
    expect(dataKey('ab', bytes(1, 2))).toEqual(bytes(2, 0x61, 0x62, 1, 2));
    expect(dataKey('a', b('bc'))).not.toEqual(dataKey('ab', b('c')));
    expect(() => dataKey('a b', bytes(1))).toThrow();
  });

  test('requests are little-endian with length-prefixed fields', () => {
    const put = encodePut('t', bytes(7), bytes(8, 9));
    expect(put).toEqual(bytes(KvOp.Put, 1, 0x74, 1, 0, 7, 2, 0, 0, 0, 8, 9));
    const cas = encodeCas('t', bytes(7), 3, bytes());
    expect(cas.length).toBe(1 + 2 + 3 + 8 + 4);
    expect(f64(cas, 6)).toBe(3);
    const scan = encodeScan('t', bytes(1), 258, bytes(5, 6));
    expect(scan).toEqual(bytes(KvOp.Scan, 1, 0x74, 1, 0, 1, 2, 1, 0, 0, 2, 0, 5, 6));
    expect(encodeScan('t', bytes(), 1)).toEqual(bytes(KvOp.Scan, 1, 0x74, 0, 0, 1, 0, 0, 0, 0, 0));
    expect(decodeKvRequest(scan)).toEqual({ op: KvOp.Scan, tenant: 't', prefix: bytes(1), limit: 258, startAfter: bytes(5, 6) });
    expect(decodeKvRequest(encodeDelete('x', bytes(1)))).toEqual({ op: KvOp.Delete, tenant: 'x', key: bytes(1) });
  });

  test('stored value is [version][createIndex][modIndex][value]; replies start with a status byte', () => {
    const data = new MemoryData();
    const sm = new KvStateMachine();
    const reply = sm.apply(data, { index: logIndex(42), term: term(3), command: encodePut('ten', b('k'), b('v')) });
    expect(reply[0]).toBe(0);
    expect(f64(reply, 1)).toBe(1);
    const stored = data.get(dataKey('ten', b('k')))!;
    expect([f64(stored, 0), f64(stored, 8), f64(stored, 16)]).toEqual([1, 42, 42]);
    expect(stored.subarray(24)).toEqual(b('v'));
    const err = sm.query(data, bytes(9));
    expect(err[0]).toBe(1);
    expect(String.fromCharCode(...err.subarray(2, 2 + err[1]!))).toBe('BadRequest');
    expect(new TextDecoder().decode(err.subarray(2 + err[1]!))).toBe('unknown op 9');
  });

  test('decoded byte fields are plain Uint8Arrays even from Buffers', () => {
    const r = decodeKvRequest(Buffer.from(encodePut('t', bytes(1), bytes(2))));
    expect('code' in r).toBe(false);
    if (!('code' in r) && r.op === KvOp.Put) {
      expect(r.key.constructor).toBe(Uint8Array);
      expect(r.value.constructor).toBe(Uint8Array);
    }
  });
});

describe.each([
  ['memory', (sm: KvStateMachine) => memoryBackend(sm)],
  ['lmdb', (sm: KvStateMachine) => lmdbBackend(sm)],
])('semantics on %s', (_name, make) => {
  const run = (limits?: Partial<KvLimits>) => {
    const be = make(new KvStateMachine(limits));
    return {
      be,
      cmd: (req: Uint8Array, index: number) => decode(req, be.apply(req, index)),
      read: (req: Uint8Array) => decode(req, be.query(req)),
    };
  };

  test('versions count writes; createIndex stays, modIndex follows; delete resets', () => {
    const { cmd, read } = run();
    const k = b('k');
    expect(cmd(encodePut('t', k, b('1')), 5)).toEqual({ ok: true, op: KvOp.Put, version: 1 });
    expect(cmd(encodePut('t', k, b('2')), 7)).toEqual({ ok: true, op: KvOp.Put, version: 2 });
    expect(read(encodeGet('t', k))).toEqual({ ok: true, op: KvOp.Get, found: true, value: b('2'), version: 2, createIndex: 5, modIndex: 7 });
    expect(cmd(encodePut('t', k, b('3')), 8)).toEqual({ ok: true, op: KvOp.Put, version: 3 });
    expect(read(encodeGet('t', k))).toMatchObject({ found: true, version: 3, createIndex: 5, modIndex: 8 });
    expect(cmd(encodeDelete('t', k), 9)).toEqual({ ok: true, op: KvOp.Delete, deleted: true });
    expect(cmd(encodeDelete('t', k), 10)).toEqual({ ok: true, op: KvOp.Delete, deleted: false });
    expect(read(encodeGet('t', k))).toEqual({ ok: true, op: KvOp.Get, found: false });
    expect(cmd(encodePut('t', k, bytes()), 11)).toEqual({ ok: true, op: KvOp.Put, version: 1 });
    expect(read(encodeGet('t', k))).toEqual({ ok: true, op: KvOp.Get, found: true, value: bytes(), version: 1, createIndex: 11, modIndex: 11 });
  });

  test('a conditional delete removes the key only at the expected version; a mismatch carries the current version', () => {
    const { cmd, read } = run();
    const k = b('d');
    expect(cmd(encodeDeleteIf('t', k, 1), 1)).toEqual({ ok: true, op: KvOp.DeleteIf, deleted: false, version: 0 });
    expect(cmd(encodePut('t', k, b('a')), 2)).toEqual({ ok: true, op: KvOp.Put, version: 1 });
    expect(cmd(encodePut('t', k, b('b')), 3)).toEqual({ ok: true, op: KvOp.Put, version: 2 });
    expect(cmd(encodeDeleteIf('t', k, 1), 4)).toEqual({ ok: true, op: KvOp.DeleteIf, deleted: false, version: 2 });
    expect(read(encodeGet('t', k))).toMatchObject({ found: true, version: 2, value: b('b') });
    expect(cmd(encodeDeleteIf('t', k, 2), 5)).toEqual({ ok: true, op: KvOp.DeleteIf, deleted: true, version: 0 });
    expect(read(encodeGet('t', k))).toEqual({ ok: true, op: KvOp.Get, found: false });
    for (const bad of [0, -1, 1.5, NaN, Infinity]) expect(cmd(encodeDeleteIf('t', k, bad), 6)).toMatchObject({ ok: false, code: 'BadRequest' });
    expect(decodeKvRequest(encodeDeleteIf('x', bytes(1), 7))).toEqual({ op: KvOp.DeleteIf, tenant: 'x', key: bytes(1), expectedVersion: 7 });
    expect(decodeKvRequest(encodeDeleteIf('x', bytes(1), 7).subarray(0, 10))).toMatchObject({ ok: false, code: 'BadRequest' });
  });

  test('CAS writes only on a version match; a mismatch is a normal reply carrying the current version', () => {
    const { cmd, read } = run();
    const k = b('c');
    expect(cmd(encodeCas('t', k, 3, b('x')), 1)).toEqual({ ok: true, op: KvOp.Cas, swapped: false, version: 0 });
    expect(read(encodeGet('t', k))).toEqual({ ok: true, op: KvOp.Get, found: false });
    expect(cmd(encodeCas('t', k, 0, b('a')), 2)).toEqual({ ok: true, op: KvOp.Cas, swapped: true, version: 1 });
    expect(cmd(encodeCas('t', k, 0, b('b')), 3)).toEqual({ ok: true, op: KvOp.Cas, swapped: false, version: 1 });
    expect(cmd(encodeCas('t', k, 1, b('c')), 4)).toEqual({ ok: true, op: KvOp.Cas, swapped: true, version: 2 });
    expect(read(encodeGet('t', k))).toEqual({ ok: true, op: KvOp.Get, found: true, value: b('c'), version: 2, createIndex: 2, modIndex: 4 });
  });

  test('tenants are isolated, also when one tenant name is a prefix of another', () => {
    const { cmd, read } = run();
    cmd(encodePut('a', b('bc'), b('1')), 1);
    cmd(encodePut('ab', b('c'), b('2')), 2);
    cmd(encodePut('b', b('x'), b('3')), 3);
    const scanA = read(encodeScan('a', bytes(), 100));
    expect(scanA).toEqual({ ok: true, op: KvOp.Scan, more: false, items: [{ key: b('bc'), value: b('1'), version: 1 }] });
    expect(read(encodeGet('ab', b('bc')))).toEqual({ ok: true, op: KvOp.Get, found: false });
  });

  test('usage counts keys and key + value bytes per tenant: put, overwrite, cas, delete, conditional delete', () => {
    const { cmd, read, be } = run();
    const usage = (t: string) => read(encodeUsage(t));
    const is = (keys: number, bytes: number) => ({ ok: true, op: KvOp.Usage, keys, bytes });
    expect(usage('t')).toEqual(is(0, 0));
    cmd(encodePut('t', b('k1'), b('abc')), 1);
    expect(usage('t')).toEqual(is(1, 5));
    cmd(encodePut('t', b('k1'), b('abcdef')), 2); // overwrite: only the value's growth
    expect(usage('t')).toEqual(is(1, 8));
    cmd(encodePut('t', b('k1'), b('a')), 3); // and its shrinking
    expect(usage('t')).toEqual(is(1, 3));
    cmd(encodeCas('t', b('k2'), 0, b('xy')), 4);
    expect(usage('t')).toEqual(is(2, 7));
    cmd(encodeCas('t', b('k2'), 5, b('a much longer value')), 5); // not swapped: not counted
    expect(usage('t')).toEqual(is(2, 7));
    cmd(encodeCas('t', b('k2'), 1, b('xyz')), 6);
    expect(usage('t')).toEqual(is(2, 8));
    cmd(encodeDeleteIf('t', b('k2'), 7), 7); // wrong version: not deleted, not counted
    expect(usage('t')).toEqual(is(2, 8));
    cmd(encodeDeleteIf('t', b('k2'), 2), 8);
    expect(usage('t')).toEqual(is(1, 3));
    cmd(encodeDelete('t', b('nope')), 9);
    expect(usage('t')).toEqual(is(1, 3));
    cmd(encodeDelete('t', b('k1')), 10);
    expect(usage('t')).toEqual(is(0, 0));
    expect(be.usage()).toEqual({}); // the record goes with the last key
    cmd(encodePut('t', b('k'), bytes()), 11); // an empty value still counts its key
    expect(usage('t')).toEqual(is(1, 1));
  });

  test('usage is per tenant, also when one tenant name is a prefix of another; no scan meets a usage record', () => {
    const { cmd, read, be } = run();
    cmd(encodePut('a', b('bc'), b('1')), 1);
    cmd(encodePut('ab', b('c'), b('22')), 2);
    cmd(encodePut('ab', b('d'), b('333')), 3);
    expect(read(encodeUsage('a'))).toEqual({ ok: true, op: KvOp.Usage, keys: 1, bytes: 3 });
    expect(read(encodeUsage('ab'))).toEqual({ ok: true, op: KvOp.Usage, keys: 2, bytes: 7 });
    expect(read(encodeUsage('b'))).toEqual({ ok: true, op: KvOp.Usage, keys: 0, bytes: 0 });
    expect(be.usage()).toEqual({ a: { keys: 1, bytes: 3 }, ab: { keys: 2, bytes: 7 } });
    expect(usageKey('ab')).toEqual(bytes(0, 2, 0x61, 0x62));
    // A client key made of usage-record bytes stays inside its tenant's range.
    cmd(encodePut('a', bytes(0, 1, 0x61), b('x')), 4);
    expect(read(encodeScan('a', bytes(), 100))).toMatchObject({ items: [{ key: bytes(0, 1, 0x61) }, { key: b('bc') }] });
    expect(read(encodeUsage('a'))).toEqual({ ok: true, op: KvOp.Usage, keys: 2, bytes: 7 });
  });

  test('paging with startAfter visits every key with the prefix once, in order, including 0xff bytes', () => {
    const { cmd, read } = run();
    const keys = [bytes(0), bytes(1), bytes(0xff), bytes(0xff, 0), bytes(0xff, 0xff), bytes(0xff, 0xff, 1), bytes(0xff, 0xff, 0xff)];
    for (let i = 0; i < 20; i++) keys.push(bytes(0x61, i));
    keys.forEach((k, i) => cmd(encodePut('p', k, bytes(i)), i + 1));
    cmd(encodePut('q', bytes(0), bytes()), 100); // the next tenant's keys follow: a scan must stop before them
    for (const [prefix, pageSize] of [
      [bytes(), 3],
      [bytes(0xff), 2],
      [bytes(0xff, 0xff), 1],
      [bytes(0x61), 7],
      [bytes(0x62), 5],
    ] as const) {
      const want = keys.filter((k) => prefix.every((x, i) => k[i] === x)).sort(compareBytes);
      const got: Uint8Array[] = [];
      let after: Uint8Array | undefined;
      for (;;) {
        const r = read(encodeScan('p', prefix, pageSize, after));
        if (!r.ok || r.op !== KvOp.Scan) throw new Error(`scan failed: ${JSON.stringify(r)}`);
        expect(r.items.length).toBeLessThanOrEqual(pageSize);
        got.push(...r.items.map((it) => it.key));
        if (!r.more) break;
        after = r.items[r.items.length - 1]!.key;
      }
      expect(got).toEqual(want);
    }
  });

  test('startAfter before the prefix starts at the prefix; after it, the scan is empty', () => {
    const { cmd, read } = run();
    cmd(encodePut('t', b('b'), b('')), 1); // between startAfter and the prefix: must not show up
    cmd(encodePut('t', b('m1'), b('')), 2);
    cmd(encodePut('t', b('m2'), b('')), 3);
    const keysOf = (r: KvReply) => (r.ok && r.op === KvOp.Scan ? r.items.map((i) => i.key) : r);
    expect(keysOf(read(encodeScan('t', b('m'), 10, b('a'))))).toEqual([b('m1'), b('m2')]);
    expect(keysOf(read(encodeScan('t', b('m'), 10, b('m1'))))).toEqual([b('m2')]);
    expect(keysOf(read(encodeScan('t', b('m'), 10, b('z'))))).toEqual([]);
  });

  test('scan limits: capped by scanLimitMax, and a byte budget that always lets the first item through', () => {
    const { cmd, read } = run({ scanLimitMax: 3, keyBytesMax: 4, valueBytesMax: 10, scanBytesMax: 14 });
    for (let i = 0; i < 5; i++) cmd(encodePut('t', bytes(i), new Uint8Array(3)), i + 1); // 4 bytes an item
    const huge = read(encodeScan('t', bytes(), 0xffff_ffff));
    expect(huge.ok && huge.op === KvOp.Scan && [huge.items.length, huge.more]).toEqual([3, true]);
    cmd(encodePut('t', bytes(1), new Uint8Array(10)), 10); // 11 bytes: with item 0 over 14, and item 2 over it
    const r = read(encodeScan('t', bytes(), 5));
    expect(r.ok && r.op === KvOp.Scan && [r.items.map((i) => i.key[0]), r.more]).toEqual([[0], true]);
    const next = read(encodeScan('t', bytes(), 5, bytes(0)));
    expect(next.ok && next.op === KvOp.Scan && [next.items.map((i) => i.key[0]), next.more]).toEqual([[1], true]);
  });

  test('largest tenant and key stay within the store key size, also as a scan start', () => {
    const limits = { keyBytesMax: KEY_BYTES_LIMIT, valueBytesMax: 16, scanBytesMax: 4096 };
    const { cmd, read } = run(limits);
    const tenant = 'T'.repeat(64);
    const key = new Uint8Array(KEY_BYTES_LIMIT).fill(0xff);
    expect(dataKey(tenant, key).length + 1).toBe(STORE_KEY_BYTES_MAX);
    expect(cmd(encodePut(tenant, key, b('v')), 1)).toEqual({ ok: true, op: KvOp.Put, version: 1 });
    expect(read(encodeScan(tenant, key, 5, key))).toEqual({ ok: true, op: KvOp.Scan, items: [], more: false });
    const short = key.slice(1);
    expect(read(encodeScan(tenant, bytes(), 5, short))).toEqual({ ok: true, op: KvOp.Scan, items: [{ key, value: b('v'), version: 1 }], more: false });
    expect(cmd(encodeDelete(tenant, key), 2)).toEqual({ ok: true, op: KvOp.Delete, deleted: true });
  });
});

test('keys stored before usage was counted: deleting them stops the count at zero, never below', () => {
  const data = new MemoryData();
  const be = memoryBackend(new KvStateMachine(), data);
  // A key as an older version stored it: the value with its header, and no usage record.
  const header = new Uint8Array(24);
  new DataView(header.buffer).setFloat64(0, 1, true);
  data.put(dataKey('old', b('k1')), new Uint8Array([...header, ...b('value')]));
  data.put(dataKey('old', b('k2')), new Uint8Array([...header, ...b('value')]));
  be.apply(encodePut('old', b('k3'), b('v')), 1);
  expect(decode(encodeUsage('old'), be.query(encodeUsage('old')))).toMatchObject({ keys: 1, bytes: 3 });
  be.apply(encodeDelete('old', b('k1')), 2);
  expect(be.usage()).toEqual({});
  be.apply(encodeDelete('old', b('k2')), 3);
  expect(decode(encodeUsage('old'), be.query(encodeUsage('old')))).toMatchObject({ keys: 0, bytes: 0 });
  be.apply(encodePut('old', b('k4'), b('vv')), 4);
  expect(be.usage()).toEqual({ old: { keys: 1, bytes: 4 } });
});

test('a scan returns its first item even when it alone exceeds scanBytesMax (limits lowered later)', () => {
  const data = new MemoryData();
  const wide = new KvStateMachine();
  wide.apply(data, { index: logIndex(1), term: term(1), command: encodePut('t', b('k1'), new Uint8Array(100)) });
  wide.apply(data, { index: logIndex(2), term: term(1), command: encodePut('t', b('k2'), new Uint8Array(100)) });
  const narrow = new KvStateMachine({ keyBytesMax: 4, valueBytesMax: 10, scanBytesMax: 14 });
  const r = decodeKvReply(KvOp.Scan, narrow.query(data, encodeScan('t', bytes(), 10)));
  expect(r.ok && [r.items.map((i) => i.key), r.more]).toEqual([[b('k1')], true]);
});

describe('lmdb assumptions', () => {
  test('keys above STORE_KEY_BYTES_MAX throw on put; values and keys come back as Buffer copies', () => {
    expect(() => env.transactionSync(() => lmdbDb.putSync(Buffer.alloc(STORE_KEY_BYTES_MAX + 1, 1), Buffer.from([1])))).toThrow(/key size/i);
    lmdbDb.clearSync();
    env.transactionSync(() => {
      lmdbDb.putSync(Buffer.from([1]), Buffer.from([1]));
      lmdbDb.putSync(Buffer.from([2]), Buffer.from([2]));
    });
    const got = [...lmdbDb.getRange({ start: Buffer.from([1]), end: Buffer.from([3]) })];
    expect(got.map((e) => [e.key[0], e.value[0]])).toEqual([
      [1, 1],
      [2, 2],
    ]);
    expect(Buffer.isBuffer(got[0]!.key)).toBe(true);
    // A Buffer never equals a Uint8Array with the same bytes under toEqual, hence decoded replies.
    expect(Buffer.from([1])).not.toEqual(bytes(1));
  });
});

// ------------------------------------------------------------------------- random sequences

const PROP_LIMITS: Partial<KvLimits> = { keyBytesMax: 3, valueBytesMax: 6, scanLimitMax: 4, scanBytesMax: 12 };
const KEYS = [bytes(0x61), bytes(0x61, 0x62), bytes(0x61, 0xff), bytes(0x62), bytes(0xff), bytes(0xff, 0xff), bytes(0), bytes(0x61, 0x62, 0x63)];

const tenantArb = fc.oneof(
  { weight: 20, arbitrary: fc.constantFrom('a', 'ab', 'b', 'T-1.x_') },
  { weight: 1, arbitrary: fc.constantFrom('', 'a b', 'x'.repeat(65), 'é', 'a/b') },
);
const keyArb = fc.oneof({ weight: 20, arbitrary: fc.constantFrom(...KEYS) }, { weight: 1, arbitrary: fc.constantFrom(bytes(), bytes(1, 2, 3, 4)) });
const valueArb = fc.oneof({ weight: 20, arbitrary: fc.uint8Array({ maxLength: 6 }) }, { weight: 1, arbitrary: fc.constant(new Uint8Array(7)) });
const versionArb = fc.oneof({ weight: 20, arbitrary: fc.integer({ min: 0, max: 4 }) }, { weight: 1, arbitrary: fc.constantFrom(-1, 0.5, NaN, Infinity) });
const prefixArb = fc.oneof(
  { weight: 20, arbitrary: fc.constantFrom(bytes(), bytes(0x61), bytes(0xff), bytes(0x61, 0xff), bytes(0), bytes(0x61, 0x62)) },
  { weight: 1, arbitrary: fc.constant(bytes(1, 2, 3, 4)) },
);
const limitArb = fc.oneof({ weight: 20, arbitrary: fc.integer({ min: 1, max: 6 }) }, { weight: 1, arbitrary: fc.constantFrom(0, 0xffff_ffff) });

/** One step: a request, and whether it goes through the log (apply) or is a read (query). */
interface Step {
  readonly via: 'apply' | 'query';
  readonly req: Uint8Array;
}

/** Well-formed requests (valid or not by the limits); the first byte is always the op. */
const requestArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(tenantArb, keyArb, valueArb).map(([t, k, v]) => encodePut(t, k, v)) },
  { weight: 3, arbitrary: fc.tuple(tenantArb, keyArb).map(([t, k]) => encodeDelete(t, k)) },
  { weight: 3, arbitrary: fc.tuple(tenantArb, keyArb, versionArb).map(([t, k, x]) => encodeDeleteIf(t, k, x)) },
  { weight: 4, arbitrary: fc.tuple(tenantArb, keyArb, versionArb, valueArb).map(([t, k, x, v]) => encodeCas(t, k, x, v)) },
  { weight: 3, arbitrary: fc.tuple(tenantArb, keyArb).map(([t, k]) => encodeGet(t, k)) },
  { weight: 2, arbitrary: tenantArb.map((t) => encodeUsage(t)) },
  {
    weight: 4,
    arbitrary: fc.tuple(tenantArb, prefixArb, limitArb, fc.option(keyArb, { nil: undefined })).map(([t, p, l, a]) => encodeScan(t, p, l, a)),
  },
);

const stepArb: fc.Arbitrary<Step> = fc.oneof({ weight: 20, arbitrary: requestArb }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 12 }) }).chain((req) => {
  const proper = req[0] === KvOp.Get || req[0] === KvOp.Scan || req[0] === KvOp.Usage ? 'query' : 'apply';
  const other = proper === 'apply' ? 'query' : 'apply';
  return fc.oneof({ weight: 15, arbitrary: fc.constant(proper) }, { weight: 1, arbitrary: fc.constant(other) }).map((via): Step => ({ via, req }));
});

function runSteps(be: Backend, steps: readonly Step[]): Uint8Array[] {
  return steps.map((s, i) => (s.via === 'apply' ? be.apply(s.req, i + 1) : be.query(s.req)));
}

describe('state machine and model agree', () => {
  test('on every reply and on the final state, over memory and LMDB', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 80, size: 'max' }), (steps) => {
        const model = new KvModel(PROP_LIMITS);
        const mem = memoryBackend(new KvStateMachine(PROP_LIMITS));
        const lm = lmdbBackend(new KvStateMachine(PROP_LIMITS));
        steps.forEach((s, i) => {
          const want = s.via === 'apply' ? model.apply(s.req, i + 1) : model.query(s.req);
          const a = s.via === 'apply' ? mem.apply(s.req, i + 1) : mem.query(s.req);
          const c = s.via === 'apply' ? lm.apply(s.req, i + 1) : lm.query(s.req);
          expect(c).toEqual(a);
          expect(decode(s.req, a)).toEqual(want);
        });
        const final = model.entries();
        expect(mem.entries()).toEqual(final);
        expect(lm.entries()).toEqual(final);
        // A usage record for exactly the tenants with keys, holding what their keys add up to.
        const usage = Object.fromEntries(model.tenantNames().map((t) => [t, model.usage(t)]));
        expect(mem.usage()).toEqual(usage);
        expect(lm.usage()).toEqual(usage);
      }),
      { numRuns: 300 },
    );
  });

  test('two runs of the same sequence give byte-identical replies', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 80, size: 'max' }), (steps) => {
        const first = runSteps(memoryBackend(new KvStateMachine(PROP_LIMITS)), steps);
        const second = runSteps(memoryBackend(new KvStateMachine(PROP_LIMITS)), steps);
        expect(second).toEqual(first);
      }),
      { numRuns: 100 },
    );
  });
});

// --------------------------------------------------------------------------------- bad input

describe('bad input', () => {
  const sm = new KvStateMachine(PROP_LIMITS);

  /** validateCommand, apply and query on fresh state; none may throw. */
  function outcomes(req: Uint8Array): { valid: ReturnType<KvStateMachine['validateCommand']>; applied: KvReply; queried: KvReply } {
    const data = new MemoryData();
    const valid = sm.validateCommand(req);
    const applied = decode(req, sm.apply(data, { index: logIndex(1), term: term(1), command: req }));
    const queried = decode(req, sm.query(data, req));
    return { valid, applied, queried };
  }

  test('random bytes: validateCommand refuses exactly what apply answers with an error, and the model agrees', () => {
    const raw = fc.oneof(
      fc.uint8Array({ maxLength: 40 }),
      fc.tuple(fc.integer({ min: 0, max: 7 }), fc.uint8Array({ maxLength: 40 })).map(([op, rest]) => new Uint8Array([op, ...rest])),
    );
    fc.assert(
      fc.property(raw, (req) => {
        const { valid, applied, queried } = outcomes(req);
        if (valid) expect(applied).toEqual({ ok: false, ...valid });
        else expect(applied.ok).toBe(true);
        expect(applied).toEqual(new KvModel(PROP_LIMITS).apply(req, 1));
        expect(queried).toEqual(new KvModel(PROP_LIMITS).query(req));
      }),
      { numRuns: 2000 },
    );
  });

  test('every truncation and every extension of a request is a BadRequest', () => {
    fc.assert(
      fc.property(requestArb, fc.uint8Array({ minLength: 1, maxLength: 3 }), (req, extra) => {
        for (let n = 0; n < req.length; n++) {
          const { valid, applied, queried } = outcomes(req.subarray(0, n));
          expect(valid?.code).toBe(KvErrorCode.BadRequest);
          expect(applied).toMatchObject({ ok: false, code: KvErrorCode.BadRequest });
          expect(queried).toMatchObject({ ok: false, code: KvErrorCode.BadRequest });
        }
        const { valid, queried } = outcomes(new Uint8Array([...req, ...extra]));
        expect(valid?.code).toBe(KvErrorCode.BadRequest);
        expect(valid?.message).toMatch(/trailing/);
        expect(queried).toMatchObject({ ok: false, code: KvErrorCode.BadRequest });
      }),
      { numRuns: 300 },
    );
  });

  const cases: [string, Uint8Array, 'command' | 'query', KvErrorCode][] = [
    ['empty request', bytes(), 'command', KvErrorCode.BadRequest],
    ['unknown op', bytes(0x63, 1, 0x61, 1, 0, 1), 'command', KvErrorCode.BadRequest],
    ['usage proposed', encodeUsage('t'), 'command', KvErrorCode.BadRequest],
    ['usage of a bad tenant', encodeUsage('a b'), 'query', KvErrorCode.InvalidTenant],
    ['query proposed', encodeGet('t', bytes(1)), 'command', KvErrorCode.BadRequest],
    ['command read', encodePut('t', bytes(1), bytes()), 'query', KvErrorCode.BadRequest],
    ['empty tenant', encodePut('', bytes(1), bytes()), 'command', KvErrorCode.InvalidTenant],
    ['65-byte tenant', encodeDelete('x'.repeat(65), bytes(1)), 'command', KvErrorCode.InvalidTenant],
    ['tenant with a space', encodeCas('a b', bytes(1), 0, bytes()), 'command', KvErrorCode.InvalidTenant],
    ['non-ASCII tenant', encodeGet('é', bytes(1)), 'query', KvErrorCode.InvalidTenant],
    ['tenant with a slash', encodeScan('a/b', bytes(), 1), 'query', KvErrorCode.InvalidTenant],
    ['empty key', encodePut('t', bytes(), bytes()), 'command', KvErrorCode.EmptyKey],
    ['empty key get', encodeGet('t', bytes()), 'query', KvErrorCode.EmptyKey],
    ['oversized key', encodePut('t', bytes(1, 2, 3, 4), bytes()), 'command', KvErrorCode.KeyTooLarge],
    ['oversized prefix', encodeScan('t', bytes(1, 2, 3, 4), 1), 'query', KvErrorCode.KeyTooLarge],
    ['oversized startAfter', encodeScan('t', bytes(), 1, bytes(1, 2, 3, 4)), 'query', KvErrorCode.KeyTooLarge],
    ['oversized value', encodePut('t', bytes(1), new Uint8Array(7)), 'command', KvErrorCode.ValueTooLarge],
    ['oversized cas value', encodeCas('t', bytes(1), 1, new Uint8Array(7)), 'command', KvErrorCode.ValueTooLarge],
    ['negative expectedVersion', encodeCas('t', bytes(1), -1, bytes()), 'command', KvErrorCode.BadRequest],
    ['fractional expectedVersion', encodeCas('t', bytes(1), 1.5, bytes()), 'command', KvErrorCode.BadRequest],
    ['NaN expectedVersion', encodeCas('t', bytes(1), NaN, bytes()), 'command', KvErrorCode.BadRequest],
    ['zero scan limit', encodeScan('t', bytes(), 0), 'query', KvErrorCode.InvalidLimit],
    ['invalid tenant wins over a bad key', encodePut('a b', bytes(), bytes()), 'command', KvErrorCode.InvalidTenant],
  ];

  test.each(cases)('%s is refused with its code', (_name, req, kind, code) => {
    const { valid, applied, queried } = outcomes(req);
    const answered = kind === 'command' ? applied : queried;
    expect(answered).toMatchObject({ ok: false, code });
    if (kind === 'command') expect(valid?.code).toBe(code);
    expect(answered).toEqual(kind === 'command' ? new KvModel(PROP_LIMITS).apply(req, 1) : new KvModel(PROP_LIMITS).query(req));
  });

  test('encoders throw KvError only for a field its length field cannot hold', () => {
    const code = (f: () => unknown): unknown => {
      try {
        f();
      } catch (e) {
        return e instanceof KvError ? e.code : e;
      }
      return undefined;
    };
    expect(code(() => encodePut('x'.repeat(256), bytes(1), bytes()))).toBe(KvErrorCode.InvalidTenant);
    expect(code(() => encodeGet('t', new Uint8Array(0x10000)))).toBe(KvErrorCode.KeyTooLarge);
    expect(code(() => encodeScan('t', bytes(), -1))).toBe(KvErrorCode.InvalidLimit);
    expect(code(() => encodeScan('t', bytes(), 1.5))).toBe(KvErrorCode.InvalidLimit);
    expect(code(() => encodeScan('t', bytes(), 2 ** 32))).toBe(KvErrorCode.InvalidLimit);
    expect(code(() => encodeScan('t', bytes(), 0))).toBeUndefined();
    expect(code(() => encodePut('x'.repeat(255), new Uint8Array(0xffff), bytes()))).toBeUndefined();
  });

  test('malformed replies throw KvError BadReply', () => {
    const ok = new KvStateMachine().query(new MemoryData(), encodeScan('t', bytes(), 1));
    for (const bad of [bytes(), bytes(2), ok.subarray(0, 3), bytes(...ok, 0), bytes(0, 2), bytes(1, 3, 0x58, 0x59, 0x5a)]) {
      let err: unknown;
      try {
        decodeKvReply(KvOp.Scan, bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(KvError);
      expect((err as KvError).code).toBe(KvErrorCode.BadReply);
    }
    expect(decodeKvReply(KvOp.Put, bytes(1, 10, ...b('BadRequest'), ...b('ü')))).toEqual({ ok: false, code: 'BadRequest', message: 'ü' });
  });

  test('limits are positive integers within bounds, and one item always fits a scan', () => {
    expect(resolveKvLimits()).toEqual(KV_LIMITS_DEFAULT);
    const bad: Partial<KvLimits>[] = [
      { keyBytesMax: 0 },
      { keyBytesMax: -1 },
      { valueBytesMax: 1.5 },
      { scanLimitMax: NaN },
      { keyBytesMax: KEY_BYTES_LIMIT + 1 },
      { keyBytesMax: 4096 },
      { scanBytesMax: 100 },
      { scanLimitMax: 2 ** 32 },
    ];
    for (const l of bad) expect(() => new KvStateMachine(l)).toThrow(KvError);
    expect(new KvStateMachine({ keyBytesMax: KEY_BYTES_LIMIT }).limits.keyBytesMax).toBe(KEY_BYTES_LIMIT);
  });
});
