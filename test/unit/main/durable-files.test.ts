/**
 * Every metadata file a node writes into its data directory (node.key, admin.token, cluster.json,
 * peers.json)
 * reaches disk whole and under its name: written to a temporary file in the same directory,
 * flushed, renamed (or linked) into place, then the directory flushed; every directory the start
 * creates is flushed in its parent; the stores' directories are flushed before cluster.json records
 * them. Proven on the system calls of a real first start (strace), not on a model of them.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = mkdtempSync(join(tmpdir(), 'iroh-raft-durable-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

type PathEvent = { kind: 'mkdir' | 'fsync' | 'create'; path: string };
type Event = PathEvent | { kind: 'move'; from: string; to: string };

/** The file-system events in an `strace -f` log: directories made, files created, fsyncs by path, renames and links. */
function events(trace: string): Event[] {
  const out: Event[] = [];
  const fds = new Map<string, string>();
  const pending = new Map<string, string>();
  for (const raw of trace.split('\n')) {
    const m = /^(\d+)\s+(.*)$/.exec(raw);
    if (m === null) continue;
    const [, pid, rest] = m as unknown as [string, string, string];
    // A call another thread interrupted: its start and its end arrive on two lines.
    if (rest.endsWith('<unfinished ...>')) {
      pending.set(pid, rest.slice(0, -'<unfinished ...>'.length));
      continue;
    }
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(rest);
    const line = resumed !== null ? `${pending.get(pid) ?? ''}${resumed[1]}` : rest;
    const call = /^(\w+)\((.*)\)\s+=\s+(-?\d+)/.exec(line);
    if (call === null) continue;
    const [, name, args, ret] = call as unknown as [string, string, string, string];
    if (Number(ret) < 0) continue;
    const strs = [...args.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((s) => s[1]!);
    if (name === 'mkdir' || name === 'mkdirat') out.push({ kind: 'mkdir', path: strs[0]! });
    else if (name === 'openat') {
      fds.set(`${ret}`, strs[0]!);
      if (args.includes('O_CREAT')) out.push({ kind: 'create', path: strs[0]! });
    } else if (name === 'fsync' || name === 'fdatasync') {
      const path = fds.get(args.trim());
      if (path !== undefined) out.push({ kind: 'fsync', path });
    } else if (/^(rename|renameat2?|link|linkat)$/.test(name)) out.push({ kind: 'move', from: strs[0]!, to: strs[1]! });
  }
  return out;
}

const at = (ev: Event[], f: (e: Event) => boolean, from = 0): number => ev.findIndex((e, i) => i >= from && f(e));
const lastAt = (ev: Event[], f: (e: Event) => boolean): number => ev.findLastIndex(f);
const fsyncOf = (path: string) => (e: Event) => e.kind === 'fsync' && e.path === path;

describe('metadata files in the data directory', () => {
  const data = join(root, 'new', 'nested', 'data');
  const child = new URL('./durable-files-child.ts', import.meta.url).pathname;
  const traceFile = join(root, 'trace.txt');
  const run = spawnSync(
    'strace',
    [
      '-f',
      '-qq',
      '-o',
      traceFile,
      '-e',
      'trace=mkdir,mkdirat,openat,fsync,fdatasync,rename,renameat,renameat2,link,linkat',
      process.execPath,
      '--import',
      'tsx',
      child,
      data,
    ],
    { encoding: 'utf8' },
  );
  const ev = run.status === 0 ? events(readFileSync(traceFile, 'utf8')) : [];

  it('the traced first start ran', () => {
    expect(run.error, `${String(run.error)}: this test needs strace on PATH (Debian: apt-get install strace)`).toBeUndefined();
    expect(run.status, run.stderr).toBe(0);
    expect(ev.length).toBeGreaterThan(0);
  });

  for (const name of ['node.key', 'admin.token', 'cluster.json', 'peers.json']) {
    it(`${name}: a temporary file in the same directory, flushed, moved into place, then the directory flushed`, () => {
      const file = join(data, name);
      const move = lastAt(ev, (e) => e.kind === 'move' && e.to === file);
      expect(move, `no rename or link to ${file}`).toBeGreaterThanOrEqual(0);
      const tmp = (ev[move] as { from: string }).from;
      expect(dirname(tmp)).toBe(data);
      expect(tmp).not.toBe(file);
      const created = lastAt(ev.slice(0, move), (e) => e.kind === 'create' && e.path === tmp);
      expect(created, `${tmp} created before the move`).toBeGreaterThanOrEqual(0);
      expect(at(ev, fsyncOf(tmp), created), `${tmp} flushed before the move`).toBeGreaterThan(created);
      expect(at(ev, fsyncOf(tmp), created)).toBeLessThan(move);
      expect(at(ev, fsyncOf(data), move), `${data} flushed after the move`).toBeGreaterThan(move);
    });
  }

  it('every directory the start creates is flushed in its parent', () => {
    const made = ev.filter((e): e is PathEvent => e.kind === 'mkdir' && e.path.startsWith(root));
    expect(made.map((e) => e.path)).toEqual(expect.arrayContaining([join(root, 'new'), data, join(data, 'worker-0')]));
    for (const e of made) {
      const i = ev.indexOf(e);
      expect(at(ev, fsyncOf(dirname(e.path)), i), `${dirname(e.path)} flushed after ${e.path} was made`).toBeGreaterThan(i);
    }
  });

  it("the stores' names are flushed before cluster.json records them", () => {
    const store = join(data, 'worker-0');
    const mdb = at(ev, (e) => e.kind === 'create' && e.path === join(store, 'data.mdb'));
    expect(mdb).toBeGreaterThanOrEqual(0);
    const recorded = lastAt(ev, (e) => e.kind === 'move' && e.to === join(data, 'cluster.json'));
    const storeSynced = at(ev, fsyncOf(store), mdb);
    expect(storeSynced).toBeGreaterThan(mdb);
    expect(storeSynced).toBeLessThan(recorded);
    const dataSynced = at(ev, fsyncOf(data), mdb);
    expect(dataSynced).toBeGreaterThan(mdb);
    expect(dataSynced).toBeLessThan(recorded);
  });

  it("the write-ahead log's name is flushed in its directory before the store opens for writes", () => {
    const store = join(data, 'worker-0');
    const wal = at(ev, (e) => e.kind === 'create' && e.path === join(store, 'wal'));
    expect(wal, 'no write-ahead log created').toBeGreaterThanOrEqual(0);
    const synced = at(ev, fsyncOf(store), wal);
    expect(synced).toBeGreaterThan(wal);
    // Before the opening's checkpoint, the store's first commit (its fdatasync of data.mdb).
    expect(synced).toBeLessThan(at(ev, fsyncOf(join(store, 'data.mdb')), wal));
  });
});
