/**
 * The data directory of a node, on real temp directories: one process per directory (LOCK),
 * the cluster layout a restart must agree with (cluster.json), the node's identity (node.key) and
 * where each worker keeps its LMDB environment.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess, ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DataDir, DataDirError } from '../../../src/main/data-dir.js';
import type { ClusterLayout, LockKind } from '../../../src/main/data-dir.js';
import { LOCK_KIND, lockName } from '../../../src/main/dir-lock.js';
import { ticketOf } from '../../../src/main/ticket.js';
import { decodeTicket } from '../../../src/io/ticket.js';
import { workerDir } from '../../../src/workers/protocol.js';

const root = mkdtempSync(join(tmpdir(), 'iroh-raft-data-dir-'));
let seq = 0;
const fresh = (): DataDir => DataDir.open(join(root, `d${++seq}`));

afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The error `f` throws, to assert its class, code and message one by one. */
function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

describe('DataDir.open', () => {
  it('creates the directory with its parents, and names the files in it', () => {
    const path = join(root, 'nested', 'a', 'b');
    const dir = DataDir.open(path);
    expect(statSync(path).isDirectory()).toBe(true);
    expect(dir.path).toBe(path);
    expect(dir.lockPath).toBe(join(path, 'LOCK'));
    expect(dir.clusterPath).toBe(join(path, 'cluster.json'));
    expect(dir.keyPath).toBe(join(path, 'node.key'));
  });

  it('opens an existing directory without touching what it holds', () => {
    const dir = fresh();
    writeFileSync(join(dir.path, 'cluster.json'), 'kept');
    DataDir.open(dir.path);
    expect(readFileSync(join(dir.path, 'cluster.json'), 'utf8')).toBe('kept');
  });

  it("names worker w's LMDB directory as the worker threads do", () => {
    const dir = fresh();
    expect(dir.workerDir(0)).toBe(`${dir.path}/worker-0`);
    expect(dir.workerDir(3)).toBe(workerDir(dir.path, 3));
  });
});

describe('DataDir modes and cluster.json', () => {
  it('a new directory is 0700; an existing one open to group or others is made 0700 and says so', () => {
    const d = fresh();
    expect(statSync(d.path).mode & 0o777).toBe(0o700);
    expect(d.tightened).toBeUndefined();
    const lax = join(root, `lax${++seq}`);
    DataDir.open(lax);
    chmodSync(lax, 0o755);
    const again = DataDir.open(lax);
    expect(statSync(lax).mode & 0o777).toBe(0o700);
    expect(again.tightened).toBe(0o755);
    // Already private: left as it is.
    chmodSync(lax, 0o500 | 0o200);
    expect(DataDir.open(lax).tightened).toBeUndefined();
    expect(statSync(lax).mode & 0o777).toBe(0o700);
  });

  it('cluster.json is replaced whole through a temporary file that does not stay behind', () => {
    const d = fresh();
    const a: ClusterLayout = { shards: 4, replicas: 3, members: ['a', 'b', 'c'] };
    const b: ClusterLayout = { shards: 8, replicas: 1, members: ['z'] };
    d.writeCluster(a);
    expect(d.readCluster()).toEqual(a);
    d.writeCluster(b);
    expect(d.readCluster()).toEqual(b);
    expect(existsSync(`${d.clusterPath}.tmp`)).toBe(false);
    expect(statSync(d.clusterPath).mode & 0o777).toBe(0o600);
  });
});

/** A child process (lock-child.ts) that takes `dir`'s lock of `kind` when told to; its stdout lines in order. */
function racer(dir: string, kind: LockKind): { p: ChildProcessByStdio<Writable, Readable, null>; line: (n: number) => Promise<string>; go: () => void } {
  const p = spawn(process.execPath, ['--import', 'tsx', LOCK_CHILD, dir, kind], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let buf = '';
  const waiters: (() => void)[] = [];
  p.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
      for (const w of waiters.splice(0)) w();
    }
  });
  const line = async (n: number): Promise<string> => {
    while (lines.length < n) await new Promise<void>((r) => waiters.push(r));
    return lines[n - 1]!;
  };
  return { p, line, go: () => p.stdin.write('go\n') };
}

const LOCK_CHILD = new URL('./lock-child.ts', import.meta.url).pathname;

/** A pid that belonged to a process that has exited. */
const deadPid = (): number => spawnSync(process.execPath, ['-e', 'process.pid'], { stdio: 'ignore' }).pid;

