/**
 * Snapshot catch-up with real processes, real Iroh and real LMDB, on shards larger than a ring
 * record (each holds about 2.7 MiB, most of it incompressible, so the deflated stream is that
 * large too): compaction every few entries makes a replica that was down catch up by snapshot
 * streamed in chunks, never by raft message.
 *
 * 1. A node down while every shard grows catches up: every shard reaches its leader's applied
 *    index, every key reads back from it with the exact bytes, nothing was dropped as oversize,
 *    and its staging area is empty afterwards.
 * 2. The sender is SIGKILLed in the middle of a transfer (a low --snapshot-bytes-per-sec keeps
 *    each one going for seconds): the transfer starts again from the shard's new leader and
 *    completes.
 * 3. The receiver is SIGKILLed in the middle of its second install (test hook kill-in-install.cjs,
 *    inside the install transaction, after the shard's data was cleared and part of the new data put):
 *    its LMDB files, opened directly, hold every shard either entirely as before or entirely as
 *    the new snapshot, applied index and data agreeing; restarted, it catches up completely.
 *
 * The tests run in order on one cluster: each starts from the state the previous one left.
 * Leader balancing runs as by default, so a node that caught up is handed leaderships at once
 * (test 1 checks that it is): catching up is judged with that in mind (see atLeadersApplied).
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { ShardHash } from '../../src/wire/shard-hash.js';
import { dataKey } from '../../src/shards/kv/index.js';
import { USAGE_PREFIX } from '../../src/shards/kv/storage.js';
import { RESERVED_PREFIX, Store } from '../../src/shards/store.js';
import type { ShardId } from '../../src/shards/raft/index.js';
import { workerDir } from '../../src/workers/protocol.js';
import { TestCluster, clusterHash, eventually, sleep } from './cluster.js';

const SHARDS = 4;
const TENANT = 'snap';
/** Each node sends snapshot bytes at most this fast, so one shard's transfer lasts seconds. */
const SNAPSHOT_BYTES_PER_SEC = 1 << 20;
const HOOK = new URL('./kill-in-install.cjs', import.meta.url).pathname;
const KiB = 1024;
const MiB = 1024 * KiB;

const c = new TestCluster({
  nodes: 3,
  shards: SHARDS,
  workers: 1,
  tickMs: 50,
  // Compaction after every 10 applied entries, keeping 2: a replica that misses a dozen writes of
  // a shard finds their entries gone from the leader's log and needs a snapshot.
  extra: ['--compact-every-entries', '8', '--compact-keep-entries', '2', '--snapshot-bytes-per-sec', String(SNAPSHOT_BYTES_PER_SEC)],
  // Does nothing unless IROH_RAFT_TEST_KILL_IN_INSTALL is set when a node starts (test 3).
  nodeArgs: ['--require', HOOK],
});
/** The cluster's key -> shard function (keyed: read from the cluster). */
let hash: ShardHash;
beforeAll(async () => {
  await c.start();
  hash = await clusterHash(c.node(1).url);
}, 90_000);
afterAll(() => c.close());

/** Every acknowledged write: key -> value (each key is written once, or again with the same bytes). */
const model = new Map<string, Buffer>();
const keysOf = new Map<ShardId, string[]>(Array.from({ length: SHARDS }, (_, s) => [s as ShardId, []]));

interface Status {
  node: number;
  shards: { shard: number; role: string; leader: number; commit: number; applied: number }[];
}
const status = async (i: number): Promise<Status> => (await (await fetch(`${c.node(i).url}/v1/status`)).json()) as Status;

/** Sum of a metric's samples on node `i` (over its labels). */
async function metric(i: number, name: string): Promise<number> {
  const text = await (await fetch(`${c.node(i).url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

const up = (): number[] => c.nodes.filter((n) => n.proc !== undefined).map((n) => n.index);

/** Writes `value` under `key` through node `via`, again until a 200 (the same bytes each time). */
async function put(via: number, key: string, value: Buffer): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${c.node(via).url}/v1/kv/${key}?tenant=${TENANT}`, { method: 'PUT', body: value, signal: AbortSignal.timeout(20_000) }).catch(
      () => undefined,
    );
    const text = (await res?.text()) ?? 'no answer';
    if (res?.status === 200) break;
    if (Date.now() > deadline) throw new Error(`PUT ${key} via node ${via}: ${res?.status ?? 0} ${text}`);
    await sleep(100);
  }
  model.set(key, value);
}

