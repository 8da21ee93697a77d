/**
 * How long one LMDB commit blocks the calling thread, and how long until it is durable, for each
 * way lmdb-js offers to commit (the question behind asynchronous storage writes in the shard host:
 * can the worker commit a turn and keep stepping while the fsync runs?).
 *
 *   npx tsx bench/lmdb-commit.ts [--commits 300] [--puts 16] [--value-size 300] [--modes a,b]
 *
 * Each commit writes `--puts` log-like records (sequential u32 keys) and one meta record, like a
 * worker turn. Per mode it prints the median and p99 of:
 * - block: time the calling thread spends inside the commit path (for async modes: the call plus
 *   the transaction callback, which lmdb-js runs on the calling thread);
 * - durable: from the start of the commit to the moment the mode knows the commit is on disk.
 * Run it under `strace -f -e trace=fdatasync,fsync,msync,pwrite64` to see which thread syncs.
 *
 * Modes (crash safety is stated in README "Asynchronous commits: what lmdb-js offers"):
 * - sync: `overlappingSync: false`, `transactionSync` (what the store does today).
 * - nometasync: `overlappingSync: false`, per-transaction MDB_NOMETASYNC, then `env.sync(cb)`.
 * - nosync: `overlappingSync: false`, per-transaction MDB_NOSYNC, then `env.sync(cb)` (NOT safe on
 *   power loss: the meta page may reach the disk before the pages it points to).
 * - overlap-sync: `overlappingSync: true`, `transactionSync` (the commit still waits for the sync).
 * - overlap-async: `overlappingSync: true`, `env.transaction(cb)`; commits pipelined: the next one
 *   starts when the previous is committed (visible); durable when `env.flushed`, asked right
 *   after the call, resolves.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { open } from 'lmdb';
import type { Database, RootDatabase } from 'lmdb';

const MDB_NOSYNC = 0x10000;
const MDB_NOMETASYNC = 0x40000;
/** lmdb-js transactionSync flags: 1 abortable, 2 synchronous commit (its default is 3). */
const TXN_DEFAULT = 3;

const MODES = ['sync', 'nometasync', 'nosync', 'overlap-sync', 'overlap-async'] as const;
type Mode = (typeof MODES)[number];

const { values } = parseArgs({
  options: {
    commits: { type: 'string', default: '300' },
    puts: { type: 'string', default: '16' },
    'value-size': { type: 'string', default: '300' },
    modes: { type: 'string', default: MODES.join(',') },
    trace: { type: 'boolean', default: false },
  },
});
const commits = Number(values.commits);
const puts = Number(values.puts);
const valueSize = Number(values['value-size']);
const modes = values.modes.split(',') as Mode[];
for (const m of modes) {
  if (!MODES.includes(m)) {
    console.error(`--modes: unknown mode ${m} (known: ${MODES.join(', ')})`);
    process.exit(2);
  }
}
for (const [name, v] of [
  ['commits', commits],
  ['puts', puts],
  ['value-size', valueSize],
] as const) {
  if (!Number.isInteger(v) || v <= 0) {
    console.error(`--${name} must be a positive integer`);
    process.exit(2);
  }
}

interface Stats {
  block: number[];
  durable: number[];
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

function writeTurn(log: Database<Buffer, number>, meta: Database<unknown, string>, n: number, value: Buffer): void {
  for (let i = 0; i < puts; i++) log.putSync(n * puts + i, value);
  meta.putSync('hard', { term: 1, vote: 1, commit: n });
}

/** `sync(cb)` runs mdb_env_sync on a libuv pool thread (lmdb-js has it, its types do not). */
type Syncable = RootDatabase & { sync(cb: (e?: Error) => void): void };

async function envSync(env: RootDatabase): Promise<void> {
  await new Promise<void>((resolve, reject) => (env as Syncable).sync((e) => (e ? reject(e) : resolve())));
}

/** `--trace`: a marker on stderr at each event, to line up with strace's syscalls. */
const trace = process.argv.includes('--trace');
function mark(what: string, n: number): void {
  if (trace) process.stderr.write(`MARK ${what} ${n}\n`);
}

async function run(mode: Mode): Promise<Stats> {
  const dir = mkdtempSync(join(os.tmpdir(), 'iroh-raft-lmdb-commit-'));
  const overlapping = mode.startsWith('overlap');
  const env = open({ path: dir, maxDbs: 4, overlappingSync: overlapping, mapSize: 1 << 30 });
  const log = env.openDB<Buffer, number>({ name: 'log', keyEncoding: 'uint32', encoding: 'binary' });
  const meta = env.openDB<unknown, string>({ name: 'meta' });
  const value = Buffer.alloc(valueSize, 120);
  const st: Stats = { block: [], durable: [] };
  const durable: Promise<void>[] = [];
  try {
    for (let n = 0; n < commits; n++) {
      const t0 = performance.now();
      mark('begin', n);
      if (mode === 'sync' || mode === 'overlap-sync') {
        env.transactionSync(() => writeTurn(log, meta, n, value));
        const t1 = performance.now();
        mark('returned-durable', n);
        st.block.push(t1 - t0);
        st.durable.push(t1 - t0);
      } else if (mode === 'nometasync' || mode === 'nosync') {
        env.transactionSync(() => writeTurn(log, meta, n, value), TXN_DEFAULT | (mode === 'nosync' ? MDB_NOSYNC : MDB_NOMETASYNC));
        mark('returned', n);
        st.block.push(performance.now() - t0);
        // One sync in flight at a time, as a shell would; the next commit overlaps it.
        await Promise.all(durable.splice(0));
        durable.push(envSync(env).then(() => void (mark('durable', n), st.durable.push(performance.now() - t0))));
      } else {
        let inCallback = 0;
        const committed = env.transaction(() => {
          const c0 = performance.now();
          writeTurn(log, meta, n, value);
          inCallback = performance.now() - c0;
        });
        const called = performance.now() - t0;
        // `flushed` picks the flush of the batch queued last when `then` is called: call it now,
        // before the next transaction is queued (Promise.resolve would call it a microtask later).
        durable.push(
          new Promise<void>(
            (resolve, reject) => void env.flushed.then(() => resolve(void (mark('durable', n), st.durable.push(performance.now() - t0))), reject),
          ),
        );
        mark('called', n);
        await committed;
        mark('committed', n);
        st.block.push(called + inCallback);
      }
    }
    await Promise.all(durable);
    if (overlapping) await env.flushed;
  } finally {
    await env.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return st;
}

const lmdbVersion = (JSON.parse(readFileSync(new URL('../node_modules/lmdb/package.json', import.meta.url), 'utf8')) as { version: string }).version;
console.log(`lmdb-commit  ${commits} commits x (${puts} puts of ${valueSize} B + 1 meta) per mode, lmdb ${lmdbVersion}, node ${process.version}`);
console.log('mode           block ms p50 / p99     durable ms p50 / p99   commits/s');
for (const mode of modes) {
  const t0 = performance.now();
  const st = await run(mode);
  const secs = (performance.now() - t0) / 1000;
  const f = (xs: number[]): string => `${quantile(xs, 0.5).toFixed(3).padStart(7)} / ${quantile(xs, 0.99).toFixed(3).padStart(7)}`;
  console.log(`${mode.padEnd(14)} ${f(st.block)}      ${f(st.durable)}     ${(commits / secs).toFixed(0).padStart(6)}`);
}
