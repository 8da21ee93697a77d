/**
 * The single-node path with real worker threads and LMDB: requests go through the in-ring to the
 * shard hosts, are committed to LMDB and answered on the out-ring. Results are compared with the
 * reference model of the KV semantics.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test, vi } from 'vitest';
import { KvOp, decodeKvReply, encodeCas, encodeDelete, encodeGet, encodePut, encodeScan } from '../../../src/shards/kv/index.js';
import type { KvReply, ScanItem } from '../../../src/shards/kv/index.js';
import { Prng } from '../../../src/shards/raft/index.js';
import type { NodeId, ShardId } from '../../../src/shards/raft/index.js';
import type { Outcome } from '../../../src/shards/host.js';
import { PoolError, WorkerPool } from '../../../src/workers/pool.js';
import { decodeDataDump } from '../../../src/shards/store.js';
import { KvModel } from '../shards/kv-model.js';
import { shardOf } from '../../../src/router/placement.js';
import { startPool } from '../../support/pool.js';

const root = mkdtempSync(join(tmpdir(), 'iroh-raft-pool-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (): string => join(root, `d${dirs++}`);

const enc = new TextEncoder();
const specs = (n: number) => Array.from({ length: n }, (_, s) => ({ shard: s as ShardId, voters: [1 as NodeId] }));

async function leaders(pool: WorkerPool, shards: number): Promise<void> {
  const deadline = performance.now() + 60_000;
  while (pool.leaders.size < shards || [...pool.leaders.values()].some((e) => e.role !== 'leader')) {
    if (performance.now() > deadline)
      throw new Error(`no leader for every shard in 60 s: ${JSON.stringify([...pool.leaders])}, workers ${JSON.stringify(pool.workersRunning())}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const tenants = ['acme', 'globex', 'initech'];
const placement = shardOf;

/** Drops the raft indexes (the model cannot know them) after checking they are sane. */
function normalize(r: KvReply, real = true): unknown {
  if (r.ok && r.op === KvOp.Get && r.found) {
    if (real) {
      expect(r.createIndex).toBeGreaterThan(1);
      expect(r.modIndex).toBeGreaterThanOrEqual(r.createIndex);
    }
    const { createIndex: _c, modIndex: _m, ...rest } = r;
    return rest;
  }
  return r;
}

function body(o: Outcome): Uint8Array {
  if (!o.ok) throw new Error(`request failed: ${o.code} ${o.message}`);
  return o.body;
}

async function modelRun(shards: number, seed: number): Promise<number> {
  const pool = await startPool({ dataDir: freshDir(), workers: 2, shards: specs(shards), tickMs: 10, seed });
  try {
    await leaders(pool, shards);
    const model = new KvModel();
    const prng = new Prng(seed);
    const key = (): Uint8Array => enc.encode(`k${prng.int(0, 39)}`);
    let ops = 0;
    for (let batch = 0; batch < 30; batch++) {
      if (batch % 3 !== 2) {
        // Writes on distinct keys, all in flight at once (they commute, so any commit order matches the model).
        const seen = new Set<string>();
        const cmds: { cmd: Uint8Array; shard: ShardId }[] = [];
        for (let i = 0; i < 24; i++) {
          const t = tenants[prng.int(0, 2)]!;
          const k = key();
          const id = `${t}/${Buffer.from(k).toString()}`;
          if (seen.has(id)) continue;
          seen.add(id);
          const pick = prng.int(0, 9);
          const value = enc.encode(`v${batch}-${i}-${'x'.repeat(prng.int(0, 200))}`);
          const cmd = pick < 5 ? encodePut(t, k, value) : pick < 7 ? encodeDelete(t, k) : encodeCas(t, k, prng.int(0, 3), value);
          cmds.push({ cmd, shard: placement(t, k, shards) });
        }
        const outs = await Promise.all(cmds.map((c) => pool.propose(c.shard, { command: c.cmd })));
        outs.forEach((o, i) => {
          const cmd = cmds[i]!.cmd;
          const op = cmd[0] as KvOp;
          expect(normalize(decodeKvReply(op, body(o)))).toEqual(normalize(model.apply(cmd, 0), false));
        });
        ops += cmds.length;
      } else {
        // Reads: gets by key, and prefix scans fanned out to every shard and merged.
        const gets = Array.from({ length: 20 }, () => {
          const t = tenants[prng.int(0, 2)]!;
          const k = key();
          return { q: encodeGet(t, k), shard: placement(t, k, shards) };
        });
        const outs = await Promise.all(gets.map((g) => pool.read(g.shard, g.q)));
        outs.forEach((o, i) => expect(normalize(decodeKvReply(KvOp.Get, body(o)))).toEqual(normalize(model.query(gets[i]!.q), false)));
        for (const t of tenants) {
          const limit = prng.int(1, 12);
          const q = encodeScan(t, enc.encode(`k${prng.int(1, 3)}`), limit);
          const parts = await Promise.all(Array.from({ length: shards }, (_, s) => pool.read(s as ShardId, q, 'linearizable')));
          let more = false;
          const items: ScanItem[] = [];
          for (const p of parts) {
            const r = decodeKvReply(KvOp.Scan, body(p));
            if (!r.ok) throw new Error(r.code);
            more ||= r.more;
            items.push(...r.items);
          }
          items.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
          more ||= items.length > limit;
          expect({ ok: true, op: KvOp.Scan, items: items.slice(0, limit), more }).toEqual(model.query(q));
        }
        ops += gets.length + tenants.length;
      }
    }
    return ops;
  } finally {
    await pool.close();
  }
}