describe.each(['socket', 'pid-file'] as const)('DataDir.lock (%s)', (kind) => {
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
  });

  /** A child process holding `dir`'s lock. */
  async function holder(dir: DataDir): Promise<ChildProcess> {
    const r = racer(dir.path, kind);
    children.push(r.p);
    expect(await r.line(1)).toBe('ready');
    r.go();
    expect(await r.line(2)).toBe('locked');
    return r.p;
  }

  it("writes this process's pid into LOCK, and unlock removes it", async () => {
    const dir = fresh();
    const unlock = await dir.lock(kind);
    expect(readFileSync(dir.lockPath, 'utf8')).toBe(String(process.pid));
    unlock();
    expect(existsSync(dir.lockPath)).toBe(false);
    unlock();
    expect(existsSync(dir.lockPath)).toBe(false);
    // Released: it can be taken again.
    (await dir.lock(kind))();
  });

  it('refuses a directory another process holds, naming its pid, and leaves its LOCK alone', async () => {
    const dir = fresh();
    const pid = (await holder(dir)).pid!;
    expect(readFileSync(dir.lockPath, 'utf8')).toBe(String(pid));
    const e = await dir.lock(kind).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DataDirError);
    expect((e as DataDirError).code).toBe('DataDirLocked');
    expect((e as DataDirError).message).toBe(`${dir.path} is in use by process ${pid}; stop it first or use another --data directory`);
    expect(readFileSync(dir.lockPath, 'utf8')).toBe(String(pid));
  });

  it('a holder killed with SIGKILL: the lock is free at once, its LOCK file notwithstanding', async () => {
    const dir = fresh();
    const p = await holder(dir);
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
    expect(readFileSync(dir.lockPath, 'utf8')).toBe(String(p.pid));
    const unlock = await dir.lock(kind);
    expect(readFileSync(dir.lockPath, 'utf8')).toBe(String(process.pid));
    unlock();
  });

  it('takes over a LOCK whose process is gone (killed)', async () => {
    const dir = fresh();
    writeFileSync(dir.lockPath, String(deadPid()));
    const unlock = await dir.lock(kind);
    expect(readFileSync(dir.lockPath, 'utf8')).toBe(String(process.pid));
    unlock();
  });

  it('takes over a LOCK that holds no pid', async () => {
    for (const junk of ['', 'not a pid', '-1', '0', '1.5']) {
      const dir = fresh();
      writeFileSync(dir.lockPath, junk);
      const unlock = await dir.lock(kind);
      expect(readFileSync(dir.lockPath, 'utf8'), junk).toBe(String(process.pid));
      unlock();
    }
  });

  it('takes over a LOCK naming this very process: the lock is per process, not per call', async () => {
    const dir = fresh();
    const first = await dir.lock(kind);
    const second = await dir.lock(kind);
    expect(readFileSync(dir.lockPath, 'utf8')).toBe(String(process.pid));
    second();
    first();
    expect(existsSync(dir.lockPath)).toBe(false);
  });

  it('racing starts on a directory with a stale LOCK: exactly one takes it, the others are refused', async () => {
    for (let round = 0; round < 3; round++) {
      const dir = fresh();
      // Stale: a gone process for the pid file; for the socket lock even a live one (this process,
      // unrelated to the racers) must not matter.
      writeFileSync(dir.lockPath, String(kind === 'socket' ? process.pid : deadPid()));
      const racers = Array.from({ length: 6 }, () => racer(dir.path, kind));
      children.push(...racers.map((r) => r.p));
      // Every racer loaded, then all go at once.
      for (const r of racers) expect(await r.line(1)).toBe('ready');
      for (const r of racers) r.go();
      const outcomes = await Promise.all(racers.map((r) => r.line(2)));
      expect(outcomes.filter((o) => o === 'locked').length, outcomes.join(', ')).toBe(1);
      expect(outcomes.filter((o) => o === 'refused DataDirLocked').length, outcomes.join(', ')).toBe(5);
      expect(existsSync(`${dir.lockPath}.takeover`)).toBe(false);
      for (const c of children.splice(0)) c.kill('SIGKILL');
    }
  }, 90_000);
});

describe('DataDir.lock: the pid-file lock (other platforms)', () => {
  it('its known limit: a LOCK naming a live process refuses, whatever that process is', async () => {
    const dir = fresh();
    writeFileSync(dir.lockPath, String(process.ppid));
    await expect(dir.lock('pid-file')).rejects.toMatchObject({ code: 'DataDirLocked', message: expect.stringContaining(`process ${process.ppid}`) as unknown });
    expect(readFileSync(dir.lockPath, 'utf8')).toBe(String(process.ppid));
  });
});

