/**
 * Racing starts on one data directory: several real `iroh-raft start` processes launched at once on
 * one directory; exactly one serves, every other exits with code 2 and `DataDirLocked`. Then the
 * same with a stale `LOCK` naming a live unrelated process (this test's own pid), which must not
 * keep the next start out, and after the winner was killed with SIGKILL (nothing to clean up).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { CLI } from './cluster.js';

const root = mkdtempSync(join(tmpdir(), 'iroh-raft-lock-race-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** How one start ended: it served (HTTP URL, still running) or exited (code and stderr). */
type Outcome = { serving: string; kill: (signal: NodeJS.Signals) => Promise<number | string> } | { exited: number | string; stderr: string };

/** Starts a node on `data`; resolves once it listens or exits. */
function start(data: string): Promise<Outcome> {
  const args = [CLI, 'start', '--data', data, '--http', '127.0.0.1:0', '--listen', '127.0.0.1:0', '--shards', '2', '--workers', '1', '--log-level', 'warn'];
  const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | string>((r) => p.once('exit', (code, sig) => r(code ?? sig ?? 'unknown')));
  return new Promise((resolve) => {
    let out = '';
    p.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening: HTTP (\S+)/.exec(out);
      if (m !== null) resolve({ serving: m[1]!, kill: (signal) => (p.kill(signal), exited) });
    });
    void exited.then((code) => resolve({ exited: code, stderr }));
  });
}

/** Starts `n` nodes on `data` at once; expects one to serve and the rest refused; returns the one. */
async function race(data: string, n: number): Promise<Extract<Outcome, { serving: string }>> {
  const outcomes = await Promise.all(Array.from({ length: n }, () => start(data)));
  const serving = outcomes.filter((o) => 'serving' in o);
  const refused = outcomes.filter((o) => 'exited' in o);
  try {
    expect(serving.length, JSON.stringify(refused)).toBe(1);
    for (const r of refused) {
      expect(r.exited).toBe(2);
      expect(JSON.parse(r.stderr.trim().split('\n').at(-1)!)).toMatchObject({ error: { code: 'DataDirLocked' } });
    }
    // It serves: healthy once its shards have leaders.
    let status = 0;
    for (let i = 0; i < 300 && status !== 200; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 100));
      status = (await fetch(`${serving[0]!.serving}/healthz`)).status;
    }
    expect(status).toBe(200);
  } catch (e) {
    await Promise.all(serving.map((s) => s.kill('SIGKILL')));
    throw e;
  }
  return serving[0]!;
}

describe('racing starts on one data directory', () => {
  test('exactly one of four serves, each time: fresh, after SIGKILL, with a stale LOCK naming a live process', async () => {
    const data = join(root, 'd');
    const first = await race(data, 4);
    // Killed outright: its lock goes with it, and its LOCK file (naming a dead pid) stays behind.
    expect(await first.kill('SIGKILL')).toBe('SIGKILL');
    const second = await race(data, 4);
    expect(await second.kill('SIGTERM')).toBe(0);
    // A LOCK naming a live process that holds no lock (pid reuse, a copied directory).
    writeFileSync(join(data, 'LOCK'), String(process.pid));
    const third = await race(data, 4);
    expect(await third.kill('SIGTERM')).toBe(0);
  }, 180_000);
});
