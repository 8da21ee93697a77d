/**
 * No reply is larger than a ring record, through real worker threads, rings and LMDB:
 *
 * - a reply that cannot fit one out-ring record is answered at once with the stable code
 *   ReplyTooLarge (never dropped, never a Timeout), for reads and for applied writes, and the
 *   largest reply that fits goes through whole;
 * - the built-in KV's limits are checked against the ring at start, so its largest write, Get and
 *   scan fit: values of exactly valueBytesMax go in and come back, one byte more is ValueTooLarge,
 *   and a scan of 1 MiB values pages through every key once with the default limits;
 * - a value stored under larger limits, read back after a restart with a smaller ring, is
 *   ReplyTooLarge at once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { KV_LIMITS_DEFAULT, KvOp, decodeKvReply, encodeGet, encodePut, encodeScan } from '../../../src/shards/kv/index.js';
import type { NodeId, ShardId } from '../../../src/shards/raft/index.js';
import type { Outcome } from '../../../src/shards/host.js';
import { PoolError } from '../../../src/workers/pool.js';
import type { PoolOptions, WorkerPool } from '../../../src/workers/pool.js';
import { maxPayloadBytes } from '../../../src/workers/ring.js';
import { REPLY_FIXED_BYTES_MAX } from '../../../src/wire/index.js';
import { startPool } from '../../support/pool.js';
import { sizedRequest } from '../../support/sized-machine.js';

const root = mkdtempSync(join(tmpdir(), 'iroh-raft-replies-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (): string => join(root, `d${dirs++}`);

const enc = new TextEncoder();
const one = [{ shard: 0 as ShardId, voters: [1 as NodeId] }];
/** Long enough that a dropped reply would show as Timeout, never as the code under test. */
const TIMEOUT_MS = 60_000;

async function leader(pool: WorkerPool): Promise<void> {
  while (pool.leaders.get(0 as ShardId)?.role !== 'leader') await new Promise((r) => setTimeout(r, 5));
}

function body(o: Outcome): Uint8Array {
  if (!o.ok) throw new Error(`request failed: ${o.code} ${o.message}`);
  return o.body;
}

async function withPool(opts: Partial<PoolOptions>, f: (pool: WorkerPool) => Promise<void>, dataDir = freshDir()): Promise<void> {
  const pool = await startPool({ dataDir, workers: 1, shards: one, tickMs: 10, requestTimeoutMs: TIMEOUT_MS, ...opts });
  try {
    await leader(pool);
    await f(pool);
  } finally {
    await pool.close();
  }
}

const sizedMachine = { module: new URL('../../support/sized-machine.ts', import.meta.url).href };