describe('DataDir.lock: the socket lock (Linux)', () => {
  it.runIf(process.platform === 'linux')('is the default on Linux', () => {
    expect(LOCK_KIND).toBe('socket');
  });

  it('holding the lock keeps no process alive: a process that only holds it exits by itself, and the lock is free', async () => {
    const dir = fresh();
    const p = spawn(process.execPath, ['--import', 'tsx', LOCK_CHILD, dir.path, 'socket', 'exit'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out === 'ready\n') p.stdin.write('go\n');
    });
    let timer: NodeJS.Timeout | undefined;
    const code = await new Promise((r) => {
      p.once('exit', r);
      timer = setTimeout(() => r('still running after 20 s'), 20_000);
    });
    clearTimeout(timer);
    p.kill('SIGKILL');
    expect(out).toBe('ready\nlocked\n');
    expect(code).toBe(0);
    (await dir.lock('socket'))();
  }, 30_000);

  it('a LOCK naming a live unrelated process (pid 1, the parent) does not block a start', async () => {
    for (const pid of [1, process.ppid]) {
      const dir = fresh();
      writeFileSync(dir.lockPath, String(pid));
      const unlock = await dir.lock('socket');
      expect(readFileSync(dir.lockPath, 'utf8')).toBe(String(process.pid));
      unlock();
    }
  });

  it('every path to the directory names one lock: a holder through a symlink refuses a start by the real path', async () => {
    const dir = fresh();
    const link = join(root, `link${++seq}`);
    symlinkSync(dir.path, link);
    expect(lockName(link)).toBe(lockName(dir.path));
    expect(lockName(relative(process.cwd(), dir.path))).toBe(lockName(dir.path));
    const r = racer(link, 'socket');
    try {
      expect(await r.line(1)).toBe('ready');
      r.go();
      expect(await r.line(2)).toBe('locked');
      await expect(dir.lock('socket')).rejects.toMatchObject({ code: 'DataDirLocked', message: expect.stringContaining(`process ${r.p.pid}`) as unknown });
    } finally {
      r.p.kill('SIGKILL');
    }
  });
});

describe('DataDir.checkCluster', () => {
  const layout: ClusterLayout = { shards: 16, members: ['a'.repeat(64), 'b'.repeat(64)], replicas: 2 };

  it('records the layout at the first start, and the same layout starts again', () => {
    const dir = fresh();
    expect(dir.readCluster()).toBeUndefined();
    dir.checkCluster(layout);
    expect(dir.readCluster()).toEqual(layout);
    expect(readFileSync(dir.clusterPath, 'utf8')).toBe(`${JSON.stringify(layout, null, 2)}\n`);
    dir.checkCluster({ ...layout, members: [...layout.members] });
    expect(DataDir.open(dir.path).readCluster()).toEqual(layout);
  });

  it('refuses another shard count with ClusterMismatch, naming the count to use', () => {
    const dir = fresh();
    dir.checkCluster(layout);
    const e = thrown(() => dir.checkCluster({ ...layout, shards: 4 }));
    expect(e).toBeInstanceOf(DataDirError);
    expect((e as DataDirError).code).toBe('ClusterMismatch');
    expect((e as DataDirError).message).toBe(
      `${dir.path} belongs to a cluster started with --shards 16 (asked 4; keys are placed by shard count); start with those settings, or use another --data directory`,
    );
    expect(dir.readCluster()).toEqual(layout);
  });

  it('refuses other replicas or other members, naming every difference', () => {
    const dir = fresh();
    dir.checkCluster(layout);
    const replicas = thrown(() => dir.checkCluster({ ...layout, replicas: 1 }));
    expect((replicas as DataDirError).code).toBe('ClusterMismatch');
    expect((replicas as DataDirError).message).toContain('--replicas 2 (asked 1)');
    const members = thrown(() => dir.checkCluster({ ...layout, members: [layout.members[0]!] }));
    expect((members as DataDirError).code).toBe('ClusterMismatch');
    expect((members as DataDirError).message).toContain('the same members (2 then, 1 now: pass the same --peers)');
    const reordered = thrown(() => dir.checkCluster({ ...layout, members: [...layout.members].reverse() }));
    expect((reordered as DataDirError).code).toBe('ClusterMismatch');
    const all = thrown(() => dir.checkCluster({ shards: 8, members: [], replicas: 3 }));
    expect((all as DataDirError).message).toContain(
      '--shards 16 (asked 8; keys are placed by shard count) and --replicas 2 (asked 3) and the same members (2 then, 0 now',
    );
    expect(dir.readCluster()).toEqual(layout);
  });
});

