/**
 * What one worker turn's LMDB commit costs in CPU and in bytes written, for the store's layout
 * (three named databases per shard) against one shared set of databases per worker keyed by shard,
 * and with LMDB's write map. The question behind it: can a layout that dirties fewer pages per
 * commit make a durable write cheaper without leaving LMDB?
 *
 *   npx tsx bench/lmdb-layout.ts [--commits 1500] [--shards 8] [--touched 4] [--entries 4]
 *                                [--keys sequential|random] [--layouts per-shard,shared,writemap] [--rounds 2]
 *
 * A commit touches `--touched` of `--shards` shards and, per shard, appends `--entries` log
 * entries (300 bytes) and applies them as the KV does: the key (256-byte value), the tenant's usage
 * record and the client's session record, then the hard state and the applied index. Keys are
 * `sequential` (the cluster bench's writes: each load instance counts up) or `random` (16 random
 * bytes). Every shard starts with 20,000 keys and 5,000 log entries. Commits are durable
 * (`overlappingSync: false`, `transactionSync`), as in the store. Per layout (rounds alternate) it
 * prints the median of: CPU per commit (user and system, this process), bytes passed to write
 * calls per commit (`wchar` of /proc/self/io: LMDB's page writes and meta), and wall time.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { open } from 'lmdb';
import type { Database, RootDatabase } from 'lmdb';

const LAYOUTS = ['per-shard', 'shared', 'writemap'] as const;
type Layout = (typeof LAYOUTS)[number];

const { values } = parseArgs({
  options: {
    commits: { type: 'string', default: '1500' },
    shards: { type: 'string', default: '8' },
    touched: { type: 'string', default: '4' },
    entries: { type: 'string', default: '4' },
    keys: { type: 'string', default: 'sequential' },
    layouts: { type: 'string', default: 'per-shard,shared' },
    rounds: { type: 'string', default: '2' },
  },
});

function positive(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) {
    console.error(`--${name} must be a positive integer, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}
const commits = positive('commits', values.commits);
const shards = positive('shards', values.shards);
const touched = Math.min(positive('touched', values.touched), shards);
const entries = positive('entries', values.entries);
const rounds = positive('rounds', values.rounds);
const keys = values.keys;
if (keys !== 'sequential' && keys !== 'random') {
  console.error(`--keys must be sequential or random, got ${JSON.stringify(keys)}`);
  process.exit(2);
}
const layouts = values.layouts.split(',') as Layout[];
for (const l of layouts) {
  if (!LAYOUTS.includes(l)) {
    console.error(`--layouts: unknown layout ${l} (known: ${LAYOUTS.join(', ')})`);
    process.exit(2);
  }
}

const PRELOAD_KEYS = 20_000;
const PRELOAD_ENTRIES = 5_000;
const ENTRY = randomBytes(300);
const VALUE = randomBytes(256);
const TENANT = Buffer.from('bench');
const USAGE_KEY = Buffer.concat([Buffer.from([0, TENANT.length]), TENANT]);

function writeChars(): number {
  return Number(/wchar: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))?.[1]);
}

/** A shard's three databases and how its keys are spelled in them. */
interface ShardDbs {
  readonly log: Database<Buffer, number | Buffer>;
  readonly meta: Database<unknown, string | Buffer>;
  readonly data: Database<Buffer, Buffer>;
  logKey(index: number): number | Buffer;
  metaKey(field: 0 | 1 | 2): string | Buffer;
  dataKey(key: Buffer): Buffer;
}

function shardDbs(env: RootDatabase, layout: Layout): ShardDbs[] {
  if (layout !== 'shared') {
    return Array.from({ length: shards }, (_, s) => ({
      log: env.openDB<Buffer, number>({ name: `s${s}/log`, encoding: 'binary' }),
      meta: env.openDB<unknown, string>({ name: `s${s}/meta` }),
      data: env.openDB<Buffer, Buffer>({ name: `s${s}/data`, encoding: 'binary', keyEncoding: 'binary' }),
      logKey: (i: number) => i,
      metaKey: (f: 0 | 1 | 2) => (['hard', 'applied', 'conf'] as const)[f],
      dataKey: (k: Buffer) => k,
    }));
  }
  const log = env.openDB<Buffer, Buffer>({ name: 'log', encoding: 'binary', keyEncoding: 'binary' });
  const meta = env.openDB<unknown, Buffer>({ name: 'meta', keyEncoding: 'binary' });
  const data = env.openDB<Buffer, Buffer>({ name: 'data', encoding: 'binary', keyEncoding: 'binary' });
  return Array.from({ length: shards }, (_, s) => {
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(s);
    return {
      log,
      meta,
      data,
      logKey: (i: number) => {
        const k = Buffer.alloc(12);
        prefix.copy(k);
        k.writeDoubleBE(i, 4);
        return k;
      },
      metaKey: (f: 0 | 1 | 2) => Buffer.concat([prefix, Buffer.from([f])]),
      dataKey: (k: Buffer) => Buffer.concat([prefix, k]),
    };
  });
}

