/**
 * One real worker thread whose out-ring nobody drains (a main thread that stopped reading it):
 * the worker must not block on it. It keeps ticking its shards and answering control calls, holds
 * client replies in its bounded outbox, drops (and counts) raft messages past the bound, answers
 * new client requests Overloaded at once, and delivers every answer exactly once when the ring drains.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { RecordKind, ReadConsistency, decodeReply, encodeRead } from '../../../src/wire/index.js';
import { encodeGet } from '../../../src/shards/kv/index.js';
import type { NodeId, ShardId } from '../../../src/shards/raft/index.js';
import { Ring } from '../../../src/workers/ring.js';
import type { WorkerInit, WorkerNotice } from '../../../src/workers/protocol.js';
import type { WorkerApi } from '../../../src/workers/worker.js';

const bootstrap = new URL('../../support/ts-worker.mjs', import.meta.url);
const entry = new URL('../../../src/workers/worker.ts', import.meta.url).href;
const root = mkdtempSync(join(tmpdir(), 'iroh-raft-worker-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let running: Worker | undefined;
afterEach(async () => {
  await running?.terminate();
  running = undefined;
});

interface Harness {
  readonly api: Comlink.Remote<WorkerApi>;
  readonly inRing: Ring;
  readonly outRing: Ring;
}

/** Starts the worker entry with its own rings; the test is its main thread and drains nothing. */
async function startWorker(dir: string, outRingBytes: number, outboxBytesMax: number): Promise<Harness> {
  const inBuf = Ring.allocate(1 << 16);
  const outBuf = Ring.allocate(outRingBytes);
  const init: WorkerInit = {
    worker: 0,
    workers: 1,
    dataDir: dir,
    nodeId: 1,
    seed: 7,
    inRing: inBuf,
    outRing: outBuf,
    tickMs: 5,
    outboxBytesMax,
    shardsMax: 16,
    raft: { electionTimeoutTicks: 3 },
    compactEveryEntries: 10_000,
    compactKeepEntries: 1_000,
    kvLimits: undefined,
    stateMachine: undefined,
  };
  const worker = new Worker(bootstrap, { workerData: { entry, ...init } });
  running = worker;
  await new Promise<void>((resolve, reject) => {
    worker.on('message', (m: WorkerNotice) => {
      if (m.type === 'started') resolve();
      if (m.type === 'start-failed') reject(new Error(m.message));
    });
    worker.once('error', reject);
  });
  return { api: Comlink.wrap<WorkerApi>(nodeEndpoint(worker)), inRing: new Ring(inBuf), outRing: new Ring(outBuf) };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('a worker whose out-ring is full', () => {
  test('keeps ticking and answering control calls, holds replies, refuses new client work with Overloaded, and delivers every answer once drained', async () => {
    const h = await startWorker(join(root, 'full'), 1024, 2048);
    // Shard 0 has this node as its only voter: it elects itself and serves reads. Shard 1 has two
    // voters that do not exist: it campaigns every few ticks, and each campaign is raft messages.
    await h.api.openShards([
      { shard: 0 as ShardId, voters: [1 as NodeId] },
      { shard: 1 as ShardId, voters: [1, 2, 3] as NodeId[] },
    ]);

    // Nobody reads the out-ring: it fills, then the outbox up to its bound, then raft messages are
    // dropped. Control calls answer all along (a worker blocked on the ring could not answer).
    let st = await h.api.status();
    while (st.counters.outRingDrops === 0) {
      await sleep(10);
      st = await h.api.status();
    }
    expect(st.outbox.full).toBe(true);

    // Client work arriving now is refused with Overloaded (backpressure), while ticks go on.
    const reads = 50;
    for (let reqId = 1; reqId <= reads; reqId++) {
      const ok = h.inRing.tryWrite(
        RecordKind.ClientRead,
        0,
        encodeRead({ reqId, consistency: ReadConsistency.Stale, query: encodeGet('t', new TextEncoder().encode(`k${reqId}`)) }),
      );
      expect(ok).toBe(true);
    }
    const ticksBefore = st.counters.ticks;
    while (st.counters.ticks <= ticksBefore + 3 || st.counters.clientWorkRefused < reads) {
      await sleep(10);
      st = await h.api.status();
    }
    // None was started; the in-ring is empty (nothing waits behind them).
    expect(st.counters.reads).toBe(0);
    expect(h.inRing.usedBytes()).toBe(0);
    expect(st.outbox.full).toBe(true);
    // Past the bound only by the answers to the requests (one each, small).
    expect(st.outbox.bytes).toBeLessThan(2048 + 1024 + reads * 200);

    // The main thread reads again: every request taken gets exactly one answer.
    const answered = new Map<number, number>();
    let events = 0;
    while (answered.size < reads) {
      const r = h.outRing.read();
      if (r === undefined) {
        await h.outRing.waitForData(50);
        continue;
      }
      if (r.kind === RecordKind.ShardEvent) events++;
      if (r.kind !== RecordKind.ClientReply) continue;
      const reply = decodeReply(r.payload);
      expect(reply).toMatchObject({ ok: false, code: 'Overloaded' });
      answered.set(reply.reqId, (answered.get(reply.reqId) ?? 0) + 1);
    }
    expect([...answered.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: reads }, (_, i) => i + 1));
    expect([...answered.values()].every((n) => n === 1)).toBe(true);
    expect(events).toBeGreaterThan(0);
    st = await h.api.status();
    expect(st.counters.reads).toBe(0);
    expect(st.counters.outboxHeld).toBeGreaterThan(0);
    // Read on: once the outbox drains, the worker takes client work again (a request that still
    // met a full outbox is refused and sent again).
    let again = 1000;
    const ask = (): boolean =>
      h.inRing.tryWrite(
        RecordKind.ClientRead,
        0,
        encodeRead({ reqId: ++again, consistency: ReadConsistency.Stale, query: encodeGet('t', new TextEncoder().encode('k')) }),
      );
    expect(ask()).toBe(true);
    for (;;) {
      const r = h.outRing.read();
      if (r === undefined) {
        await h.outRing.waitForData(50);
        continue;
      }
      if (r.kind !== RecordKind.ClientReply) continue;
      const reply = decodeReply(r.payload);
      if (reply.reqId !== again) continue;
      if (reply.ok) break;
      expect(reply).toMatchObject({ code: 'Overloaded' });
      expect(ask()).toBe(true);
    }
    st = await h.api.status();
    expect(st.counters.reads).toBeGreaterThan(0);
    await h.api.shutdown();
  }, 60_000);
});
