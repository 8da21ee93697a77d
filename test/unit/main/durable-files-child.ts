/**
 * Everything a first start writes into a new data directory outside the raft log, in the order a
 * node writes it (test/unit/main/durable-files.test.ts traces its system calls): the directory,
 * the node key, the admin token, cluster.json, worker 0's LMDB store, the key's mark that it has
 * served, the record of the stores, and peers.json (discovery).
 */
import { join } from 'node:path';
import { DataDir } from '../../../src/main/data-dir.js';
import { ADMIN_TOKEN_FILE, loadOrCreateAdminToken } from '../../../src/main/admin-token.js';
import { Store } from '../../../src/shards/store.js';
import { writePeersFile } from '../../../src/main/peers-file.js';

const log = { info: () => undefined, warn: () => undefined };
const dir = DataDir.open(process.argv[2]!);
const unlock = await dir.lock();
await dir.loadOrCreateKey(log);
await loadOrCreateAdminToken(join(dir.path, ADMIN_TOKEN_FILE), log);
dir.checkCluster({ shards: 2, members: ['a'], replicas: 1 });
const store = Store.open({ path: dir.workerDir(0), worker: 0, workers: 1, mapSizeBytes: 16 * 1024 ** 2 });
await store.close();
dir.markKeyServed();
dir.recordStores(1);
writePeersFile(dir.path, { generation: 1, members: {} });
unlock();