/** A key of TENANT that lives in `shard`, named after `tag`. */
function keyIn(shard: number, tag: string): string {
  for (let i = 0; ; i++) {
    const k = `${tag}-${i}`;
    if (hash.shardOf(TENANT, Buffer.from(k), SHARDS) === shard) return k;
  }
}

/**
 * Writes values of `sizes` bytes into every shard (the shards in parallel, through the nodes that
 * are up); `random` ones are incompressible, the others a repeated text that deflates well.
 */
async function writeEveryShard(tag: string, sizes: readonly { bytes: number; random: boolean }[]): Promise<void> {
  const via = up();
  for (let i = 0; i < sizes.length; i++) {
    for (let shard = 0; shard < SHARDS; shard++) {
      const { bytes, random } = sizes[i]!;
      const key = keyIn(shard, `${tag}${i}`);
      const value = random ? randomBytes(bytes) : Buffer.alloc(bytes, `${key} deflates well; `);
      await put(via[(shard + i) % via.length]!, key, value);
      keysOf.get(shard as ShardId)!.push(key);
    }
  }
}

/** Node `i` serves every key of the model with the exact bytes, from its own replica. */
async function readsBackEverything(i: number): Promise<boolean> {
  for (const [key, value] of model) {
    const res = await fetch(`${c.node(i).url}/v1/kv/${key}?tenant=${TENANT}&consistency=stale`);
    const got = Buffer.from(await res.arrayBuffer());
    if (res.status !== 200 || !got.equals(value)) return false;
  }
  return true;
}

/** Raft node id -> process index. */
async function processOf(): Promise<Map<number, number>> {
  const m = new Map<number, number>();
  for (const i of up()) m.set((await status(i)).node, i);
  return m;
}

/**
 * Every shard of node `i` has applied exactly what its leader has applied (both read now). A shard
 * that node `i` leads itself counts when it has applied its whole commit index and no other replica
 * has applied more: leader balancing hands a node leaderships as soon as it has caught up (a
 * transfer goes only to a replica holding the commit index), so a node that caught up may well
 * lead some shards by the time this is asked.
 */
async function atLeadersApplied(i: number): Promise<boolean> {
  const mine = await status(i);
  const procs = await processOf();
  for (const s of mine.shards) {
    const leader = procs.get(s.leader);
    if (leader === undefined) return false;
    if (leader === i) {
      if (s.role !== 'leader' || s.applied !== s.commit) return false;
      for (const j of up()) {
        const other = (await status(j)).shards.find((t) => t.shard === s.shard);
        if (j !== i && (other === undefined || other.applied > s.applied)) return false;
      }
      continue;
    }
    const theirs = (await status(leader)).shards.find((t) => t.shard === s.shard);
    if (theirs?.role !== 'leader' || theirs.applied !== s.applied) return false;
  }
  return mine.shards.length === SHARDS;
}

/** Every shard's applied index on its leader (the index a snapshot of it covers at least). */
async function leadersApplied(): Promise<Map<number, number>> {
  const procs = await processOf();
  const out = new Map<number, number>();
  for (const i of up()) for (const s of (await status(i)).shards) if (s.role === 'leader' && procs.get(s.leader) === i) out.set(s.shard, s.applied);
  expect(out.size).toBe(SHARDS);
  return out;
}

const staged = (i: number): string[] => readdirSync(join(c.node(i).data, 'staging'));

async function everyShardLed(): Promise<void> {
  await eventually(
    async () => (await Promise.all(up().map((n) => fetch(`${c.node(n).url}/healthz`)))).every((r) => r.status === 200),
    60_000,
    'every shard has a leader',
  );
}

/** Stored value layout of the KV: version, createIndex, modIndex (f64 each), then the value. */
const STORED_HEADER_BYTES = 24;

/**
 * Per shard of a data directory, read from its LMDB files: the applied index; the data as hex key
 * -> sha256 of the stored bytes (the state machine's keys and the host's reserved ones); and per
 * key of the KV, the sha256 of its value (the stored bytes after the KV's header).
 */
/** The hex prefix of the test tenant's keys in a shard's data. */
const TENANT_PREFIX = Buffer.from(dataKey(TENANT, new Uint8Array(0))).toString('hex');

