/**
 * The router's writes shared between tenants (writesSharedMax): with a peer standing in for the
 * remote leaders, one tenant's backlog of waiting writes does not delay another tenant's write by
 * more than about one write, and one tenant alone is not held to the shared bound.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { RecordKind, decodePropose, encodeReply } from '../../../src/wire/index.js';
import type { NodeId } from '../../../src/shards/raft/index.js';
import { Router } from '../../../src/router/router.js';
import type { Member } from '../../../src/router/router.js';
import { replicasOf, shardOf } from '../../../src/router/placement.js';
import type { WorkerPool } from '../../../src/workers/pool.js';
import { startPool } from '../../support/pool.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const dir = mkdtempSync(join(tmpdir(), 'iroh-raft-fair-'));
let pool: WorkerPool;
beforeAll(async () => {
  // Node 1 hosts no shard here (replicas = 1 on node 2 or 3), so every write is forwarded.
  pool = await startPool({ dataDir: dir, workers: 1, shards: [], tickMs: 10 });
});
afterAll(async () => {
  await pool.close();
  rmSync(dir, { recursive: true, force: true });
});

const members: Member[] = [1, 2, 3].map((n) => ({ nodeId: n as NodeId, peerId: `peer-${n}` }));

/** A key of `tenant` whose shard lives on another node. */
function remoteKey(tenant: string, tag: string): Uint8Array {
  for (let i = 0; ; i++) {
    const key = new TextEncoder().encode(`${tag}${i}`);
    if (replicasOf(shardOf(tenant, key, 4), [1, 2, 3] as NodeId[], 1)[0] !== 1) return key;
  }
}

/** A router whose proposals are held until the test answers them; `proposed` lists their keys' tags in order. */
function heldRouter(writesSharedMax: number): { router: Router; proposed: string[]; answerOne: () => void; held: () => number } {
  const held: (() => void)[] = [];
  const proposed: string[] = [];
  const router: Router = new Router({
    self: 1 as NodeId,
    members,
    shards: 4,
    replicas: 1,
    pool,
    requestTimeoutMs: 5000,
    writesSharedMax,
    link: {
      send: (peer, kind, shard, payload) => {
        if (kind !== RecordKind.ClientPropose) return;
        const p = decodePropose(payload);
        proposed.push(/(noisy|steady)-\d+/.exec(Buffer.from(p.command).toString('latin1'))![0]);
        const body = encodeReply({ reqId: p.reqId, ok: true, body: new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]) });
        held.push(() => router.onPeerRecords(peer, [{ kind: RecordKind.ClientReply, shard, payload: body }]));
      },
    },
  });
  return { router, proposed, answerOne: () => held.shift()?.(), held: () => held.length };
}

describe('router: writes shared between tenants', () => {
  test("while two tenants write, a flooding tenant's 40 waiting writes delay the other's write by about one write", async () => {
    const { router, proposed, answerOne, held } = heldRouter(2);
    const value = new Uint8Array(256);
    const drain = async (): Promise<void> => {
      while (held() > 0) {
        answerOne();
        await new Promise((r) => setImmediate(r));
      }
    };
    // The steady tenant has written just before: the shared bound applies to the flood.
    const first = router.put({ tenant: 'steady', key: remoteKey('steady', 'steady-0-'), value });
    await sleep(5);
    await drain();
    expect(await first).toMatchObject({ ok: true });
    const noisy = Array.from({ length: 40 }, (_, i) => router.put({ tenant: 'noisy', key: remoteKey('noisy', `noisy-${i}-`), value }));
    await sleep(20);
    expect(held()).toBe(2);
    expect(router.writeRoom).toMatchObject({ heldWrites: 2, waiting: 38 });
    const steady = router.put({ tenant: 'steady', key: remoteKey('steady', 'steady-1-'), value });
    await sleep(20);
    // Below its share (one of two), the steady write goes in at once, past the 38 waiting.
    expect(proposed).toEqual(['steady-0', 'noisy-0', 'noisy-1', 'steady-1']);
    await drain();
    expect(await steady).toMatchObject({ ok: true });
    for (const r of await Promise.all(noisy)) expect(r).toMatchObject({ ok: true });
    // Each tenant's own writes in the order they came.
    const noisyOrder = proposed.filter((p) => p.startsWith('noisy')).map((p) => Number(p.slice(6)));
    expect(noisyOrder).toEqual(Array.from({ length: 40 }, (_, i) => i));
    router.close();
  });

  test('a tenant that comes while another alone has many writes in flight does not wait for them to drain', async () => {
    const { router, proposed, held } = heldRouter(2);
    const value = new Uint8Array(256);
    const noisy = Array.from({ length: 10 }, (_, i) => router.put({ tenant: 'noisy', key: remoteKey('noisy', `noisy-${i}-`), value }));
    await sleep(20);
    expect(held()).toBe(10);
    void router.put({ tenant: 'steady', key: remoteKey('steady', 'steady-0-'), value });
    await sleep(20);
    expect(proposed.at(-1)).toBe('steady-0');
    expect(held()).toBe(11);
    router.close();
    await Promise.all(noisy);
  });

  test('one tenant alone is not held to the shared bound', async () => {
    const { router, answerOne, held } = heldRouter(2);
    const value = new Uint8Array(256);
    const writes = Array.from({ length: 10 }, (_, i) => router.put({ tenant: 'noisy', key: remoteKey('noisy', `noisy-${i}-`), value }));
    await sleep(20);
    expect(held()).toBe(10);
    while (held() > 0) answerOne();
    for (const r of await Promise.all(writes)) expect(r).toMatchObject({ ok: true });
    router.close();
  });
});
