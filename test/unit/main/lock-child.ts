/**
 * A process racing for a data directory's lock (test/unit/main/data-dir.test.ts): argv is the
 * directory, the lock kind (`socket` or `pid-file`) and optionally `exit` (hold the lock, do
 * nothing else). Says `ready` once loaded, takes the lock or
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
      // `exit`: nothing else to do, so the process ends unless the lock keeps it alive.
      if (process.argv[4] !== 'exit') setInterval(() => undefined, 1000);
      else process.stdin.destroy();
    },
    (e: unknown) => {
      process.stdout.write(e instanceof DataDirError ? `refused ${e.code}\n` : `error ${String(e)}\n`);
      process.exit(0);
    },
  );
});
process.stdout.write('ready\n');
