/**
 * Makes a data directory as iroh-raft wrote it before the keyed placement hash, for the placement
 * test: one member, its keys placed by the unkeyed function (FNV-1a, the only one then) through
 * a real worker pool and LMDB, and cluster.json as that version wrote it (no `placement`).
 *
 * Usage: legacy-dir.ts <dataDir> <peerId> <shards> <workers> <keysJson>
 *   keysJson: a JSON array of keys (tenant `default`); each is stored with the value `v:<key>`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodePut } from '../../src/shards/kv/index.js';
import type { NodeId, ShardId } from '../../src/shards/raft/index.js';
import { shardOf } from '../../src/wire/shard-hash.js';
import { startPool } from '../support/pool.js';

const [dataDir, peerId, shardsArg, workersArg, keysJson] = process.argv.slice(2);
const shards = Number(shardsArg);
const workers = Number(workersArg);
const keys = JSON.parse(keysJson!) as string[];
const enc = new TextEncoder();

const pool = await startPool({
  dataDir: dataDir!,
  workers,
  nodeId: 1,
  shards: Array.from({ length: shards }, (_, s) => ({ shard: s as ShardId, voters: [1 as NodeId] })),
  tickMs: 10,
  requestTimeoutMs: 10_000,
});
let seq = 0;
for (const key of keys) {
  const k = enc.encode(key);
  for (let attempt = 0; ; attempt++) {
    const o = await pool.propose(
      shardOf('default', k, shards) as ShardId,
      { clientId: 2 ** 52 + 7, seq: ++seq, command: encodePut('default', k, enc.encode(`v:${key}`)) },
      10_000,
    );
    if (o.ok) break;
    // No leader yet right after the start.
    if (attempt > 200 || o.code !== 'NotLeader') throw new Error(`put ${key}: ${o.code} ${o.message}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
await pool.close();
// The layout of cluster.json before `placement` existed (DataDir.writeCluster of that version).
const layout = { shards, members: [peerId], replicas: 1, workers };
writeFileSync(join(dataDir!, 'cluster.json'), `${JSON.stringify(layout, null, 2)}\n`, { mode: 0o600 });
console.log(`wrote ${keys.length} keys`);
