/**
 * `meta.json` in the data directory: the cluster's metadata record (src/router/meta-record.ts) as
 * this node last read it, with its version. A restart routes by it and dials the members it names
 * before the meta group answers again: a node that joined after the founders has no tickets of
 * theirs, and may have to reach members that joined after it. Only a cache: the meta group's
 * record always wins. Written atomically; a file that cannot be read is logged and ignored.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkMeta } from '../router/meta-record.js';
import type { ClusterMeta } from '../router/meta-record.js';
import { writeAtomic } from './data-dir.js';

export const META_FILE = 'meta.json';

/** The stored record of `dataDir`; undefined (with `why` when a file was there) otherwise. */
export function readMetaFile(dataDir: string): { stored?: { version: number; meta: ClusterMeta }; why?: string } {
  let text: string;
  try {
    text = readFileSync(join(dataDir, META_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    return { why: (e as Error).message };
  }
  try {
    const o = JSON.parse(text) as { version?: unknown; meta?: unknown };
    if (typeof o.version !== 'number' || !Number.isSafeInteger(o.version) || o.version < 1) return { why: `${META_FILE}: bad version` };
    const meta = checkMeta(o.meta);
    if (typeof meta === 'string') return { why: `${META_FILE}: ${meta}` };
    return { stored: { version: o.version, meta } };
  } catch (e) {
    return { why: `${META_FILE}: ${(e as Error).message}` };
  }
}

/** Replaces `meta.json` of `dataDir`, atomically. Throws the file system's errors. */
export function writeMetaFile(dataDir: string, version: number, meta: ClusterMeta): void {
  writeAtomic(join(dataDir, META_FILE), `${JSON.stringify({ version, meta })}\n`);
}

/**
 * Marks raft id `node` removed in `meta.json` of `dataDir`, for a node that learned its removal
 * from the members rather than from the record (it was refused by all of them): its next start
 * is refused at once (NodeError `Removed`). No file, no such entry, or one removed already: left
 * as it is. Throws the file system's errors.
 */
export function recordRemoved(dataDir: string, node: number): void {
  const stored = readMetaFile(dataDir).stored;
  if (stored === undefined || !stored.meta.members.some((m) => m.node === node && m.state !== 'removed')) return;
  const members = stored.meta.members.map((m) => (m.node === node ? { ...m, state: 'removed' as const } : m));
  writeMetaFile(dataDir, stored.version, { ...stored.meta, members });
}
