/**
 * The data directory's lock: one process per directory, held for the life of the process.
 *
 * On Linux the lock is an abstract-namespace Unix socket (a name starting with a NUL byte, never a
 * file) named after the directory's identity, its device and inode numbers, so every path that
 * reaches the directory (relative, through a symlink, a bind mount) names the same lock. Binding a
 * name is atomic (of two racing binds the kernel lets one succeed, the other gets `EADDRINUSE`), and
 * the kernel drops the name when the process ends however it ends (SIGKILL, a crash, an OOM kill),
 * so there is nothing stale to take over and no pid to misjudge (a recycled pid, another pid
 * namespace). `LOCK` still holds the holder's pid, for people and for the refusal message, but the
 * socket decides.
 *
 * Limits of the socket lock: abstract names live in a network namespace, so two containers with
 * their own network namespaces sharing one data directory do not see each other's lock; nor does a
 * process on another machine (a directory on NFS). Any local user can bind a name, so another user
 * who knows the directory's inode can keep the node from starting (refused as `DataDirLocked`), but
 * never make two nodes run on it.
 *
 * Elsewhere (no abstract sockets) the lock is the pid file `LOCK` alone ({@link lockByPidFile}),
 * taken over when its process is gone: a recycled pid can then keep a start out until the file is
 * removed by hand.
 */
import { linkSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { DataDirError } from './data-dir-error.js';

/** Releases a lock taken by {@link lockDir}; safe to call more than once. */
export type Unlock = () => void;

/** How a data directory is locked: `socket` (Linux, see the module comment) or `pid-file` (elsewhere). */
export type LockKind = 'socket' | 'pid-file';

/** The lock this platform uses. */
export const LOCK_KIND: LockKind = process.platform === 'linux' ? 'socket' : 'pid-file';

/**
 * Locks directory `dir` for this process, writing this process's pid to `lockPath` (`LOCK`).
 * The lock is per process: a second call in the same process succeeds, and the lock is released
 * when every caller has unlocked (or the process ends). DataDirError `DataDirLocked`, naming the
 * holder's pid when `LOCK` names a live process, when another process holds it.
 */
export async function lockDir(dir: string, lockPath: string, kind: LockKind = LOCK_KIND): Promise<Unlock> {
  return kind === 'socket' ? lockBySocket(dir, lockPath) : lockByPidFile(dir, lockPath);
}

/** The abstract socket name that locks `dir`: from its device and inode, so any path to it names the same lock. */
export function lockName(dir: string): string {
  const st = statSync(dir, { bigint: true });
  return `\0iroh-raft/data-dir/${st.dev}/${st.ino}`;
}

/**
 * Locks held by this process, by socket name: a bind of a name this process holds would fail like
 * another process's, and the lock is per process. `count`: callers that have not unlocked yet; the
 * socket closes when it drops to 0.
 */
const held = new Map<string, { readonly server: Promise<Server>; count: number }>();

async function lockBySocket(dir: string, lockPath: string): Promise<Unlock> {
  const name = lockName(dir);
  let h = held.get(name);
  if (h === undefined) {
    h = { server: bind(name).then((s) => recordPid(s, lockPath)), count: 0 };
    held.set(name, h);
  }
  const mine = h;
  mine.count++;
  let server: Server;
  try {
    server = await mine.server;
  } catch (e) {
    mine.count--;
    if (held.get(name) === mine) held.delete(name);
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') throw lockedError(dir, lockPath);
    throw e;
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--mine.count > 0) return;
    held.delete(name);
    // LOCK goes first: once the socket closes another process may take the lock and write its pid.
    if (pidIn(lockPath) === process.pid) rmSync(lockPath, { force: true });
    // Closed at once (not on a later tick): a lock() right after this unlock must find it free.
    server.close();
  };
}