describe('the single-node in-process path: ring -> shard host -> LMDB -> reply', () => {
  for (const shards of [1, 4, 16, 64]) {
    test(`${shards} shards on 2 workers give the reference model's results`, async () => {
      const ops = await modelRun(shards, 1000 + shards);
      expect(ops).toBeGreaterThan(400);
    });
  }
});

describe('worker pool life', () => {
  test('a worker thread that throws is restarted and its shards serve again, with their data', async () => {
    const pool = await startPool({ dataDir: freshDir(), workers: 2, shards: specs(4), tickMs: 10 });
    try {
      await leaders(pool, 4);
      for (let s = 0; s < 4; s++)
        expect((await pool.propose(s as ShardId, { command: encodePut('t', enc.encode(`before${s}`), enc.encode('1')) })).ok).toBe(true);
      const restarted = new Promise<number>((resolve) => pool.once('restart', (w) => resolve(w)));
      expect(pool.workersRunning()).toEqual([true, true]);
      await pool.control(0).crash('test');
      // While it is down, requests to its shards fail clearly instead of hanging.
      const during = await pool.propose(0 as ShardId, { command: encodePut('t', enc.encode('during'), enc.encode('1')) });
      expect(during.ok ? 'ok' : during.code).toMatch(/^(ok|WorkerUnavailable|WorkerRestarted|NotLeader)$/);
      expect(await restarted).toBe(0);
      expect(pool.workersRunning()).toEqual([true, true]);
      // Shards of worker 1 never stopped; those of worker 0 come back (after electing themselves).
      for (let s = 0; s < 4; s++) {
        const shard = s as ShardId;
        let o: Outcome;
        do {
          o = await pool.propose(shard, { command: encodePut('t', enc.encode(`after${s}`), enc.encode('2')) });
        } while (!o.ok && o.code === 'NotLeader');
        expect(o.ok).toBe(true);
        const g = decodeKvReply(KvOp.Get, body(await pool.read(shard, encodeGet('t', enc.encode(`before${s}`)))));
        expect(g).toMatchObject({ ok: true, found: true, version: 1 });
      }
      expect(pool.counters.restarts).toBe(1);
    } finally {
      await pool.close();
    }
  });

  test('a control call the worker dies with ends with WorkerUnavailable instead of waiting forever (the status of /v1/status)', async () => {
    const workerUrl = new URL('../../support/unanswering-worker.mjs', import.meta.url);
    const pool = await WorkerPool.start({ dataDir: freshDir(), workers: 1, shards: specs(1), tickMs: 10, workerUrl });
    try {
      const asked = pool
        .call(0, async (api) => api.status())
        .then(
          () => 'answered',
          (e: unknown) => (e instanceof PoolError ? e.code : String(e)),
        );
      const hung = new Promise<string>((resolve) => setTimeout(() => resolve('still waiting after 10 s'), 10_000).unref());
      expect(await Promise.race([asked, hung])).toBe('WorkerUnavailable');
      // Asked again while it is down: refused at once.
      expect(await pool.call(0, async (api) => api.status()).catch((e: unknown) => (e as PoolError).code)).toBe('WorkerUnavailable');
    } finally {
      await pool.destroy();
    }
  });

  test('a worker that exits before it starts fails the start with WorkerStartFailed and its exit code', async () => {
    const workerUrl = new URL('../../support/silent-exit-worker.mjs', import.meta.url);
    const err = await WorkerPool.start({ dataDir: freshDir(), workers: 2, shards: specs(2), tickMs: 10, workerUrl }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PoolError);
    expect(err).toMatchObject({ code: 'WorkerStartFailed', message: expect.stringMatching(/exited \(code 7\) before it started/) as unknown });
  });

  test('a worker that neither starts nor exits fails the start with WorkerStartFailed after startTimeoutMs, and is stopped', async () => {
    const workerUrl = new URL('../../support/mute-worker.mjs', import.meta.url);
    const beats = new SharedArrayBuffer(4);
    const view = new Int32Array(beats);
    const err = await WorkerPool.start({
      dataDir: freshDir(),
      workers: 1,
      shards: specs(1),
      tickMs: 10,
      workerUrl,
      workerData: { beats },
      startTimeoutMs: 300,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PoolError);
    expect(err).toMatchObject({ code: 'WorkerStartFailed', message: expect.stringMatching(/worker 0 did not start in 300 ms/) as unknown });
    // It ran until then, and is stopped.
    expect(Atomics.load(view, 0)).toBeGreaterThan(0);
    await vi.waitFor(
      async () => {
        const before = Atomics.load(view, 0);
        await new Promise((r) => setTimeout(r, 100));
        expect(Atomics.load(view, 0)).toBe(before);
      },
      { timeout: 10_000, interval: 10 },
    );
  });

  test('stopping a pool while its workers commit never hangs (a worker is stopped after its turn, not inside a transaction); what was acknowledged is there after', async () => {
    // Terminating a worker inside an LMDB write transaction deadlocks the thread's teardown, and
    // the stop never returns. Writes in flight keep the worker committing; the stop lands at a
    // random moment of it, round after round.
    const dir = freshDir();
    const value = new Uint8Array(2000).fill(5);
    const acked: string[] = [];
    const prng = new Prng(7);
    for (let round = 0; round < 16; round++) {
      const pool = await startPool({ dataDir: dir, workers: 1, shards: specs(2), tickMs: 10 });
      await leaders(pool, 2);
      let stop = false;
      let n = 0;
      const writers = Array.from({ length: 16 }, async (_, i) => {
        while (!stop) {
          const key = `r${round}-${i}-${n++}`;
          const o = await pool.propose((i % 2) as ShardId, { command: encodePut('t', enc.encode(key), value) });
          if (o.ok) acked.push(key);
          // A refused proposal comes back at once: let the event loop turn.
          else await new Promise((r) => setImmediate(r));
        }
      });
      await new Promise((r) => setTimeout(r, prng.int(50, 350)));
      const stopped = pool.destroy().then(() => 'stopped');
      const hung = new Promise<string>((resolve) => setTimeout(() => resolve(`round ${round}: the stop hung for 40 s`), 40_000).unref());
      expect(await Promise.race([stopped, hung])).toBe('stopped');
      stop = true;
      await Promise.all(writers);
    }
    expect(acked.length).toBeGreaterThan(0);
    const pool = await startPool({ dataDir: dir, workers: 1, shards: specs(2), tickMs: 10 });
    try {
      await leaders(pool, 2);
      for (const key of acked.filter((_, i) => i % 25 === 0)) {
        const i = Number(key.split('-')[1]);
        const g = decodeKvReply(KvOp.Get, body(await pool.read((i % 2) as ShardId, encodeGet('t', enc.encode(key)))));
        expect(g).toMatchObject({ ok: true, found: true });
      }
    } finally {
      await pool.close();
    }
  });

  test('restarting with another worker count refuses clearly; the same count finds every shard', async () => {
    const dir = freshDir();
    const first = await startPool({ dataDir: dir, workers: 2, shards: specs(4), tickMs: 10 });
    await leaders(first, 4);
    for (let s = 0; s < 4; s++)
      expect((await first.propose(s as ShardId, { command: encodePut('t', enc.encode(`k${s}`), enc.encode(`v${s}`)) })).ok).toBe(true);
    await first.close();
    for (const workers of [1, 3]) {
      const err = await startPool({ dataDir: dir, workers, shards: specs(4), tickMs: 10 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PoolError);
      expect((err as PoolError).code).toBe('WorkerCountMismatch');
      expect((err as PoolError).message).toMatch(/--workers 2/);
      // A refused start leaves nothing behind: no store for the worker that does not belong.
      expect(readdirSync(dir).sort()).toEqual(['worker-0', 'worker-1']);
    }
    const again = await startPool({ dataDir: dir, workers: 2, shards: specs(4), tickMs: 10 });
    try {
      await leaders(again, 4);
      for (let s = 0; s < 4; s++) {
        const g = decodeKvReply(KvOp.Get, body(await again.read(s as ShardId, encodeGet('t', enc.encode(`k${s}`)))));
        expect(g).toMatchObject({ ok: true, found: true, value: enc.encode(`v${s}`) });
      }
    } finally {
      await again.close();
    }
  });

  test('request bytes in flight beyond inflightBytesMax are answered Overloaded at once; a lone request beyond it still goes', async () => {
    const pool = await startPool({ dataDir: freshDir(), workers: 1, shards: specs(1), tickMs: 10, inflightBytesMax: 64 * 1024 });
    try {
      await leaders(pool, 1);
      const value = new Uint8Array(20 * 1024).fill(3);
      const outs = await Promise.all(Array.from({ length: 12 }, (_, i) => pool.propose(0 as ShardId, { command: encodePut('t', enc.encode(`k${i}`), value) })));
      const refused = outs.filter((o) => !o.ok);
      // 12 × 20 KiB at once against 64 KiB: three are taken, the rest refused without waiting.
      expect(outs.filter((o) => o.ok)).toHaveLength(3);
      for (const o of refused) expect(o).toMatchObject({ ok: false, code: 'Overloaded', message: expect.stringContaining('inflightBytesMax') as unknown });
      expect(pool.counters.bytesRefused).toBe(9);
      // Alone, a request larger than the budget is taken (it could never be otherwise).
      expect((await pool.propose(0 as ShardId, { command: encodePut('t', enc.encode('big'), new Uint8Array(100 * 1024)) })).ok).toBe(true);
      expect(pool.inflight()).toBe(0);
    } finally {
      await pool.close();
    }
  });

  test('a full in-ring or in-flight table refuses work with Overloaded; every request gets an answer', async () => {
    // KV limits small enough that its largest request and reply fit one record of a 4 KiB ring.
    const kvLimits = { keyBytesMax: 16, valueBytesMax: 256, scanLimitMax: 10, scanBytesMax: 1024 };
    const pool = await startPool({ dataDir: freshDir(), workers: 1, shards: specs(1), tickMs: 10, ringBytes: 4096, inflightRequestsMax: 200, kvLimits });
    try {
      await leaders(pool, 1);
      const outs = await Promise.all(
        Array.from({ length: 2000 }, (_, i) => pool.propose(0 as ShardId, { command: encodePut('t', enc.encode(`k${i}`), enc.encode('v'.repeat(100))) })),
      );
      const codes = new Map<string, number>();
      for (const o of outs) codes.set(o.ok ? 'ok' : o.code, (codes.get(o.ok ? 'ok' : o.code) ?? 0) + 1);
      expect(codes.get('Overloaded')).toBeGreaterThan(0);
      expect(codes.get('ok')).toBeGreaterThan(0);
      expect([...codes.keys()].sort()).toEqual(['Overloaded', 'ok']);
      // What was acknowledged is there.
      const okKeys = outs.flatMap((o, i) => (o.ok ? [i] : []));
      for (const i of okKeys.slice(0, 50)) {
        expect(decodeKvReply(KvOp.Get, body(await pool.read(0 as ShardId, encodeGet('t', enc.encode(`k${i}`)))))).toMatchObject({ found: true });
      }
    } finally {
      await pool.close();
    }
  });

  test('while a worker is down it counts as not running (what liveness announces)', async () => {
    const pool = await startPool({ dataDir: freshDir(), workers: 2, shards: specs(2), tickMs: 10 });
    try {
      const restarted = new Promise<number>((resolve) => pool.once('restart', (w) => resolve(w)));
      await pool.control(1).crash('test');
      await vi.waitFor(() => expect(pool.workersRunning()).toEqual([true, false]), { interval: 2 });
      expect(pool.isRunning(1)).toBe(false);
      await restarted;
      expect(pool.isRunning(1)).toBe(true);
    } finally {
      await pool.close();
    }
  });

  test('a wake that names shards reaches only their workers and wakes only those quiet and led by the given leader', async () => {
    const pool = await startPool({ dataDir: freshDir(), workers: 2, shards: specs(4), tickMs: 5, raft: { quiesceAfterTicks: 100 } }); // quiet again 0.5 s after a wake
    const active = async (): Promise<number> =>
      (await pool.metrics())
        .flat()
        .filter((m) => m.name === 'iroh_raft_host_active_shards')
        .reduce((n, m) => n + m.values.reduce((a, v) => a + v.value, 0), 0);
    try {
      await leaders(pool, 4);
      await vi.waitFor(async () => expect(await active()).toBe(0), { timeout: 10_000 });
      const ids = (...s: number[]): ShardId[] => s as ShardId[];
      expect(await pool.wake(2, ids(0, 1, 2, 3))).toBe(0); // led by node 1, not 2
      expect(await pool.wake(1, ids(1, 2, 99))).toBe(2); // one on each worker; 99 is hosted nowhere
      expect(await active()).toBe(2);
      expect(await pool.wake(1, ids(1))).toBe(0); // awake already
    } finally {
      await pool.close();
    }
  });

  test('invalid pool configuration is refused with InvalidConfig', async () => {
    for (const bad of [{ workers: 0 }, { tickMs: 0 }, { inflightRequestsMax: -1 }, { startTimeoutMs: 0 }]) {
      const err = await startPool({ dataDir: freshDir(), shards: specs(1), ...bad }).catch((e: unknown) => e);
      expect((err as PoolError).code).toBe('InvalidConfig');
    }
    const dup = await startPool({ dataDir: freshDir(), workers: 1, shards: [...specs(2), ...specs(1)] }).catch((e: unknown) => e);
    expect((dup as PoolError).code).toBe('InvalidConfig');
  });
});

describe('snapshot streams', () => {
  test('a shard streams a consistent view in pieces while it keeps taking writes; the pieces pack and unpack checksummed', async () => {
    const pool = await startPool({ dataDir: freshDir(), workers: 2, shards: specs(2), tickMs: 10 });
    try {
      await leaders(pool, 2);
      const value = new Uint8Array(3000).map((_, i) => (i * 7) % 251);
      for (let i = 0; i < 200; i++) expect((await pool.propose(1 as ShardId, { command: encodePut('t', enc.encode(`k${i}`), value) })).ok).toBe(true);
      const opened = (await pool.snapshotOpen(1 as ShardId))!;
      expect(opened.metadata.index).toBeGreaterThan(200);
      // Writes after the stream opened are not in it: the view is one read transaction.
      for (let i = 200; i < 250; i++) expect((await pool.propose(1 as ShardId, { command: encodePut('t', enc.encode(`k${i}`), value) })).ok).toBe(true);
      const pieces: Uint8Array[] = [];
      for (
        let p = await pool.snapshotNext(1 as ShardId, opened.stream, 16 * 1024);
        p !== undefined;
        p = await pool.snapshotNext(1 as ShardId, opened.stream, 16 * 1024)
      ) {
        pieces.push(p);
      }
      await pool.snapshotClose(1 as ShardId, opened.stream);
      expect(pieces.length).toBeGreaterThan(10);
      // Each piece holds whole pairs, within the budget (a pair is ~3 KB).
      for (const p of pieces) expect(p.length).toBeLessThanOrEqual(16 * 1024);
      const raw = Buffer.concat(pieces);
      const keys = [...decodeDataDump(raw)].map(({ key }) => Buffer.from(key).toString('latin1'));
      expect(keys.filter((k) => k.startsWith('\x01t')).length).toBe(200);
      // Through the piscina chunker and back, and a damaged chunk is refused.
      const chunks = await pool.packSnapshotBytes(pieces[0]!);
      expect(chunks).toHaveLength(1);
      const c = chunks[0]!;
      expect(Buffer.from(await pool.unpackSnapshotChunk({ compressed: c.compressed, rawLength: c.length, crc32: c.crc32 }))).toEqual(Buffer.from(pieces[0]!));
      await expect(pool.unpackSnapshotChunk({ compressed: c.compressed, rawLength: c.length, crc32: (c.crc32 + 1) >>> 0 })).rejects.toMatchObject({
        code: 'ChecksumMismatch',
      });
      // A closed stream is an error with a code; a shard not hosted here has no stream.
      await expect(pool.snapshotNext(1 as ShardId, opened.stream, 1024)).rejects.toMatchObject({ message: expect.stringContaining('closed') as unknown });
      expect(await pool.snapshotOpen(7 as ShardId)).toBeUndefined();
    } finally {
      await pool.close();
    }
  });
});
