/**
 * A process racing for a data directory's lock (test/unit/main/data-dir.test.ts): argv is the
 * directory and the lock kind (`socket` or `pid-file`). Says `ready` once loaded, takes the lock or
 * is refused as soon as a line arrives on stdin (the parent sends it to every racer at once), says
 * which on stdout, and holds a taken lock until it is killed.
 */
import { DataDir, DataDirError } from '../../../src/main/data-dir.js';
import type { LockKind } from '../../../src/main/data-dir.js';

const dd = DataDir.open(process.argv[2]!);
const kind = (process.argv[3] ?? 'socket') as LockKind;
process.stdin.once('data', () => {
  dd.lock(kind).then(
    () => {
      process.stdout.write('locked\n');
      setInterval(() => undefined, 1000);
    },
    (e: unknown) => {
      process.stdout.write(e instanceof DataDirError ? `refused ${e.code}\n` : `error ${String(e)}\n`);
      process.exit(0);
    },
  );
});
process.stdout.write('ready\n');
