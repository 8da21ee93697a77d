/**
 * The union of service error codes is complete: every code a layer below can end a client's
 * request with is in it (checked by the typecheck: a new code in raft, the shard host, the KV, the
 * pool or the HTTP layer fails `npm run typecheck` here until it is listed in ServiceErrorCode,
 * or named below as one no client meets). And the guard that reads codes from the wire tells
 * codes from anything else, Object.prototype's names included.
 */
import { describe, expect, expectTypeOf, test } from 'vitest';
import { CONSISTENCIES, ServiceErrorCode, isConsistency, isServiceErrorCode } from '../../../src/api/index.js';
import type { Consistency } from '../../../src/api/index.js';
import type { HttpErrorCode } from '../../../src/io/http/index.js';
import type { Consistency as HostConsistency, HostErrorCode } from '../../../src/shards/host.js';
import type { KvErrorCode } from '../../../src/shards/kv/index.js';
import type { RaftErrorCode } from '../../../src/shards/raft/index.js';
import type { PoolErrorCode } from '../../../src/workers/pool.js';

type ValueOf<T> = T[keyof T];

/** Raft codes no client request ends with: they answer membership changes, transfers, storage and config. */
type RaftOnlyCode = 'ConfChangePending' | 'InvalidConfChange' | 'InvalidTransferTarget' | 'Removed' | 'InvalidConfig' | 'Compacted' | 'Unavailable';
/** KV codes that are thrown, never replied: a malformed reply (a bug), a limit out of range at start. */
type KvOnlyCode = 'BadReply' | 'InvalidConfig';
/** Thrown by HttpServer.start, never a response. */
type HttpOnlyCode = 'InvalidConfig';

describe('ServiceErrorCode', () => {
  test('holds every code a client can meet from each layer (a typecheck)', () => {
    expectTypeOf<Exclude<RaftErrorCode, RaftOnlyCode | ServiceErrorCode>>().toEqualTypeOf<never>();
    expectTypeOf<Exclude<ValueOf<typeof HostErrorCode>, ServiceErrorCode>>().toEqualTypeOf<never>();
    expectTypeOf<Exclude<ValueOf<typeof PoolErrorCode>, ServiceErrorCode>>().toEqualTypeOf<never>();
    expectTypeOf<Exclude<KvErrorCode, KvOnlyCode | ServiceErrorCode>>().toEqualTypeOf<never>();
    expectTypeOf<Exclude<HttpErrorCode, HttpOnlyCode | ServiceErrorCode>>().toEqualTypeOf<never>();
    // And the codes that never reach a client are not in it.
    expectTypeOf<Extract<RaftOnlyCode | KvOnlyCode | HttpOnlyCode, ServiceErrorCode>>().toEqualTypeOf<never>();
  });

  test('each code is its own name', () => {
    for (const [name, code] of Object.entries(ServiceErrorCode)) expect(code).toBe(name);
  });

  test('isServiceErrorCode: true for each code, false for anything else', () => {
    for (const code of Object.values(ServiceErrorCode)) expect(isServiceErrorCode(code), code).toBe(true);
    for (const other of ['', 'FluxCapacitorDrained', 'notleader', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'InvalidConfig', 'BadReply']) {
      expect(isServiceErrorCode(other), other).toBe(false);
    }
  });
});

describe('Consistency', () => {
  test('the shard host has the same type (src/shards may not import api)', () => {
    expectTypeOf<HostConsistency>().toEqualTypeOf<Consistency>();
  });

  test('CONSISTENCIES lists each once, the default (linearizable) first', () => {
    expect(CONSISTENCIES).toEqual(['linearizable', 'lease', 'stale']);
    expectTypeOf<(typeof CONSISTENCIES)[number]>().toEqualTypeOf<Consistency>();
    for (const c of CONSISTENCIES) expect(isConsistency(c)).toBe(true);
    for (const other of ['', 'Linearizable', 'strong', 'toString']) expect(isConsistency(other), other).toBe(false);
  });
});
