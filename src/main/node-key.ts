/** The node's secret key file (`<data>/node.key`): its identity, kept across restarts. */

import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DataDirError } from './data-dir-error.js';

/** Where the key's creation and a lax file mode are reported. */
export interface KeyLogger {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
}

const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

const KEY_RE = /^[0-9a-f]{64}$/;

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
  const hex = text.trim();
  if (!KEY_RE.test(hex)) throw new DataDirError('BadKeyFile', `${path} does not hold a 32-byte key as 64 lowercase hex characters`);
  const st = await stat(path);
  if ((st.mode & 0o077) !== 0) log.warn({ keyPath: path, mode: (st.mode & 0o777).toString(8) }, 'node key file is readable by group or others; chmod 600 it');
  return new Uint8Array(Buffer.from(hex, 'hex'));
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