describe('replies larger than a ring record', () => {
  test('a read or write whose reply does not fit gets ReplyTooLarge at once; the largest that fits comes back whole', async () => {
    const ringBytes = 1 << 20;
    // A reply counts with its reqId at its widest, so this edge is the same for every request.
    const fits = maxPayloadBytes(ringBytes) - REPLY_FIXED_BYTES_MAX;
    await withPool({ ringBytes, stateMachine: sizedMachine }, async (pool) => {
      const s = 0 as ShardId;
      const read = await pool.read(s, sizedRequest(fits), 'linearizable', TIMEOUT_MS);
      expect(body(read).length).toBe(fits);
      expect(body(read).every((b) => b === (fits & 0xff))).toBe(true);
      expect(body(await pool.propose(s, { command: sizedRequest(fits) }, TIMEOUT_MS)).length).toBe(fits);

      const tooLargeRead = await pool.read(s, sizedRequest(fits + 1), 'linearizable', TIMEOUT_MS);
      expect(tooLargeRead).toMatchObject({ ok: false, code: 'ReplyTooLarge' });
      expect(tooLargeRead.ok ? '' : tooLargeRead.message).toContain(`exceeds the ${maxPayloadBytes(ringBytes)} bytes`);
      expect(await pool.read(s, sizedRequest(8 << 20), 'stale', TIMEOUT_MS)).toMatchObject({ ok: false, code: 'ReplyTooLarge' });
      // The write was applied (its entry is in the log); only its reply could not travel.
      expect(await pool.propose(s, { command: sizedRequest(fits + 1) }, TIMEOUT_MS)).toMatchObject({ ok: false, code: 'ReplyTooLarge' });

      const status = await pool.control(0).status();
      expect(status.counters.repliesTooLarge).toBe(3);
      expect(status.counters.oversizeDrops).toBe(0);
      // The worker goes on serving.
      expect(body(await pool.read(s, sizedRequest(10), 'linearizable', TIMEOUT_MS)).length).toBe(10);
      const metrics = (await pool.metrics()).flat().find((m) => m.name === 'iroh_raft_worker_replies_too_large_total');
      expect(metrics?.values[0]?.value).toBe(3);
    });
  });

  test('values of exactly valueBytesMax go in and come back; one byte more is ValueTooLarge; scans of 1 MiB values page through each key once', async () => {
    const max = KV_LIMITS_DEFAULT.valueBytesMax;
    await withPool({}, async (pool) => {
      const s = 0 as ShardId;
      const keys: string[] = [];
      for (let i = 0; i < 5; i++) {
        const key = `k${i}`.padEnd(KV_LIMITS_DEFAULT.keyBytesMax, 'x'); // the longest key too
        keys.push(key);
        const put = decodeKvReply(
          KvOp.Put,
          body(await pool.propose(s, { command: encodePut('tenant', enc.encode(key), new Uint8Array(max).fill(i)) }, TIMEOUT_MS)),
        );
        expect(put).toMatchObject({ ok: true, version: 1 });
      }
      // Refused before it enters the log (validateCommand).
      const over = await pool.propose(s, { command: encodePut('tenant', enc.encode('big'), new Uint8Array(max + 1)) }, TIMEOUT_MS);
      expect(over).toMatchObject({ ok: false, code: 'ValueTooLarge' });
      for (const [i, key] of keys.entries()) {
        const g = decodeKvReply(KvOp.Get, body(await pool.read(s, encodeGet('tenant', enc.encode(key)), 'linearizable', TIMEOUT_MS)));
        expect(g.ok && g.found && g.value.length).toBe(max);
        expect(g.ok && g.found && g.value.every((b) => b === i)).toBe(true);
      }
      // Five values of 1 MiB are 5 MiB, more than a record: the scan stops at scanBytesMax, and
      // paging from the last key sees every key once.
      const seen: string[] = [];
      let after: Uint8Array | undefined;
      for (;;) {
        const r = decodeKvReply(KvOp.Scan, body(await pool.read(s, encodeScan('tenant', new Uint8Array(0), 100, after), 'linearizable', TIMEOUT_MS)));
        if (!r.ok) throw new Error(r.message);
        const bytes = r.items.reduce((n, it) => n + it.key.length + it.value.length, 0);
        expect(r.items.length === 1 || bytes <= KV_LIMITS_DEFAULT.scanBytesMax).toBe(true);
        seen.push(...r.items.map((it) => Buffer.from(it.key).toString()));
        if (!r.more) break;
        after = r.items.at(-1)!.key;
      }
      expect(seen).toEqual(keys);
      expect((await pool.control(0).status()).counters.repliesTooLarge).toBe(0);
    });
  });

  test('a value stored under larger limits, read after a restart with a smaller ring, is ReplyTooLarge at once', async () => {
    const dir = freshDir();
    await withPool(
      {},
      async (pool) => {
        body(await pool.propose(0 as ShardId, { command: encodePut('t', enc.encode('k'), new Uint8Array(1 << 20)) }, TIMEOUT_MS));
      },
      dir,
    );
    const small = { keyBytesMax: 64, valueBytesMax: 100_000, scanLimitMax: 100, scanBytesMax: 200_000 };
    await withPool(
      { ringBytes: 1 << 20, kvLimits: small },
      async (pool) => {
        const s = 0 as ShardId;
        expect(await pool.read(s, encodeGet('t', enc.encode('k')), 'linearizable', TIMEOUT_MS)).toMatchObject({ ok: false, code: 'ReplyTooLarge' });
        // A scan lets its first item through whatever its size: too large here, refused the same way.
        expect(await pool.read(s, encodeScan('t', new Uint8Array(0), 10), 'linearizable', TIMEOUT_MS)).toMatchObject({ ok: false, code: 'ReplyTooLarge' });
        // Other keys are served as usual.
        body(await pool.propose(s, { command: encodePut('t', enc.encode('small'), new Uint8Array(10)) }, TIMEOUT_MS));
        const g = decodeKvReply(KvOp.Get, body(await pool.read(s, encodeGet('t', enc.encode('small')), 'linearizable', TIMEOUT_MS)));
        expect(g).toMatchObject({ ok: true, found: true });
      },
      dir,
    );
  });

  test('KV limits whose largest request or reply does not fit a ring record are refused at start with InvalidConfig', async () => {
    const cases: { opts: Partial<PoolOptions>; says: RegExp }[] = [
      // The old default: 4 MiB of scan in a 2 MiB record.
      { opts: { kvLimits: { scanBytesMax: 4 << 20 } }, says: /scanBytesMax 4194304.*raise ringBytes/ },
      // Default limits in a ring whose record carries 512 KiB: a 1 MiB value cannot be written.
      { opts: { ringBytes: 1 << 20 }, says: /valueBytesMax 1048576 .*(raise ringBytes|larger rings)/ },
      // Many small items: the per-item overhead counts too.
      { opts: { kvLimits: { scanLimitMax: 100_000 } }, says: /with 100000 items/ },
      // A limit out of range is named.
      { opts: { kvLimits: { valueBytesMax: 0 } }, says: /kvLimits: valueBytesMax must be an integer/ },
    ];
    for (const c of cases) {
      const err = await startPool({ dataDir: freshDir(), workers: 1, shards: one, ...c.opts }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PoolError);
      expect((err as PoolError).code).toBe('InvalidConfig');
      expect((err as PoolError).message).toMatch(c.says);
    }
    // The largest that fits the default ring is accepted.
    const pool = await startPool({
      dataDir: freshDir(),
      workers: 1,
      shards: one,
      kvLimits: { scanBytesMax: maxPayloadBytes(4 << 20) - REPLY_FIXED_BYTES_MAX - 6 - 14 * 10_000 },
    });
    await pool.close();
  });
});
