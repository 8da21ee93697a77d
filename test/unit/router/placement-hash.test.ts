/**
 * The node's view of the cluster's key -> shard function (src/router/placement-hash.ts) and the
 * record it is read from (placement-record.ts): `_system` is placed from the start, client
 * tenants wait for the choice (NotReady after their wait), the choice never changes, and only
 * trusted callers see the key.
 */
import { describe, expect, test } from 'vitest';
import { PlacementHash, placementHashOf } from '../../../src/router/placement-hash.js';
import { decodePlacement, encodePlacement } from '../../../src/router/placement-record.js';
import { KEYED_HASH, UNKEYED_HASH, keyedHash, unkeyedHash } from '../../../src/wire/shard-hash.js';

const KEY = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('PlacementHash', () => {
  test('before the choice: _system is placed by the unkeyed function, client tenants are not placed', () => {
    const h = new PlacementHash();
    expect(h.name).toBe('pending');
    expect(h.shardOf('_system', enc('placement/key'), 16)).toBe(unkeyedHash.shardOf('_system', enc('placement/key'), 16));
    expect(h.shardOf('default', enc('k'), 16)).toBeUndefined();
  });

  test('a request waits for the choice and is placed by it; _system stays unkeyed under a keyed choice', async () => {
    const h = new PlacementHash();
    const waiting = h.shardWhenKnown('default', enc('k'), 16, 5_000);
    expect(h.waiting).toBe(1);
    h.set({ hash: KEYED_HASH, key: KEY });
    expect(await waiting).toEqual({ ok: true, value: keyedHash(KEY).shardOf('default', enc('k'), 16) });
    expect(h.waiting).toBe(0);
    expect(h.shardOf('_system', enc('tenants/acme'), 16)).toBe(unkeyedHash.shardOf('_system', enc('tenants/acme'), 16));
  });

  test('without a choice within the wait: NotReady, and no waiter is left behind', async () => {
    const h = new PlacementHash();
    const r = await h.shardWhenKnown('default', enc('k'), 16, 20);
    expect(r).toMatchObject({ ok: false, code: 'NotReady' });
    expect(h.waiting).toBe(0);
  });

  test('the choice is fixed: the same again is a no-op, another one throws', () => {
    const h = new PlacementHash({ hash: KEYED_HASH, key: KEY });
    h.set({ hash: KEYED_HASH, key: Uint8Array.from(KEY) });
    expect(() => h.set({ hash: UNKEYED_HASH })).toThrow(/already/);
    expect(() => h.set({ hash: KEYED_HASH, key: new Uint8Array(16) })).toThrow(/already/);
  });

  test('the key is shown only to trusted callers, and only for the keyed hash', () => {
    const keyedView = new PlacementHash({ hash: KEYED_HASH, key: KEY });
    expect(placementHashOf(keyedView, true)).toEqual({ hash: KEYED_HASH, placementKey: Buffer.from(KEY).toString('hex') });
    expect(placementHashOf(keyedView, false)).toEqual({ hash: KEYED_HASH });
    expect(placementHashOf(new PlacementHash({ hash: UNKEYED_HASH }), true)).toEqual({ hash: UNKEYED_HASH });
    expect(placementHashOf(new PlacementHash(), true)).toEqual({ hash: 'pending' });
  });
});

describe('the placement record', () => {
  test('round-trips both choices; anything else is Internal', () => {
    expect(decodePlacement(encodePlacement({ hash: KEYED_HASH, key: KEY }))).toEqual({ ok: true, value: { hash: KEYED_HASH, key: Buffer.from(KEY) } });
    expect(decodePlacement(encodePlacement({ hash: UNKEYED_HASH }))).toEqual({ ok: true, value: { hash: UNKEYED_HASH } });
    for (const bad of [
      '',
      'null',
      '{"hash":"md5"}',
      `{"hash":"${KEYED_HASH}"}`,
      `{"hash":"${KEYED_HASH}","key":"00"}`,
      `{"hash":"${KEYED_HASH}","key":"${'G'.repeat(32)}"}`,
    ]) {
      expect(decodePlacement(enc(bad)), bad).toMatchObject({ ok: false, code: 'Internal' });
    }
  });
});
