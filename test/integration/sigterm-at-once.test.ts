/**
 * A node stopped with SIGTERM the moment it says it listens stops gracefully (exit 0), every time:
 * supervisors and tests send the signal as soon as they read that line, so the handlers must be in
 * place before it is printed (they were installed after it, and most such signals killed the node).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { CLI } from './cluster.js';

const data = mkdtempSync(join(tmpdir(), 'iroh-raft-sigterm-'));
afterAll(() => rmSync(data, { recursive: true, force: true }));

describe('SIGTERM at once', () => {
  test('ten starts each stopped by SIGTERM on reading "listening": each exits 0', async () => {
    const outcomes: string[] = [];
    for (let i = 0; i < 10; i++) {
      const args = [CLI, 'start', '--data', data, '--http', '127.0.0.1:0', '--listen', '127.0.0.1:0', '--shards', '2', '--workers', '1', '--log-level', 'warn'];
      const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const exited = new Promise<string>((r) => p.once('exit', (code, sig) => r(`${code ?? sig}`)));
      await new Promise<void>((resolve, reject) => {
        p.stdout.on('data', (c: Buffer) => {
          if (c.toString().includes('listening: HTTP')) resolve();
        });
        p.once('exit', () => reject(new Error('exited before listening')));
      });
      p.kill('SIGTERM');
      outcomes.push(await exited);
    }
    expect(outcomes).toEqual(Array(10).fill('0'));
  }, 120_000);
});
