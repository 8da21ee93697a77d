/**
 * Large values through three real worker pools (one per replica, real rings, worker threads and
 * LMDB), their raft messages handed from one pool's out-ring to the next pool's in-ring as the
 * router does: 1 MiB values proposed in batches are replicated to every replica, and with a ring
 * sized so that the largest proposal's App fills one record (but for the bound's allowance for
 * varint fields at their widest), that App goes through whole.
 * Every App is checked against the record limit on its way, and no worker drops an oversize record.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test, vi } from 'vitest';
import { KV_LIMITS_DEFAULT, KvOp, decodeKvReply, encodeCas, encodeGet, encodePut, kvCommandBytesMax } from '../../../src/shards/kv/index.js';
import { MessageType } from '../../../src/shards/raft/index.js';
import type { NodeId, ShardId } from '../../../src/shards/raft/index.js';
import { MESSAGE_ENTRY_FIXED_BYTES_MAX, MESSAGE_HEADER_BYTES_MAX, peekMessageTo, peekMessageType } from '../../../src/wire/index.js';
import type { Outcome } from '../../../src/shards/host.js';
import type { PoolOptions, WorkerPool } from '../../../src/workers/pool.js';
import { appendBytesMaxFor, commandBytesMaxFor } from '../../../src/workers/fit.js';
import { maxPayloadBytes } from '../../../src/workers/ring.js';
import { startPool } from '../../support/pool.js';

const root = mkdtempSync(join(tmpdir(), 'iroh-raft-replicated-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

const enc = new TextEncoder();

interface Trio {
  readonly pools: WorkerPool[];
  /**
   * Largest App payload seen between pools; how many came within the bound's allowance for a
   * header and one entry at their widest of `recordBytesMax` (they carry the largest entry), and
   * how many exceeded it.
   */
  readonly apps: { max: number; nearLimit: number; overLimit: number; count: number };
  close(): Promise<void>;
}

async function startTrio(shards: number, opts: Partial<PoolOptions>): Promise<Trio> {
  const pools: WorkerPool[] = [];
  const apps = { max: 0, nearLimit: 0, overLimit: 0, count: 0 };
  const specs = Array.from({ length: shards }, (_, s) => ({ shard: s as ShardId, voters: [1, 2, 3] as NodeId[] }));
  const route = (shard: ShardId, payload: Uint8Array): void => {
    const limit = pools[0]?.fit.recordBytesMax ?? Infinity;
    if (peekMessageType(payload) === MessageType.App) {
      apps.count++;
      apps.max = Math.max(apps.max, payload.length);
      if (payload.length > limit - MESSAGE_HEADER_BYTES_MAX - MESSAGE_ENTRY_FIXED_BYTES_MAX && payload.length <= limit) apps.nearLimit++;
      if (payload.length > limit) apps.overLimit++;
    }
    // A pool not started yet, or a full in-ring: lost, as on a network; raft resends.
    pools[peekMessageTo(payload) - 1]?.deliver(shard, payload);
  };
  for (let id = 1; id <= 3; id++) {
    pools.push(
      await startPool({ dataDir: join(root, `d${dirs++}`), workers: 1, nodeId: id, shards: specs, tickMs: 10, seed: id, onRaftMessage: route, ...opts }),
    );
  }
  return { pools, apps, close: async () => void (await Promise.all(pools.map((p) => p.close()))) };
}

/** The pool whose replica leads `shard`, once one does. */
async function leaderOf(t: Trio, shard: ShardId): Promise<WorkerPool> {
  let found: WorkerPool | undefined;
  await vi.waitFor(
    () => {
      found = t.pools.find((p) => p.leaders.get(shard)?.role === 'leader');
      expect(found).toBeDefined();
    },
    { timeout: 20_000, interval: 10 },
  );
  return found!;
}

async function applied(p: WorkerPool, shard: ShardId): Promise<number> {
  const st = await p.control(0).status();
  return st.shards.find((s) => s.id === shard)!.applied;
}

/** Waits until every replica applied what the leader applied, then reads `key` from each with consistency stale. */
async function readEverywhere(t: Trio, shard: ShardId, tenant: string, key: Uint8Array): Promise<Uint8Array[]> {
  const leader = await leaderOf(t, shard);
  const target = await applied(leader, shard);
  await vi.waitFor(async () => expect(Math.min(...(await Promise.all(t.pools.map((p) => applied(p, shard)))))).toBeGreaterThanOrEqual(target), {
    timeout: 30_000,
    interval: 20,
  });
  return Promise.all(
    t.pools.map(async (p) => {
      const r = decodeKvReply(KvOp.Get, body(await p.read(shard, encodeGet(tenant, key), 'stale')));
      if (!r.ok || !r.found) throw new Error(`not found: ${JSON.stringify(r)}`);
      return r.value;
    }),
  );
}

/** Answers a client retries (with the same session, so the write still applies once). */
const RETRY = new Set(['Overloaded', 'NotLeader', 'Timeout', 'ProposalDropped', 'TransferInProgress']);
let nextClient = 1;

/**
 * Proposes to the shard's leader as a client would: with a session of its own, retrying on the
 * leader of the moment while the answer says to. A batch of large values fills the in-ring (a
 * 4 MiB ring holds three 1 MiB records): backpressure answers Overloaded at once, as it should.
 */
