/** `iroh-raft dev`: a local cluster of separate processes in one command; Ctrl-C stops them all. */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, expect, test } from 'vitest';
import { CLI, eventually } from './cluster.js';

const root = mkdtempSync(join(tmpdir(), 'iroh-raft-dev-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

test('dev --nodes 2 prints each HTTP address, serves through every node, and stops every process on SIGINT', async () => {
  const base = 20_000 + Math.floor(Math.random() * 20_000);
  const dev = spawn(process.execPath, [CLI, 'dev', '--nodes', '2', '--shards', '2', '--base-port', String(base), '--data', root, '--tick-ms', '20', '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const urls: string[] = [];
  const nodeIds = new Set<number>();
  let listening = 0;
  const lines = createInterface({ input: dev.stdout });
  lines.on('line', (l) => {
    const m = /node \d+: (http:\/\/\S+)/.exec(l);
    if (m) urls.push(m[1]!);
    if (l.includes('listening: HTTP')) listening++;
  });
  await eventually(async () => Promise.resolve(listening === 2 && urls.length === 2), 60_000, 'both nodes listening');
  await eventually(async () => (await Promise.all(urls.map((u) => fetch(`${u}/healthz`)))).every((r) => r.status === 200), 30_000, 'leaders');
  expect((await fetch(`${urls[0]}/v1/kv/hello`, { method: 'PUT', body: 'dev' })).status).toBe(200);
  expect(await (await fetch(`${urls[1]}/v1/kv/hello`)).text()).toBe('dev');
  for (const u of urls) {
    const st = (await (await fetch(`${u}/v1/status`)).json()) as { node: number };
    nodeIds.add(st.node);
  }
  expect(nodeIds.size).toBe(2);
  const code = await new Promise<number | null>((resolve) => {
    dev.once('exit', (c) => resolve(c));
    dev.kill('SIGINT');
  });
  expect(code).toBe(0);
  // Both nodes are gone.
  for (const u of urls) await expect(fetch(`${u}/healthz`)).rejects.toThrow();
});
