// A piscina task module that runs a TypeScript task module in tests: register tsx in this thread,
// then hand each task to the default export of `workerData.entry` (a file: URL string).
//
// The import is started here and awaited per task rather than with top-level await: piscina first
// tries require() on the filename, and Node refuses require() of a module with top-level await, so
// a handler without it loads the same way on either path.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const loaded = import(workerData.entry);
// Keeps a failed import from being reported as unhandled before the first task observes it.
loaded.catch(() => {});

export default async function task(input) {
  const { default: handler } = await loaded;
  return handler(input);
}
