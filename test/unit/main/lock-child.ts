/**
 * A process racing for a data directory's LOCK (test/unit/main/data-dir.test.ts): waits until the
 * start time given, takes the lock or is refused, says which on stdout, and holds a taken lock
 * for a while so the others see a live owner.
 */
import { DataDir, DataDirError } from '../../../src/main/data-dir.js';

const [dir, startAt] = process.argv.slice(2);
const dd = DataDir.open(dir!);
while (Date.now() < Number(startAt)) {
  // Spin until every racer is loaded, so they start together.
}
try {
  const unlock = dd.lock();
  process.stdout.write('locked\n');
  setTimeout(() => {
    unlock();
    process.exit(0);
  }, 1500);
} catch (e) {
  process.stdout.write(e instanceof DataDirError ? `refused ${e.code}\n` : `error ${String(e)}\n`);
}