function dataKey(seq: number, instance: number): Buffer {
  if (keys === 'random') return Buffer.concat([Buffer.from([TENANT.length]), TENANT, randomBytes(16)]);
  return Buffer.concat([Buffer.from([TENANT.length]), TENANT, Buffer.from(`w${instance}-${seq}`)]);
}

interface Result {
  readonly cpuUs: number;
  readonly userUs: number;
  readonly sysUs: number;
  readonly kib: number;
  readonly wallMs: number;
}

function run(layout: Layout): Result {
  const dir = mkdtempSync(join(os.tmpdir(), 'lmdb-layout-'));
  const env = open({ path: dir, maxDbs: shards * 3 + 4, mapSize: 8 * 1024 ** 3, overlappingSync: false, noSync: false, useWritemap: layout === 'writemap' });
  try {
    const dbs = shardDbs(env, layout);
    const last = new Array<number>(shards).fill(0);
    let seq = 0;
    for (const [s, d] of dbs.entries()) {
      env.transactionSync(() => {
        for (let i = 0; i < PRELOAD_KEYS; i++) d.data.putSync(d.dataKey(dataKey(seq++, 100 + s)), VALUE);
        for (let i = 0; i < PRELOAD_ENTRIES; i++) d.log.putSync(d.logKey(++last[s]!), ENTRY);
        d.meta.putSync(d.metaKey(2), { voters: [1, 2, 3], learners: [] });
      });
    }
    const cpu0 = process.cpuUsage();
    const w0 = writeChars();
    const t0 = performance.now();
    for (let c = 0; c < commits; c++) {
      env.transactionSync(() => {
        for (let j = 0; j < touched; j++) {
          const s = (c * 3 + j) % shards;
          const d = dbs[s]!;
          for (let e = 0; e < entries; e++) {
            const index = ++last[s]!;
            d.log.putSync(d.logKey(index), ENTRY);
            d.data.putSync(d.dataKey(dataKey(seq++, e % 2)), VALUE);
            d.data.putSync(d.dataKey(USAGE_KEY), randomBytes(16));
            d.data.putSync(d.dataKey(Buffer.from([0xff, 1, (c + e) % 64])), randomBytes(40));
          }
          d.meta.putSync(d.metaKey(0), { term: 5, vote: 1, commit: last[s] });
          d.meta.putSync(d.metaKey(1), last[s]);
        }
      });
    }
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const bytes = writeChars() - w0;
    return {
      cpuUs: (cpu.user + cpu.system) / commits,
      userUs: cpu.user / commits,
      sysUs: cpu.system / commits,
      kib: bytes / 1024 / commits,
      wallMs: wallMs / commits,
    };
  } finally {
    env.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const results = new Map<Layout, Result[]>(layouts.map((l) => [l, []]));
for (let r = 0; r < rounds; r++) for (const l of layouts) results.get(l)!.push(run(l));

const perCommit = touched * entries;
console.log(
  `${commits} commits of ${perCommit} entries (${touched} of ${shards} shards, ${entries} each), ${keys} keys, median of ${rounds} alternating rounds`,
);
console.log('layout      CPU µs/commit  user  system  µs/entry  KiB written/commit  pages/entry  wall ms/commit');
for (const [l, rs] of results) {
  const cpu = median(rs.map((x) => x.cpuUs));
  const kib = median(rs.map((x) => x.kib));
  console.log(
    [
      l.padEnd(10),
      cpu.toFixed(0).padStart(14),
      median(rs.map((x) => x.userUs))
        .toFixed(0)
        .padStart(5),
      median(rs.map((x) => x.sysUs))
        .toFixed(0)
        .padStart(7),
      (cpu / perCommit).toFixed(1).padStart(9),
      kib.toFixed(1).padStart(19),
      (kib / 4 / perCommit).toFixed(2).padStart(12),
      median(rs.map((x) => x.wallMs))
        .toFixed(2)
        .padStart(15),
    ].join(' '),
  );
}
