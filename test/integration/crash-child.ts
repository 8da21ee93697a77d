/**
 * A node-like process for the crash-recovery test: it starts a worker pool over a data directory,
 * first verifies every write acknowledged by earlier runs, then writes under load and prints each
 * acknowledged write on stdout ("ack <key>") until it is killed.
 *
 * Usage: crash-child.ts <dataDir> <acksFile> <shards> <workers> <runId> [--verify-only]
 */
import { readFileSync, existsSync } from 'node:fs';
import { decodeKvReply, encodeGet, encodePut, KvOp } from '../../src/shards/kv/index.js';
import type { ShardId } from '../../src/shards/raft/index.js';
import { shardOf } from '../../src/router/placement.js';
import { startPool } from '../support/pool.js';

const [dataDir, acksFile, shardsArg, workersArg, runArg, flag] = process.argv.slice(2);
const shards = Number(shardsArg);
const run = Number(runArg);
const enc = new TextEncoder();
const valueOf = (key: string): Uint8Array => enc.encode(`value-of-${key}`);
const say = (o: unknown): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
};

const pool = await startPool({
  dataDir: dataDir!,
  workers: Number(workersArg),
  shards: Array.from({ length: shards }, (_, s) => ({ shard: s as ShardId, voters: [1 as never] })),
  tickMs: 10,
  // Keep the whole log, so the log can be replayed against the data.
  compactEveryEntries: 1e9,
  requestTimeoutMs: 10_000,
});

/** Answers that say "not now": no leader yet (right after a start), or backpressure. */
const TRANSIENT = new Set(['NotLeader', 'ReadDropped', 'WorkerUnavailable', 'Overloaded']);

/** Retries while the answer is transient (see TRANSIENT), backing off up to 100 ms. */
async function until<T>(f: () => Promise<{ ok: boolean; code?: string } & T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const r = await f();
    if (r.ok || r.code === undefined || !TRANSIENT.has(r.code)) return r;
    await new Promise((res) => setTimeout(res, Math.min(100, 5 * 2 ** Math.min(attempt, 5))));
  }
}

/**
 * Runs `f` over `items` with at most `limit` calls in flight: a checker that floods the system
 * it checks measures its own load, not the system (the pool rightly answers Overloaded when its
 * in-ring or its in-flight table is full).
 */
async function bounded<T>(items: readonly T[], limit: number, f: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await f(items[next++]!);
    }),
  );
}

/** Reads in flight at most while verifying. */
const VERIFY_CONCURRENCY = 32;

// ---------------------------------------------------------------- verify what earlier runs acknowledged
const acked = existsSync(acksFile!)
  ? readFileSync(acksFile!, 'utf8')
      .split('\n')
      .filter((l) => l.length > 0)
  : [];
const problems: string[] = [];
await bounded(acked, VERIFY_CONCURRENCY, async (key) => {
  const shard = shardOf('t', enc.encode(key), shards);
  const o = await until(() => pool.read(shard, encodeGet('t', enc.encode(key))));
  if (!o.ok) return problems.push(`${key}: read failed ${JSON.stringify(o)}`);
  const r = decodeKvReply(KvOp.Get, (o as { body: Uint8Array }).body);
  if (!r.ok || !('found' in r) || !r.found) return problems.push(`${key}: missing`);
  if (Buffer.compare(Buffer.from(r.value), Buffer.from(valueOf(key))) !== 0) problems.push(`${key}: wrong value`);
  if (r.version !== 1) problems.push(`${key}: version ${r.version} (applied more than once)`);
});
const checks = (await Promise.all(Array.from({ length: pool.workers }, (_, w) => pool.control(w).verify()))).flat();
for (const { shard, result } of checks) {
  if (!result?.checked) problems.push(`shard ${shard}: not checked`);
  else if (result.mismatches.length > 0) problems.push(`shard ${shard}: log and data differ at ${result.mismatches.join(',')}`);
}
say({ type: 'verified', acked: acked.length, problems, entries: checks.reduce((n, c) => n + (c.result?.entriesReplayed ?? 0), 0) });

if (flag === '--verify-only') {
  await pool.close();
  process.exit(0);
}

// ---------------------------------------------------------------- write until killed
say({ type: 'loading' });
const lanes = 32;
await Promise.all(
  Array.from({ length: lanes }, async (_, lane) => {
    const clientId = run * 1000 + lane + 1;
    for (let seq = 1; ; seq++) {
      const key = `r${run}-l${lane}-${seq}`;
      const o = await until(() =>
        pool.propose(shardOf('t', enc.encode(key), shards), { clientId, seq, command: encodePut('t', enc.encode(key), valueOf(key)) }),
      );
      if (o.ok) process.stdout.write(`ack ${key}\n`);
      else say({ type: 'error', key, o });
    }
  }),
);
