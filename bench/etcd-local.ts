/**
 * A local etcd cluster to compare against (bench/cluster.ts --against etcd=local): N members of
 * the `etcd` binary on PATH (or $ETCD_BIN; Debian's `etcd-server` package has one), each with its
 * own data directory and 127.0.0.1 ports, on etcd's defaults otherwise (the write-ahead log is
 * fsynced before a write is acknowledged; ranges are linearizable unless asked otherwise).
 *
 *   npx tsx bench/etcd-local.ts [--members 3]     # prints the client URLs; Ctrl-C stops it
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { freePort } from '../test/integration/cluster.js';
import { call, sleep } from './kv-client.js';
import { LocalServers, ServerProcess } from './local-cluster.js';

export const etcdBinary = (): string => process.env.ETCD_BIN ?? 'etcd';

/** `etcd --version`'s first line, or undefined when there is no etcd to run. */
export function etcdVersion(): string | undefined {
  const r = spawnSync(etcdBinary(), ['--version'], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  return /etcd Version: (\S+)/.exec(r.stdout)?.[1] ?? r.stdout.split('\n')[0]?.trim();
}

/** Starts `members` etcd processes as one cluster; resolves once every member answers /health. */
export async function startEtcd(members: number): Promise<LocalServers> {
  if (etcdVersion() === undefined) {
    throw new Error(`no etcd binary found ('${etcdBinary()} --version' failed): install one (Debian: apt-get install etcd-server) or set ETCD_BIN`);
  }
  const root = mkdtempSync(join(tmpdir(), 'iroh-raft-bench-etcd-'));
  const ports: { client: number; peer: number }[] = [];
  for (let i = 0; i < members; i++) ports.push({ client: await freePort(), peer: await freePort() });
  const initial = ports.map((p, i) => `e${i + 1}=http://127.0.0.1:${p.peer}`).join(',');
  const servers = ports.map((p, i) => {
    const name = `e${i + 1}`;
    const args = [
      '--name',
      name,
      '--data-dir',
      join(root, name),
      '--listen-client-urls',
      `http://127.0.0.1:${p.client}`,
      '--advertise-client-urls',
      `http://127.0.0.1:${p.client}`,
      '--listen-peer-urls',
      `http://127.0.0.1:${p.peer}`,
      '--initial-advertise-peer-urls',
      `http://127.0.0.1:${p.peer}`,
      '--initial-cluster',
      initial,
      '--initial-cluster-state',
      'new',
      '--initial-cluster-token',
      `bench-${process.pid}`,
      '--logger',
      'zap',
      '--log-level',
      'warn',
    ];
    const proc = spawn(etcdBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const s = new ServerProcess(`etcd ${i + 1}`, proc, join(root, `${name}.log`));
    s.url = `http://127.0.0.1:${p.client}`;
    return s;
  });
  const ls = LocalServers.of(root, servers);
  try {
    const deadline = performance.now() + 60_000;
    for (const s of servers) {
      for (;;) {
        if (s.exit) throw new Error(`${s.name} exited (${s.exit.code ?? s.exit.signal}) before it was healthy:\n${s.tail()}`);
        const a = await call(`${s.url}/health`, {}, 2000).catch(() => undefined);
        if (a?.status === 200 && a.body.toString().includes('"true"')) break;
        if (performance.now() > deadline) throw new Error(`${s.name} not healthy after 60 s:\n${s.tail()}`);
        await sleep(100);
      }
    }
    return ls;
  } catch (e) {
    await ls.destroy();
    throw e;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const i = process.argv.indexOf('--members');
  const members = i > 0 ? Number(process.argv[i + 1]) : 3;
  if (!Number.isInteger(members) || members < 1 || members > 9) {
    console.error(`--members must be a whole number from 1 to 9, got '${process.argv[i + 1]}'`);
    process.exit(2);
  }
  const ls = await startEtcd(members);
  console.log(`etcd ${etcdVersion()}: ${members} member(s) healthy; data and logs in ${ls.root}`);
  console.log(`npm run bench -- --against etcd=${ls.urls.join(',')}`);
  const stop = (): void => {
    void ls.stop(5000).then(() => ls.destroy());
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
