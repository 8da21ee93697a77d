/**
 * Durable proposals per second through one worker: requests go main thread -> in-ring -> shard
 * host (raft, KV state machine) -> LMDB (one synchronous, flushed commit per turn for all shards)
 * -> out-ring -> reply. A reply means the write is on disk.
 *
 *   npm run bench:store -- [--seconds 3] [--runs 3] [--shards 1,16,64] [--inflight 512] [--value-size 128]
 *
 * Reports the median of `--runs` runs per shard count, with commits (fsyncs) per second and
 * entries per commit, so group commit shows: fsyncs per second should not grow with shards.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { encodePut } from '../src/shards/kv/index.js';
import type { NodeId, ShardId } from '../src/shards/raft/index.js';
import { startPool } from '../test/support/pool.js';
import { median } from './stats.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    runs: { type: 'string', default: '3' },
    shards: { type: 'string', default: '1,16,64' },
    inflight: { type: 'string', default: '512' },
    'value-size': { type: 'string', default: '128' },
  },
});
const seconds = Number(values.seconds);
const runs = Number(values.runs);
const inflight = Number(values.inflight);
const valueSize = Number(values['value-size']);
const shardCounts = values.shards.split(',').map(Number);
for (const [name, v] of [
  ['seconds', seconds],
  ['runs', runs],
  ['inflight', inflight],
  ['value-size', valueSize],
  ...shardCounts.map((s) => ['shards', s] as const),
] as const) {
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`--${name} must be a positive number`);
    process.exit(2);
  }
}

interface Result {
  proposalsPerSec: number;
  commitsPerSec: number;
  entriesPerCommit: number;
  errors: number;
}

async function once(shards: number): Promise<Result> {
  const dir = mkdtempSync(join(os.tmpdir(), 'iroh-raft-bench-store-'));
  const pool = await startPool({
    dataDir: dir,
    workers: 1,
    shards: Array.from({ length: shards }, (_, s) => ({ shard: s as ShardId, voters: [1 as NodeId] })),
    tickMs: 10,
    inflightRequestsMax: inflight * 2,
  });
  try {
    while (pool.leaders.size < shards) await new Promise((r) => setTimeout(r, 5));
    const value = new Uint8Array(valueSize).fill(120);
    const enc = new TextEncoder();
    const before = (await pool.control(0).status()).counters;
    let done = 0;
    let errors = 0;
    let stop = false;
    const t0 = performance.now();
    setTimeout(() => (stop = true), seconds * 1000);
    await Promise.all(
      Array.from({ length: inflight }, async (_, lane) => {
        for (let i = 0; !stop; i++) {
          const o = await pool.propose(((lane + i) % shards) as ShardId, { command: encodePut('bench', enc.encode(`k${lane}-${i}`), value) });
          if (o.ok) done++;
          else errors++;
        }
      }),
    );
    const secs = (performance.now() - t0) / 1000;
    const after = (await pool.control(0).status()).counters;
    const commits = after.commits - before.commits;
    return {
      proposalsPerSec: done / secs,
      commitsPerSec: commits / secs,
      entriesPerCommit: (after.entriesPersisted - before.entriesPersisted) / commits,
      errors,
    };
  } finally {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`bench:store  one worker, ${inflight} proposals in flight, ${valueSize}-byte values, ${runs} x ${seconds} s per row`);
console.log(`machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, node ${process.version}, ${new Date().toISOString().slice(0, 10)}`);
console.log('shards  proposals/s (median, min-max)   fsyncs/s   entries/fsync  errors');
for (const shards of shardCounts) {
  const rs: Result[] = [];
  for (let r = 0; r < runs; r++) rs.push(await once(shards));
  const p = rs.map((r) => r.proposalsPerSec);
  const mid = rs.find((r) => r.proposalsPerSec === median(p))!;
  console.log(
    `${String(shards).padStart(6)}  ${median(p).toFixed(0).padStart(10)} (${Math.min(...p).toFixed(0)}-${Math.max(...p).toFixed(0)})`.padEnd(38) +
      `${mid.commitsPerSec.toFixed(0).padStart(9)}  ${mid.entriesPerCommit.toFixed(1).padStart(13)}  ${rs.reduce((n, r) => n + r.errors, 0)}`,
  );
}