async function onDisk(i: number): Promise<Map<ShardId, Shard>> {
  const store = Store.open({ path: workerDir(c.node(i).data, 0), worker: 0, workers: 1 });
  try {
    const out = new Map<ShardId, Shard>();
    // The data shards; the meta group (shard id SHARDS) is not what this test streams.
    for (const id of store.shardIds().filter((s) => s < SHARDS)) {
      const ss = store.shard(id);
      const data = new Map<string, string>();
      const values = new Map<string, string>();
      for (const { key, value } of ss.data.getRange({})) {
        data.set(hex(key), digest(value));
        // The test tenant's keys only: not the host's sessions (0xff), the KV's usage counts (0x00),
        // nor the nodes' own records of `_system` (the cluster's placement key).
        if (key[0] !== RESERVED_PREFIX && key[0] !== USAGE_PREFIX && hex(key).startsWith(TENANT_PREFIX))
          values.set(hex(key), digest(value.subarray(STORED_HEADER_BYTES)));
      }
      out.set(id, { applied: ss.applied(), data, values });
    }
    return out;
  } finally {
    await store.close();
  }
}

interface Shard {
  applied: number;
  data: Map<string, string>;
  values: Map<string, string>;
}
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const digest = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

test('a node down while every shard grows past a ring record catches up by streamed snapshots: applied index, every byte, empty staging', async () => {
  await everyShardLed();
  await c.kill(3);
  // A small write per shard first: it waits for the shards node 3 led to elect a new leader.
  await writeEveryShard('w', [{ bytes: 10, random: false }]);
  // About 2.7 MiB per shard, 2 MiB of it incompressible, in 13 writes (more than compaction keeps).
  await writeEveryShard('a', [
    { bytes: MiB, random: true },
    { bytes: 768 * KiB, random: true },
    { bytes: 384 * KiB, random: false },
    { bytes: 256 * KiB, random: true },
    { bytes: 16 * KiB, random: true },
    { bytes: 16 * KiB, random: false },
    { bytes: 4 * KiB, random: true },
    ...Array.from({ length: 6 }, () => ({ bytes: 200, random: true })),
  ]);

  await c.startNode(3);
  await eventually(() => atLeadersApplied(3), 90_000, "node 3's shards at their leaders' applied index");
  expect(await readsBackEverything(3)).toBe(true);
  // Every shard came by snapshot (its log was compacted past node 3), whole and in chunks.
  expect(await metric(3, 'iroh_raft_snapshots_received_total')).toBeGreaterThanOrEqual(SHARDS);
  expect(await metric(3, 'iroh_raft_host_snapshots_installed_total')).toBeGreaterThanOrEqual(SHARDS);
  // More than a ring record's worth of deflated bytes per shard.
  expect(await metric(3, 'iroh_raft_snapshots_received_bytes_total')).toBeGreaterThan(SHARDS * 2 * MiB);
  expect((await metric(1, 'iroh_raft_snapshots_sent_total')) + (await metric(2, 'iroh_raft_snapshots_sent_total'))).toBeGreaterThanOrEqual(SHARDS);
  for (const i of [1, 2, 3]) expect(await metric(i, 'iroh_raft_worker_oversize_drops_total'), `oversize drops on node ${i}`).toBe(0);
  await eventually(() => Promise.resolve(staged(3).length === 0), 10_000, "node 3's staging area empty");
  expect(await metric(3, 'iroh_raft_snapshots_receiving')).toBe(0);
  // Caught up, node 3 leads none of the 4 shards and another node leads at least 2: balancing hands it one.
  await eventually(async () => (await status(3)).shards.some((s) => s.role === 'leader'), 30_000, 'node 3 leads a shard');
  expect(await atLeadersApplied(3)).toBe(true);
}, 180_000);

test("the sender SIGKILLed in the middle of a transfer: the shard's new leader streams it again and node 3 catches up", async () => {
  await c.kill(3);
  // 13 more entries per shard: node 3 needs a snapshot of every shard again.
  await writeEveryShard('b', [{ bytes: 128 * KiB, random: true }, ...Array.from({ length: 12 }, () => ({ bytes: 2 * KiB, random: true }))]);
  await c.startNode(3);

  // A sender with bytes on the wire, and node 3 receiving.
  let victim = 0;
  await eventually(
    async () => {
      if ((await metric(3, 'iroh_raft_snapshots_receiving')) === 0 || (await metric(3, 'iroh_raft_snapshots_received_bytes_total')) === 0) return false;
      for (const i of [1, 2]) {
        if ((await metric(i, 'iroh_raft_snapshots_sending')) > 0 && (await metric(i, 'iroh_raft_snapshots_sent_bytes_total')) > 0) victim = i;
      }
      return victim !== 0;
    },
    60_000,
    'a snapshot transfer to node 3 under way',
  );
  await c.kill(victim);
  const survivor = 3 - victim;

  await eventually(() => atLeadersApplied(3), 90_000, "node 3's shards at their leaders' applied index");
  expect(await readsBackEverything(3)).toBe(true);
  // The transfer cut by the kill failed on node 3 and installed nothing; every shard then came whole.
  expect(await metric(3, 'iroh_raft_snapshots_receive_failures_total')).toBeGreaterThanOrEqual(1);
  expect(await metric(3, 'iroh_raft_snapshots_received_total')).toBeGreaterThanOrEqual(SHARDS);
  expect(await metric(survivor, 'iroh_raft_snapshots_sent_total')).toBeGreaterThanOrEqual(1);
  for (const i of [survivor, 3]) expect(await metric(i, 'iroh_raft_worker_oversize_drops_total'), `oversize drops on node ${i}`).toBe(0);
  await eventually(() => Promise.resolve(staged(3).length === 0), 10_000, "node 3's staging area empty");

  // The killed sender comes back and catches up as well.
  await c.startNode(victim);
  await eventually(() => atLeadersApplied(victim), 90_000, `node ${victim}'s shards at their leaders' applied index`);
  expect(await readsBackEverything(victim)).toBe(true);
}, 180_000);

