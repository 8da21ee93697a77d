/**
 * The role directory over the KV semantics in memory, on a virtual clock: bindings are records
 * of `_system` that every node reads, a change made elsewhere is seen within the cache lifetime
 * (and never later), the node that made it sees it at once, and bad ids and roles are refused.
 */
import { Buffer } from 'node:buffer';
import { describe, expect, test } from 'vitest';
import { RoleDirectory } from '../../../src/router/roles.js';
import { MemoryKv } from '../../support/memory-kv.js';

const ID_A = 'a'.repeat(64);
const ID_B = 'b'.repeat(64);

function setup(): { kv: MemoryKv; clock: { ms: number }; node1: RoleDirectory; node2: RoleDirectory } {
  const kv = new MemoryKv();
  const clock = { ms: 1_000_000 };
  const mk = (): RoleDirectory => new RoleDirectory({ kv, cacheMs: 1_000, now: () => clock.ms });
  return { kv, clock, node1: mk(), node2: mk() };
}

describe('RoleDirectory', () => {
  test('a grant is a _system record under roles/<id>; list, get and roleOf read it', async () => {
    const { kv, node1, node2 } = setup();
    expect(await node1.grant(ID_A, 'operator')).toMatchObject({ ok: true, value: { endpointId: ID_A, role: 'operator' } });
    const rec = await kv.get({ tenant: '_system', key: Buffer.from(`roles/${ID_A}`), consistency: 'linearizable' });
    expect(rec.ok && rec.value.found).toBe(true);
    expect(await node2.roleOf(ID_A)).toEqual({ ok: true, value: 'operator' });
    expect(await node2.roleOf(ID_B)).toEqual({ ok: true, value: undefined });
    expect(await node2.get(ID_A)).toMatchObject({ ok: true, value: { role: 'operator' } });
    expect(await node2.get(ID_B)).toMatchObject({ ok: false, code: 'RoleNotFound' });
    await node1.grant(ID_B, 'reader');
    expect(await node2.list()).toMatchObject({ ok: true, value: [{ endpointId: ID_A }, { endpointId: ID_B }] });
  });

  test('a revoke on another node is seen within the cache lifetime; on the same node at once', async () => {
    const { clock, node1, node2 } = setup();
    await node1.grant(ID_A, 'admin');
    expect(await node2.roleOf(ID_A)).toEqual({ ok: true, value: 'admin' });
    expect(await node1.revoke(ID_A)).toEqual({ ok: true, value: { revoked: true } });
    expect(await node1.roleOf(ID_A)).toEqual({ ok: true, value: undefined });
    clock.ms += 999;
    expect(await node2.roleOf(ID_A)).toEqual({ ok: true, value: 'admin' });
    clock.ms += 1;
    expect(await node2.roleOf(ID_A)).toEqual({ ok: true, value: undefined });
    expect(await node1.revoke(ID_A)).toMatchObject({ ok: false, code: 'RoleNotFound' });
  });

  test('bad ids and roles are BadRequest and write nothing; a read failure is passed on, not cached', async () => {
    const { kv, node1 } = setup();
    for (const id of ['', 'A'.repeat(64), 'a'.repeat(63), `${'a'.repeat(63)}g`, '../x']) {
      expect(await node1.grant(id, 'admin'), id).toMatchObject({ ok: false, code: 'BadRequest' });
      expect(await node1.revoke(id)).toMatchObject({ ok: false, code: 'BadRequest' });
      expect(await node1.roleOf(id)).toEqual({ ok: true, value: undefined });
    }
    expect(await node1.grant(ID_A, 'root' as 'admin')).toMatchObject({ ok: false, code: 'BadRequest' });
    expect(kv.calls.filter((c) => c.op === 'put')).toEqual([]);
    kv.failWith = { code: 'NotLeader', message: 'no leader' };
    expect(await node1.roleOf(ID_A)).toMatchObject({ ok: false, code: 'NotLeader' });
    kv.failWith = undefined;
    expect(node1.cachedEntries).toBe(0);
  });
});