async function propose(t: Trio, shard: ShardId, command: Uint8Array): Promise<Outcome> {
  const clientId = nextClient++;
  for (;;) {
    const leader = await leaderOf(t, shard);
    const o = await leader.propose(shard, { clientId, seq: 1, command }, 30_000);
    if (o.ok || !RETRY.has(o.code)) return o;
    await new Promise((r) => setTimeout(r, 10));
  }
}

function body(o: Outcome): Uint8Array {
  if (!o.ok) throw new Error(`request failed: ${o.code} ${o.message}`);
  return o.body;
}

/** A value of `n` bytes that differs per key, so a mixed-up value shows. */
const valueOf = (n: number, seed: number): Uint8Array => {
  const v = new Uint8Array(n);
  for (let i = 0; i < n; i += 4096) v[i] = (seed * 31 + i) & 0xff;
  v[n - 1] = seed & 0xff;
  return v;
};

async function oversizeDrops(t: Trio): Promise<number[]> {
  return Promise.all(t.pools.map(async (p) => (await p.control(0).status()).counters.oversizeDrops));
}

describe('large values across three replicas', () => {
  test('1 MiB values (valueBytesMax) proposed in batches of 6 are replicated to every replica; one byte more is refused ValueTooLarge', async () => {
    const t = await startTrio(2, {});
    try {
      expect(KV_LIMITS_DEFAULT.valueBytesMax).toBe(1 << 20);
      const size = KV_LIMITS_DEFAULT.valueBytesMax;
      const shard = 0 as ShardId;
      const written: { key: Uint8Array; value: Uint8Array }[] = [];
      for (let batch = 0; batch < 3; batch++) {
        const items = Array.from({ length: 6 }, (_, i) => ({ key: enc.encode(`big-${batch}-${i}`), value: valueOf(size, batch * 6 + i) }));
        const outs = await Promise.all(items.map((it) => propose(t, shard, encodePut('acme', it.key, it.value))));
        for (const o of outs) expect(o.ok, o.ok ? '' : `${o.code}: ${o.message}`).toBe(true);
        written.push(...items);
      }
      const tooBig = await propose(t, shard, encodePut('acme', enc.encode('over'), new Uint8Array(size + 1)));
      expect(tooBig).toMatchObject({ ok: false, code: 'ValueTooLarge' });

      for (const w of written) {
        for (const got of await readEverywhere(t, shard, 'acme', w.key)) expect(Buffer.from(got).equals(Buffer.from(w.value))).toBe(true);
      }
      // Every App fitted a record (a 1 MiB entry travels alone: two do not fit one record).
      expect(t.apps.overLimit).toBe(0);
      expect(t.apps.max).toBeGreaterThan(size);
      expect(t.apps.max).toBeLessThanOrEqual(t.pools[0]!.fit.recordBytesMax);
      expect(await oversizeDrops(t)).toEqual([0, 0, 0]);
    } finally {
      await t.close();
    }
  }, 120_000);

  test('with 64 KiB rings and the largest valueBytesMax they fit, the largest proposal makes an App that fills one record, and it is replicated', async () => {
    const ringBytes = 1 << 16;
    const record = maxPayloadBytes(ringBytes);
    const keyBytesMax = 64;
    const valueBytesMax = commandBytesMaxFor(record, appendBytesMaxFor(record)) - kvCommandBytesMax({ keyBytesMax, valueBytesMax: 0 });
    const t = await startTrio(1, { ringBytes, kvLimits: { keyBytesMax, valueBytesMax, scanLimitMax: 1, scanBytesMax: keyBytesMax + valueBytesMax } });
    try {
      expect(t.pools[0]!.fit.recordBytesMax).toBe(record);
      const shard = 0 as ShardId;
      // The largest command: a compare-and-set with the longest tenant, key and value.
      const tenant = 't'.repeat(64);
      const keys = Array.from({ length: 4 }, (_, i) => enc.encode(`${i}`.padEnd(keyBytesMax, 'k')));
      const values = keys.map((_, i) => valueOf(valueBytesMax, i + 1));
      const outs = await Promise.all(keys.map((k, i) => propose(t, shard, encodeCas(tenant, k, 0, values[i]!))));
      for (const o of outs) expect(o.ok, o.ok ? '' : `${o.code}: ${o.message}`).toBe(true);
      const over = await propose(t, shard, encodeCas(tenant, enc.encode('x'), 0, new Uint8Array(valueBytesMax + 1)));
      expect(over).toMatchObject({ ok: false, code: 'ValueTooLarge' });
      for (let i = 0; i < keys.length; i++) {
        for (const got of await readEverywhere(t, shard, tenant, keys[i]!)) expect(Buffer.from(got).equals(Buffer.from(values[i]!))).toBe(true);
      }
      expect(t.apps.nearLimit).toBeGreaterThan(0);
      expect(t.apps.overLimit).toBe(0);
      expect(await oversizeDrops(t)).toEqual([0, 0, 0]);
    } finally {
      await t.close();
    }
  }, 120_000);

  test('a valueBytesMax whose proposal could not fit a ring record is refused when the pool is configured', async () => {
    const err = await startPool({
      dataDir: join(root, `d${dirs++}`),
      workers: 1,
      shards: [{ shard: 0 as ShardId, voters: [1 as NodeId] }],
      ringBytes: 2 << 20,
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'InvalidConfig' });
    expect((err as Error).message).toMatch(/kvLimits.valueBytesMax 1048576 .* lower valueBytesMax to \d+ or use larger rings/);
  });
});
