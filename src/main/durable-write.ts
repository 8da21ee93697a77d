/** Durable writes of the data directory's small files. */
import { closeSync, fsyncSync, openSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Replaces file `path` with `text` (mode 0600) atomically: a temporary file, flushed, renamed over
 * it, and its directory flushed, so a crash leaves the old file or the new one, never a torn one.
 */
export function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeFileSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  syncDir(dirname(path));
}

/**
 * Flushes directory `path` itself (its list of names), so files created, renamed or removed in it
 * survive a crash. Directories that refuse fsync (some filesystems do, with EINVAL) are skipped:
 * nothing more can be done there.
 */
export function syncDir(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
  } finally {
    closeSync(fd);
  }
}
