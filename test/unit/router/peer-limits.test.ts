/**
 * Forwarded client work never meets a silent drop at the peer record limit: a request too large
 * for a peer record is RequestTooLarge at once (nothing is sent, no retries until the deadline),
 * and an answer to a forwarded request that is too large becomes ReplyTooLarge for the asking
 * node, which returns it at once.
 */
import { describe, expect, test } from 'vitest';
import { RecordKind, decodeRead, decodeReply, encodeRead, encodeReply } from '../../../src/wire/index.js';
import type { NodeId } from '../../../src/shards/raft/index.js';
import { encodeGet } from '../../../src/shards/kv/index.js';
import type { Outcome } from '../../../src/shards/host.js';
import { Router } from '../../../src/router/router.js';
import type { Member } from '../../../src/router/router.js';
import { replicasOf, shardOf } from '../../../src/router/placement.js';
import type { WorkerPool } from '../../../src/workers/pool.js';

const members: Member[] = [1, 2, 3].map((n) => ({ nodeId: n as NodeId, peerId: `peer-${n}` }));

/** A pool that hosts nothing here but answers reads with a body of `bodyBytes`. */
function fakePool(bodyBytes: number): WorkerPool {
  return {
    leaders: new Map(),
    workers: 1,
    workerOf: () => 0,
    isRunning: () => true,
    wake: () => Promise.resolve(0),
    read: (): Promise<Outcome> => Promise.resolve({ ok: true, body: new Uint8Array(bodyBytes) }),
  } as unknown as WorkerPool;
}

/** A key whose only replica is on another node. */
function remoteKey(): Uint8Array {
  for (let i = 0; ; i++) {
    const key = new TextEncoder().encode(`k${i}`);
    if (replicasOf(shardOf('t', key, 4), [1, 2, 3] as NodeId[], 1)[0] !== 1) return key;
  }
}

describe('peer record limits', () => {
  test('a write too large for a peer record is RequestTooLarge at once; nothing is sent', async () => {
    const sent: number[] = [];
    const router = new Router({
      self: 1 as NodeId,
      members,
      shards: 4,
      replicas: 1,
      pool: fakePool(0),
      link: { send: (_p, kind) => sent.push(kind), maxRecordBytes: 1000 },
      requestTimeoutMs: 60_000,
    });
    const r = await router.put({ tenant: 't', key: remoteKey(), value: new Uint8Array(2000) });
    expect(r).toMatchObject({ ok: false, code: 'RequestTooLarge' });
    expect(sent.filter((k) => k === RecordKind.ClientPropose)).toEqual([]);
    expect(router.counters.forwarded).toBe(0);
    router.close();
  });

  test('the answer to a forwarded read that exceeds a peer record is ReplyTooLarge; one that fits goes back whole', async () => {
    const run = async (bodyBytes: number, reqId = 7): Promise<ReturnType<typeof decodeReply>> => {
      const replies: Uint8Array[] = [];
      const router = new Router({
        self: 1 as NodeId,
        members,
        shards: 4,
        replicas: 3,
        pool: fakePool(bodyBytes),
        link: { send: (_p, kind, _s, payload) => kind === RecordKind.ClientReply && replies.push(payload), maxRecordBytes: 1000 },
      });
      router.onPeerRecords('peer-2', [
        { kind: RecordKind.ClientRead, shard: 0, payload: encodeRead({ reqId, consistency: 0, query: encodeGet('t', new Uint8Array([1])) }) },
      ]);
      await new Promise((r) => setImmediate(r));
      expect(replies.length).toBe(1);
      expect(replies[0]!.length).toBeLessThanOrEqual(1000);
      const counted = router.counters.repliesTooLarge;
      router.close();
      const reply = decodeReply(replies[0]!);
      expect(counted).toBe(reply.ok ? 0 : 1);
      return reply;
    };
    // At most 9 bytes of reply frame (a reqId counts at its widest, 8 bytes, whatever it is): a
    // body of 991 bytes is exactly a full record.
    expect(await run(991)).toMatchObject({ reqId: 7, ok: true });
    expect(await run(992)).toMatchObject({ reqId: 7, ok: false, code: 'ReplyTooLarge' });
    // The same edge for a reqId that does take 8 bytes.
    expect(await run(991, 2 ** 52)).toMatchObject({ reqId: 2 ** 52, ok: true });
    expect(await run(992, 2 ** 52)).toMatchObject({ reqId: 2 ** 52, ok: false, code: 'ReplyTooLarge' });
  });

  test('the asking node returns a forwarded ReplyTooLarge at once (not retried)', async () => {
    let attempts = 0;
    const router: Router = new Router({
      self: 1 as NodeId,
      members,
      shards: 4,
      replicas: 1,
      pool: fakePool(0),
      requestTimeoutMs: 60_000,
      link: {
        send: (peer, kind, shard, payload) => {
          if (kind !== RecordKind.ClientRead) return;
          attempts++;
          const { reqId } = decodeRead(payload);
          const body = encodeReply({ reqId, ok: false, code: 'ReplyTooLarge', message: 'too large', leaderHint: 0 });
          setImmediate(() => router.onPeerRecords(peer, [{ kind: RecordKind.ClientReply, shard, payload: body }]));
        },
      },
    });
    expect(await router.get({ tenant: 't', key: remoteKey(), consistency: 'linearizable' })).toMatchObject({ ok: false, code: 'ReplyTooLarge' });
    expect(attempts).toBe(1);
    router.close();
  });
});
