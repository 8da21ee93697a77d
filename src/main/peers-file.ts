/**
 * `peers.json` in the data directory: this node's discovery generation and the last addresses
 * each member claimed (src/io/discovery/book.ts), so a restart finds members that moved while it
 * was down, as long as one of them is still where it was.
 *
 * Written atomically (a temporary file, flushed, renamed over the old one, the directory flushed):
 * a crash leaves the old file or the new one. A file that cannot be read or parsed, or whose
 * entries break the rules, is logged and ignored: the addresses are only a cache (tickets remain),
 * and the generation then starts from the clock.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StoredPeers } from '../io/discovery/index.js';
import { normalizeAddr } from '../io/ticket.js';

export const PEERS_FILE = 'peers.json';
const FILE_VERSION = 1;

/** The stored peers of `dataDir`, or undefined (with `why`) when there is no usable file. */
export function readPeersFile(dataDir: string): { stored: StoredPeers | undefined; why?: string } {
  let text: string;
  try {
    text = readFileSync(join(dataDir, PEERS_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { stored: undefined };
    return { stored: undefined, why: (e as Error).message };
  }
  try {
    return { stored: parse(JSON.parse(text)) };
  } catch (e) {
    return { stored: undefined, why: `${PEERS_FILE}: ${(e as Error).message}` };
  }
}

/** Replaces `peers.json` in `dataDir` with `stored`, atomically. Throws the file system's errors. */
export function writePeersFile(dataDir: string, stored: StoredPeers): void {
  const path = join(dataDir, PEERS_FILE);
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeFileSync(fd, `${JSON.stringify({ version: FILE_VERSION, ...stored }, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dirFd = openSync(dataDir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

function parse(v: unknown): StoredPeers {
  const o = v as { version?: unknown; generation?: unknown; members?: unknown };
  if (typeof o !== 'object' || o === null || o.version !== FILE_VERSION) throw new Error(`expected version ${FILE_VERSION}`);
  const generation = o.generation;
  if (typeof generation !== 'number' || !Number.isSafeInteger(generation) || generation < 1) throw new Error('generation must be a positive integer');
  if (typeof o.members !== 'object' || o.members === null || Array.isArray(o.members)) throw new Error('members must be an object');
  const members: Record<string, { generation: number; addrs: string[] }> = {};
  for (const [id, m] of Object.entries(o.members as Record<string, unknown>)) {
    const e = m as { generation?: unknown; addrs?: unknown };
    if (!/^[0-9a-f]{64}$/.test(id)) throw new Error(`member id ${JSON.stringify(id)} is malformed`);
    if (typeof e?.generation !== 'number' || !Number.isSafeInteger(e.generation) || e.generation < 1) throw new Error(`member ${id}: bad generation`);
    if (!Array.isArray(e.addrs) || e.addrs.length === 0) throw new Error(`member ${id}: addrs must be a non-empty array`);
    members[id] = { generation: e.generation, addrs: e.addrs.map((a) => normalizeAddr(String(a))) };
  }
  return { generation, members };
}