/** Listens on abstract socket `name`; rejects with the listen error (`EADDRINUSE`: held by someone). */
function bind(name: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    // Nothing serves on it, and any local user may connect to an abstract name: a connection is
    // closed as it arrives (left open, each would hold a file descriptor).
    const server = createServer((socket) => socket.destroy());
    server.once('error', reject);
    server.listen(name, () => {
      server.off('error', reject);
      // An accept that fails (out of file descriptors) must not crash the node over a lock.
      server.on('error', () => undefined);
      // It must not keep the process alive either.
      server.unref();
      resolve(server);
    });
  });
}

/** Writes this process's pid to `lockPath` whole (a temporary file renamed over it); closes `server` if that fails. */
function recordPid(server: Server, lockPath: string): Server {
  const tmp = `${lockPath}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, String(process.pid), { mode: 0o600 });
    // Not flushed: LOCK only informs, and a torn one after a crash misleads nobody (the socket decides).
    renameSync(tmp, lockPath);
  } catch (e) {
    rmSync(tmp, { force: true });
    server.close();
    throw e;
  }
  return server;
}

/** `DataDirLocked`, naming the process `LOCK` names when that one runs. */
function lockedError(dir: string, lockPath: string): DataDirError {
  const pid = pidIn(lockPath);
  const who = pid !== undefined && isAlive(pid) ? `process ${pid}` : 'another process';
  return new DataDirError('DataDirLocked', `${dir} is in use by ${who}; stop it first or use another --data directory`);
}

/**
 * The pid-file lock, for platforms without abstract sockets: `LOCK` holds the owner's pid. A lock
 * whose process is gone (killed) is taken over; a live one is refused with DataDirError
 * `DataDirLocked`. A pid recycled by an unrelated process keeps the lock taken: remove `LOCK` by
 * hand then.
 *
 * LOCK is only ever created exclusively, and only removed by the holder of `LOCK.takeover`
 * (also created exclusively), after it read LOCK again under that guard and found its process
 * gone. So of several processes starting at once on a directory with a stale LOCK, one takes it
 * and the others see a live owner; none removes a lock another has just taken.
 */
export function lockByPidFile(dir: string, path: string): Unlock {
  const guard = `${path}.takeover`;
  const locked = (pid: number): DataDirError =>
    new DataDirError('DataDirLocked', `${dir} is in use by process ${pid}; stop it first or use another --data directory`);
  for (let attempt = 0; attempt < LOCK_ATTEMPTS; attempt++) {
    if (createExclusive(path)) return () => rmSync(path, { force: true });
    const owner = pidIn(path);
    if (owner !== undefined && isAlive(owner)) throw locked(owner);
    // Stale (or gone meanwhile): take it over under the guard.
    if (!createExclusive(guard)) {
      const guardOwner = pidIn(guard);
      // A guard whose process died in the middle of a takeover would block every start.
      if (guardOwner === undefined || !isAlive(guardOwner)) rmSync(guard, { force: true });
      pause(5 + attempt * 5);
      continue;
    }
    try {
      const again = pidIn(path);
      if (again !== undefined && isAlive(again)) throw locked(again);
      rmSync(path, { force: true });
      if (createExclusive(path)) return () => rmSync(path, { force: true });
    } finally {
      rmSync(guard, { force: true });
    }
  }
  throw new DataDirError('DataDirLocked', `${dir}: could not take the LOCK file`);
}

/** Tries to take LOCK (or its guard) for a start. */
const LOCK_ATTEMPTS = 20;

/**
 * Creates `path` holding this process's pid, only if it does not exist; false when it does. The
 * pid is written to a file of its own first and linked into place, so nobody ever reads the file
 * empty (an exclusive create then a write would show an empty file for a moment, which a racing
 * start would take for a stale lock).
 */
function createExclusive(path: string): boolean {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, String(process.pid), { mode: 0o600 });
  try {
    linkSync(tmp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** The pid a lock file names; undefined when it is gone or names none. */
function pidIn(path: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const pid = Number(text);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Whether another process with this pid runs (this process's own pid counts as not: the lock is per process). */
function isAlive(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    return process.kill(pid, 0);
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Waits `ms` milliseconds, synchronously (the pid-file lock runs before anything else of the node). */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
