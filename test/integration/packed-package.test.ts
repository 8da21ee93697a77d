/**
 * The package as users get it: `npm pack`, installed into an empty project, used from there by
 * its two entry points. A consumer .ts file that uses `iroh-raft/client` and the `iroh-raft`
 * embedding API typechecks (`tsc --noEmit` with the repo's TypeScript), and a consumer .mjs puts
 * and gets through the client against a node started from the installed package
 * (`node_modules/iroh-raft/dist/main/cli.js start`), and runs a worker pool through the embedding
 * export. `npm test` builds dist first; packing here skips `prepack` (which builds) so other tests
 * running from dist at the same time are not disturbed.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, test } from 'vitest';
import { freePort } from './cluster.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'iroh-raft-pack-'));
let node: ChildProcess | undefined;
afterAll(() => {
  node?.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

function run(cmd: string, args: readonly string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const CONSUMER_TS = `
import { Client, ClientError, type ClientErrorCode, type GetResult, type ScanPage } from 'iroh-raft/client';
import { KvOp, WorkerPool, decodeKvReply, encodeGet, encodePut, nodeId, shardId, type Outcome, type StateMachine } from 'iroh-raft';

export async function viaClient(url: string): Promise<string | undefined> {
  const kv = new Client({ endpoints: [url], tenant: 'acme', timeoutMs: 5_000, retry: { attemptsMax: 3 } });
  const put: { version: number } = await kv.put('greeting', 'hello');
  const got: GetResult | null = await kv.get('greeting', { consistency: 'lease', signal: AbortSignal.timeout(5_000) });
  const swapped: { swapped: boolean; version: number } = await kv.cas('greeting', put.version, new Uint8Array([104, 105]));
  for await (const page of kv.scan('gr', { pageSize: 10 })) {
    const p: ScanPage = page;
    void p.items.map((i) => i.key.text());
  }
  try {
    await kv.delete('');
  } catch (e) {
    if (e instanceof ClientError) {
      const code: ClientErrorCode = e.code;
      void [code, e.status, e.retryAfterMs];
    }
  }
  await kv.close();
  return swapped.swapped ? got?.value.text() : undefined;
}

export async function embedded(dataDir: string): Promise<unknown> {
  const pool = await WorkerPool.start({ dataDir, workers: 1, shards: [{ shard: shardId(0), voters: [nodeId(1)] }] });
  const key = new TextEncoder().encode('k');
  const put: Outcome = await pool.propose(shardId(0), { clientId: 7, seq: 1, command: encodePut('acme', key, key) });
  const get = await pool.read(shardId(0), encodeGet('acme', key), 'linearizable');
  await pool.close();
  return put.ok && get.ok ? decodeKvReply(KvOp.Get, get.body) : undefined;
}

export const mine: StateMachine = {
  validateCommand: () => undefined,
  apply: (txn, cmd) => {
    txn.put(new Uint8Array([1]), cmd.command);
    return new Uint8Array(0);
  },
  query: (view, request) => view.get(request) ?? new Uint8Array(0),
};
`;

const CONSUMER_MJS = `
import { Client } from 'iroh-raft/client';
import { KvOp, WorkerPool, decodeKvReply, encodeGet, encodePut, nodeId, shardId } from 'iroh-raft';
const [url, dataDir] = process.argv.slice(2);
const kv = new Client({ endpoints: [url] });
const put = await kv.put('packed', 'from the tarball');
const got = await kv.get('packed');
await kv.close();
const pool = await WorkerPool.start({ dataDir, workers: 1, shards: [{ shard: shardId(0), voters: [nodeId(1)] }] });
const key = new TextEncoder().encode('k');
// The shard elects its leader in its first ticks: until then NotLeader (retried under one session).
const ok = async (f) => {
  for (let i = 0; ; i++) {
    const o = await f();
    if (o.ok || i === 100) return o;
    await new Promise((r) => setTimeout(r, 50));
  }
};
const p = await ok(() => pool.propose(shardId(0), { clientId: 7, seq: 1, command: encodePut('acme', key, new TextEncoder().encode('embedded')) }));
const g = await ok(() => pool.read(shardId(0), encodeGet('acme', key)));
if (!g.ok) throw new Error(g.code);
await pool.close();
const r = decodeKvReply(KvOp.Get, g.body);
console.log(JSON.stringify({ put: put.version, got: got.value.text(), version: got.version, embedded: p.ok && r.ok && r.found ? new TextDecoder().decode(r.value) : null }));
`;

test('npm pack installs into an empty project; iroh-raft/client and the embedding export typecheck and run', async () => {
  const packDir = join(root, 'pack');
  const project = join(root, 'project');
  run('mkdir', ['-p', packDir, project], root);
  run('npm', ['pack', '--ignore-scripts', '--pack-destination', packDir], repo);
  const [tgz] = readdirSync(packDir).filter((f) => f.endsWith('.tgz'));
  expect(tgz).toBeDefined();
  // What ships: dist and the package files, no tests, no sources, no maps.
  const listing = run('tar', ['tzf', join(packDir, tgz!)], root)
    .split('\n')
    .filter(Boolean);
  expect(listing).toContain('package/dist/client/index.js');
  expect(listing).toContain('package/dist/client/index.d.ts');
  expect(listing).toContain('package/dist/index.d.ts');
  expect(listing.filter((f) => !f.startsWith('package/dist/'))).toEqual(expect.arrayContaining(['package/package.json', 'package/README.md']));
  expect(listing.filter((f) => /^package\/(src|test|bench)\//.test(f) || f.endsWith('.map'))).toEqual([]);

  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', type: 'module', private: true }));
  run('npm', ['install', join(packDir, tgz!), '--prefer-offline', '--no-audit', '--no-fund'], project);

  // Typed use of both entry points.
  writeFileSync(join(project, 'consumer.ts'), CONSUMER_TS);
  const tsconfig = {
    compilerOptions: {
      target: 'ES2022',
      module: 'nodenext',
      moduleResolution: 'nodenext',
      strict: true,
      noEmit: true,
      // As in the repo: lmdb's own .d.ts does not check under nodenext; iroh-raft's types are still used and checked here.
      skipLibCheck: true,
      typeRoots: [join(repo, 'node_modules/@types')],
      types: ['node'],
    },
    files: ['consumer.ts'],
  };
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify(tsconfig));
  run(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], project);
  // And a mistake in it is caught (the types are real, not any).
  writeFileSync(join(project, 'consumer.ts'), `${CONSUMER_TS}\nexport const wrong: number = (await import('iroh-raft/client')).Client;\n`);
  const bad = spawnSync(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: project, encoding: 'utf8' });
  expect(bad.status).not.toBe(0);

  // A node from the installed package, and the consumer against it.
  const httpPort = await freePort();
  const data = join(root, 'node-data');
  node = spawn(
    process.execPath,
    [
      join(project, 'node_modules/iroh-raft/dist/main/cli.js'),
      'start',
      '--data',
      data,
      '--http',
      `127.0.0.1:${httpPort}`,
      '--listen',
      '127.0.0.1:0',
      '--workers',
      '1',
      '--shards',
      '4',
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  node.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: node!.stdout! }).on('line', (line) => {
      output += `${line}\n`;
      if (line.includes('listening: HTTP')) resolve();
    });
    node!.once('exit', (code) => reject(new Error(`the packed node exited (${code}):\n${output}`)));
  });
  writeFileSync(join(project, 'consumer.mjs'), CONSUMER_MJS);
  const out = run(process.execPath, ['consumer.mjs', `http://127.0.0.1:${httpPort}`, join(root, 'embedded-data')], project);
  expect(JSON.parse(out.trim())).toEqual({ put: 1, got: 'from the tarball', version: 1, embedded: 'embedded' });
}, 90_000);
