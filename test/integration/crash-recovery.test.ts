/**
 * Crash recovery with real processes, worker threads and LMDB files: a child process writes under
 * load and reports each acknowledged write; it is killed with SIGKILL at a random moment; the next
 * run finds every acknowledged write (once), and each shard's log replays to exactly its data.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, expect, test } from 'vitest';
import { Prng } from '../../src/shards/raft/index.js';

const child = new URL('./crash-child.ts', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'iroh-raft-crash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Verified {
  type: 'verified';
  acked: number;
  problems: string[];
  entries: number;
}

/** Runs the child once; kills it `killAfterMs` after it starts loading (never, when undefined). */
async function runChild(
  run: number,
  acks: string[],
  killAfterMs: number | undefined,
): Promise<{ verified: Verified; newAcks: string[]; signal: string | null }> {
  const acksFile = join(dir, 'acks.txt');
  writeFileSync(acksFile, acks.join('\n'));
  const args = ['--import', 'tsx', child, join(dir, 'data'), acksFile, '8', '2', String(run)];
  if (killAfterMs === undefined) args.push('--verify-only');
  const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const newAcks: string[] = [];
  let verified: Verified | undefined;
  const exited = new Promise<string | null>((resolve) => p.once('exit', (_code, signal) => resolve(signal)));
  for await (const line of createInterface({ input: p.stdout })) {
    if (line.startsWith('ack ')) {
      newAcks.push(line.slice(4));
      continue;
    }
    const msg = JSON.parse(line) as { type: string };
    if (msg.type === 'verified') verified = msg as Verified;
    if (msg.type === 'loading' && killAfterMs !== undefined) setTimeout(() => p.kill('SIGKILL'), killAfterMs);
    if (msg.type === 'error') throw new Error(`child reported ${line}`);
  }
  const signal = await exited;
  if (!verified) throw new Error(`child ${run} never verified; stderr:\n${stderr}`);
  return { verified, newAcks, signal };
}

test('SIGKILL at random moments under write load loses no acknowledged write and applies nothing twice', async () => {
  const seed = Number(process.env.CRASH_SEED ?? Date.now() % 100_000);
  const prng = new Prng(seed);
  const acks: string[] = [];
  const rounds = 20;
  for (let run = 1; run <= rounds; run++) {
    const killAfterMs = 50 + prng.int(0, 700);
    const { verified, newAcks, signal } = await runChild(run, acks, killAfterMs);
    expect(verified.problems, `seed ${seed} run ${run}`).toEqual([]);
    expect(verified.acked).toBe(acks.length);
    expect(signal).toBe('SIGKILL');
    acks.push(...newAcks);
  }
  const last = await runChild(rounds + 1, acks, undefined);
  expect(last.verified.problems, `seed ${seed}`).toEqual([]);
  // The load really ran: thousands of writes were acknowledged and replayed from the logs.
  expect(acks.length).toBeGreaterThan(rounds * 20);
  expect(last.verified.entries).toBeGreaterThanOrEqual(acks.length);
});