test('the receiver SIGKILLed in the middle of installing: each shard on disk is its old state or the whole new one; restarted, it catches up', async () => {
  await c.kill(3);
  // What node 3 holds, straight from its LMDB files.
  const before = await onDisk(3);
  expect(before.size).toBe(SHARDS);
  await writeEveryShard('c', [{ bytes: 128 * KiB, random: true }, ...Array.from({ length: 12 }, () => ({ bytes: 2 * KiB, random: true }))]);
  const applied = await leadersApplied();

  // The hook kills node 3 once its second install has read 1 MiB of a staged dump inside its
  // transaction (the first may have committed: then that shard is new, the other old).
  process.env.IROH_RAFT_TEST_KILL_IN_INSTALL = `2:${MiB}`;
  const started = c.startNode(3).catch(() => undefined); // it may die before it listens
  delete process.env.IROH_RAFT_TEST_KILL_IN_INSTALL;
  const proc = c.node(3).proc!;
  const signal = await new Promise<string | null>((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) resolve(proc.signalCode);
    else proc.once('exit', (_code, sig) => resolve(sig));
  });
  await started;
  c.node(3).proc = undefined;
  expect(signal).toBe('SIGKILL');
  expect(c.node(3).output).toContain('test hook: SIGKILL while installing a staged snapshot');

  const after = await onDisk(3);
  let old = 0;
  for (let s = 0 as ShardId; s < SHARDS; s++) {
    const was = before.get(s)!;
    const is = after.get(s)!;
    if (is.applied === was.applied) {
      // Untouched: the same applied index and every byte of the data as before.
      expect(is.data, `shard ${s} at its old applied index ${was.applied}`).toEqual(was.data);
      old++;
      continue;
    }
    if (is.applied < applied.get(s)!) {
      // Not installed, but restarted it first applied committed entries it already held: the
      // no-op of a leader that took over just before the kill (leader balancing moves leaderships
      // at any time), committed before node 3 heard of it. Never a write made while it was down,
      // so every client value is as before.
      expect(is.applied, `shard ${s}`).toBeGreaterThan(was.applied);
      expect(is.values, `shard ${s} at ${is.applied}, from ${was.applied} by its own log`).toEqual(was.values);
      old++;
      continue;
    }
    // Installed: at least what its leader had applied, and exactly the keys written by then.
    expect(is.applied, `shard ${s}`).toBeGreaterThanOrEqual(applied.get(s)!);
    const want = new Map(keysOf.get(s)!.map((k) => [hex(dataKey(TENANT, Buffer.from(k))), digest(model.get(k)!)]));
    expect(is.values, `shard ${s}: every key written, with its value, and no other`).toEqual(want);
  }
  // The shard being installed at the kill kept its old state.
  expect(old).toBeGreaterThanOrEqual(1);

  // Without the hook: it catches up completely, and the staged file the kill left is gone.
  await c.startNode(3);
  await eventually(() => atLeadersApplied(3), 90_000, "node 3's shards at their leaders' applied index");
  expect(await readsBackEverything(3)).toBe(true);
  expect(await metric(3, 'iroh_raft_snapshots_received_total')).toBeGreaterThanOrEqual(1);
  for (const i of [1, 2, 3]) expect(await metric(i, 'iroh_raft_worker_oversize_drops_total'), `oversize drops on node ${i}`).toBe(0);
  await eventually(() => Promise.resolve(staged(3).length === 0), 10_000, "node 3's staging area empty");
}, 180_000);
