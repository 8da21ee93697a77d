/**
 * The disk-space alarm on a real node process and a real file system: space is taken from the
 * data directory's file system with a real file (fallocate) until it is below the node's bound,
 * and given back by removing the file. Writes are refused with 507 NoSpace while it is low,
 * reads go on, and the alarm clears by itself.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { freeBytesAt } from '../../src/main/disk-alarm.js';
import { CLI } from './cluster.js';

const MiB = 1 << 20;
/** How far below the node's bound the filler file takes the free space, and above it the start leaves it. */
const MARGIN_BYTES = 300 * MiB;

const root = mkdtempSync(join(tmpdir(), 'iroh-raft-disk-'));
const procs: ChildProcess[] = [];
afterAll(async () => {
  for (const p of procs) {
    if (p.exitCode !== null || p.signalCode !== null) continue;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await exited;
  }
  rmSync(root, { recursive: true, force: true });
});

async function startNode(name: string, freeBytesMin: number): Promise<string> {
  const proc = spawn(
    process.execPath,
    [
      CLI,
      'start',
      '--data',
      join(root, name),
      '--shards',
      '2',
      '--http',
      '127.0.0.1:0',
      '--listen',
      '127.0.0.1:0',
      '--disk-free-bytes-min',
      String(freeBytesMin),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  procs.push(proc);
  let out = '';
  return new Promise<string>((resolve, reject) => {
    proc.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening: HTTP (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    proc.stderr.on('data', (c: Buffer) => (out += c.toString()));
    proc.once('exit', (code) => reject(new Error(`node exited ${code}:\n${out}`)));
  });
}

/** Polls `attempt` every 100 ms until it returns true, for at most `ms`. */
async function until(attempt: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await attempt()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return attempt();
}

const put = (url: string, key: string, body: string): Promise<Response> => fetch(`${url}/v1/kv/${key}`, { method: 'PUT', body });

describe('the disk-space alarm', () => {
  test('low space refuses writes with 507 NoSpace while reads go on; freeing it takes writes again, without a restart', async () => {
    const free = await freeBytesAt(root);
    const url = await startNode('node', free - MARGIN_BYTES);
    expect(await until(async () => (await put(url, 'before', 'a')).status === 200, 20_000)).toBe(true);

    const filler = join(root, 'filler');
    execFileSync('fallocate', ['-l', String(2 * MARGIN_BYTES), filler]);
    let refused: Response | undefined;
    let attempt = 0;
    // Until the alarm's next reading, writes still go through: each attempt writes a key of its own.
    expect(
      await until(async () => {
        refused = await put(url, `during-${++attempt}`, 'b');
        return refused.status === 507;
      }, 10_000),
    ).toBe(true);
    expect(await refused!.json()).toMatchObject({ error: { code: 'NoSpace', message: expect.stringContaining('--disk-free-bytes-min') as unknown } });
    expect(refused!.headers.get('retry-after')).toBeNull();
    // Reads are served; the refused write was never proposed.
    expect(await (await fetch(`${url}/v1/kv/before`)).text()).toBe('a');
    expect((await fetch(`${url}/v1/kv/during-${attempt}`)).status).toBe(404);
    expect((await fetch(`${url}/v1/kv/before`, { method: 'DELETE' })).status).toBe(507);
    const status = (await (await fetch(`${url}/v1/status`)).json()) as { disk: { alarm: boolean; freeBytes: number; freeBytesMin: number } };
    expect(status.disk.alarm).toBe(true);
    expect(status.disk.freeBytes).toBeLessThan(status.disk.freeBytesMin);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/^iroh_raft_disk_alarm 1$/m);
    expect(metrics).toMatch(/^iroh_raft_router_writes_refused_no_space_total [1-9]/m);

    rmSync(filler);
    expect(await until(async () => (await put(url, 'after', 'c')).status === 200, 10_000)).toBe(true);
    expect(await (await fetch(`${url}/v1/kv/before`)).text()).toBe('a');
    const cleared = (await (await fetch(`${url}/v1/status`)).json()) as { disk: { alarm: boolean } };
    expect(cleared.disk.alarm).toBe(false);
    expect(await (await fetch(`${url}/metrics`)).text()).toMatch(/^iroh_raft_disk_alarms_total 1$/m);
  }, 60_000);

  test('a node started on a disk already below its bound refuses writes from its first request', async () => {
    const url = await startNode('full', Number.MAX_SAFE_INTEGER);
    let first: Response | undefined;
    // The first answers may be 503 while the shards elect; never a 200.
    expect(
      await until(async () => {
        first = await put(url, 'k', 'v');
        expect(first.status).not.toBe(200);
        return first.status === 507;
      }, 20_000),
    ).toBe(true);
    expect((await fetch(`${url}/v1/kv/k`)).status).toBe(404);
  }, 30_000);

  test('a bad --disk-free-bytes-min exits 2 with InvalidConfig naming it', () => {
    for (const v of ['-1', 'lots', '1.5']) {
      const r = spawnSync(process.execPath, [CLI, 'start', '--data', join(root, 'unused'), '--disk-free-bytes-min', v], { encoding: 'utf8', timeout: 20_000 });
      expect(r.status).toBe(2);
      expect(JSON.parse(r.stderr.trim().split('\n')[0] ?? '{}')).toMatchObject({
        error: { code: 'InvalidConfig', message: expect.stringContaining('--disk-free-bytes-min') as unknown },
      });
    }
  });
});
