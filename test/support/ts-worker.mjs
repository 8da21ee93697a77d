// Loads a TypeScript worker entry in tests: register tsx in this thread, then import the entry.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