describe('node.key', () => {
  it('is created once (mode 0600) and reloaded identically: the same node id after a restart', async () => {
    const dir = fresh();
    expect(existsSync(dir.keyPath)).toBe(false);
    const listen = { host: '127.0.0.1', port: 7100 };
    const first = await ticketOf(dir, listen);
    const key = readFileSync(dir.keyPath, 'utf8');
    expect(key).toMatch(/^[0-9a-f]{64}\n$/);
    expect(statSync(dir.keyPath).mode & 0o777).toBe(0o600);
    const second = await ticketOf(DataDir.open(dir.path), listen);
    expect(readFileSync(dir.keyPath, 'utf8')).toBe(key);
    expect(decodeTicket(second).id).toBe(decodeTicket(first).id);
    expect(decodeTicket(second).addrs).toEqual(['127.0.0.1:7100']);
  });

  it('a key file that does not hold a key is refused with BadKeyFile; a lax file mode is warned about', async () => {
    const dir = fresh();
    const warnings: string[] = [];
    const log = { info: () => undefined, warn: (_o: object, m: string) => warnings.push(m) };
    writeFileSync(dir.keyPath, 'not a key\n', { mode: 0o600 });
    await expect(dir.loadOrCreateKey(log)).rejects.toMatchObject({ code: 'BadKeyFile' });
    const good = fresh();
    const key = await good.loadOrCreateKey(log);
    expect(key.length).toBe(32);
    expect(warnings).toEqual([]);
    chmodSync(good.keyPath, 0o644);
    expect(await good.loadOrCreateKey(log)).toEqual(key);
    expect(warnings).toEqual(['node key file is readable by group or others; chmod 600 it']);
  });

  it('is marked served once, atomically, keeping the key; the mark survives a reload, and a mangled mark is refused', async () => {
    const dir = fresh();
    const log = { info: () => undefined, warn: () => undefined };
    const key = await dir.loadOrCreateKey(log);
    expect(dir.keyServed()).toBe(false);
    dir.markKeyServed();
    expect(dir.keyServed()).toBe(true);
    const text = readFileSync(dir.keyPath, 'utf8');
    expect(text).toBe(`${Buffer.from(key).toString('hex')}\nserved\n`);
    expect(statSync(dir.keyPath).mode & 0o777).toBe(0o600);
    dir.markKeyServed();
    expect(readFileSync(dir.keyPath, 'utf8')).toBe(text);
    const again = DataDir.open(dir.path);
    expect(again.keyServed()).toBe(true);
    expect(await again.loadOrCreateKey(log)).toEqual(key);
    writeFileSync(dir.keyPath, `${Buffer.from(key).toString('hex')}\nserved twice\n`, { mode: 0o600 });
    expect(dir.keyServed()).toBe(false);
    await expect(dir.loadOrCreateKey(log)).rejects.toMatchObject({ code: 'BadKeyFile' });
    expect(() => dir.markKeyServed()).toThrow(DataDirError);
    expect(fresh().keyServed()).toBe(false);
  });

  it('another data directory is another identity', async () => {
    const listen = { host: '127.0.0.1', port: 7100 };
    const a = decodeTicket(await ticketOf(fresh(), listen)).id;
    const b = decodeTicket(await ticketOf(fresh(), listen)).id;
    expect(a).not.toBe(b);
  });
});

describe('amnesia guard (cluster.json workers)', () => {
  const root = mkdtempSync(join(tmpdir(), 'iroh-raft-amnesia-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const layout: ClusterLayout = { shards: 4, members: ['a', 'b'], replicas: 2 };

  it('records the stores once they exist, and refuses a later start whose store is gone', () => {
    const dir = DataDir.open(join(root, 'n1'));
    dir.checkCluster(layout);
    // Stores not made yet (a first start that died before its pool started): nothing to guard.
    expect(dir.readCluster()?.workers).toBeUndefined();
    expect(() => dir.checkCluster(layout)).not.toThrow();
    for (const w of [0, 1]) {
      mkdirSync(join(dir.path, `worker-${w}`));
      writeFileSync(join(dir.path, `worker-${w}`, 'data.mdb'), '');
    }
    dir.recordStores(2);
    dir.recordStores(3); // recorded once: a later call changes nothing
    expect(dir.readCluster()).toEqual({ ...layout, workers: 2 });
    expect(() => dir.checkCluster(layout)).not.toThrow();
    rmSync(join(dir.path, 'worker-1'), { recursive: true });
    expect(() => dir.checkCluster(layout)).toThrow(expect.objectContaining({ code: 'StoresLost', message: expect.stringContaining('worker-1') as unknown }));
  });

  it('a directory of an older version (no workers recorded) starts as before', () => {
    const dir = DataDir.open(join(root, 'n2'));
    dir.writeCluster(layout);
    expect(() => dir.checkCluster(layout)).not.toThrow();
  });
});
