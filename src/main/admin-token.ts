/**
 * The node's admin token (`<data>/admin.token`, with `--auth on`): created at the first start
 * (mode 0600, atomically, never overwriting), kept across restarts. It is this node's: each node
 * of a cluster has its own, and a token works only on the node whose directory holds it (tenant
 * records, by contrast, are replicated). Only the hash of its secret stays in memory.
 */
import { randomBytes } from 'node:crypto';
import { link, open, readFile, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ADMIN_TOKEN_NAME, hashSecret, mintToken, parseToken } from '../router/tokens.js';
import { DataDirError } from './data-dir-error.js';
import type { KeyLogger } from './node-key.js';

/** The admin token file of data directory `data`. */
export const ADMIN_TOKEN_FILE = 'admin.token';

export interface AdminToken {
  /** The file's path (printed at start, for `--token-file`). */
  readonly path: string;
  /** SHA-256 of the token's secret. */
  readonly secretHash: Buffer;
  /** Made by this start (false: kept from an earlier one). */
  readonly created: boolean;
}

const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** Reads the admin token at `path`, creating it when missing. DataDirError `BadKeyFile` when it cannot be read or holds no admin token. */
export async function loadOrCreateAdminToken(path: string, log: KeyLogger): Promise<AdminToken> {
  let text: string;
  let created = false;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new DataDirError('BadKeyFile', `cannot read ${path}: ${errText(e)}`);
    created = await createToken(path);
    text = await readFile(path, 'utf8');
  }
  const parsed = parseToken(text.trim());
  if (parsed === undefined || parsed.name !== ADMIN_TOKEN_NAME)
    throw new DataDirError('BadKeyFile', `${path} does not hold an admin token (${ADMIN_TOKEN_NAME}.<43 base64url characters>); remove it to make a new one`);
  const st = await stat(path);
  if ((st.mode & 0o077) !== 0) log.warn({ path, mode: (st.mode & 0o777).toString(8) }, 'admin token file is readable by group or others; chmod 600 it');
  if (created) log.info({ path }, 'created the admin token');
  return { path, secretHash: hashSecret(parsed.secret), created };
}

/** Writes a fresh token to a temporary file, flushed, and links it into place; false when another was there first. */
async function createToken(path: string): Promise<boolean> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(`${mintToken(ADMIN_TOKEN_NAME).token}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  let made = true;
  try {
    await link(tmp, path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    made = false;
  } finally {
    await unlink(tmp);
  }
  const d = await open(dirname(path), 'r');
  try {
    await d.sync();
  } catch {
    // Directory fsync is best effort (not supported everywhere).
  } finally {
    await d.close();
  }
  return made;
}
