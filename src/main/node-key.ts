/**
 * The node's secret key file (`<data>/node.key`): its identity, kept across restarts.
 *
 * The file holds the key as 64 lowercase hex characters on its first line. Once the node has run
 * a replica with this identity (voted, or acknowledged entries), a second line `served` follows
 * ({@link markKeyServed}): an identity that has served must never start as a founder again with
 * empty stores, even when everything but this file was lost (src/main/cluster-start.ts).
 */

import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { DataDirError } from './data-dir-error.js';
import { writeAtomic } from './durable-write.js';

/** Where the key's creation and a lax file mode are reported. */
export interface KeyLogger {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
}

const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

const KEY_RE = /^[0-9a-f]{64}$/;
const SERVED = 'served';

/** The key file's text as its key (hex) and whether it is marked served; undefined when it is no key file. */
function parseKeyFile(text: string): { hex: string; served: boolean } | undefined {
  const lines = text.split('\n').map((l) => l.trim());
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const [hex, mark, ...rest] = lines;
  if (hex === undefined || !KEY_RE.test(hex) || rest.length > 0 || (mark !== undefined && mark !== SERVED)) return undefined;
  return { hex, served: mark === SERVED };
}

/** Reads the node's secret key, creating it (mode 0600, atomically, never overwriting) when missing. */
export async function loadOrCreateKey(path: string, log: KeyLogger): Promise<Uint8Array> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new DataDirError('BadKeyFile', `cannot read ${path}: ${errText(e)}`);
    await createKey(path);
    log.info({ keyPath: path }, 'created a new node key');
    text = await readFile(path, 'utf8');
  }
  const parsed = parseKeyFile(text);
  if (parsed === undefined) throw new DataDirError('BadKeyFile', `${path} does not hold a 32-byte key as 64 lowercase hex characters`);
  const st = await stat(path);
  if ((st.mode & 0o077) !== 0) log.warn({ keyPath: path, mode: (st.mode & 0o777).toString(8) }, 'node key file is readable by group or others; chmod 600 it');
  return new Uint8Array(Buffer.from(parsed.hex, 'hex'));
}

/** Whether the key file at `path` is marked served (false when it is missing or no key file). */
export function keyServed(path: string): boolean {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return false;
  }
  return parseKeyFile(text)?.served === true;
}

/**
 * Marks the key file at `path` served, once: the key and the mark written to a temporary file
 * (mode 0600), flushed, renamed over it, the directory flushed, so a crash leaves the old file or
 * the new one. Must run before the node votes or acknowledges anything under this identity.
 */
export function markKeyServed(path: string): void {
  const parsed = parseKeyFile(readFileSync(path, 'utf8'));
  if (parsed === undefined) throw new DataDirError('BadKeyFile', `${path} does not hold a 32-byte key as 64 lowercase hex characters`);
  if (parsed.served) return;
  writeAtomic(path, `${parsed.hex}\n${SERVED}\n`);
}

async function createKey(path: string): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(`${randomBytes(32).toString('hex')}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    // link() never replaces: when another process created the key first, its key wins.
    await link(tmp, path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    await unlink(tmp);
  }
  try {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    // Directory fsync is best effort (not supported everywhere).
  }
}
