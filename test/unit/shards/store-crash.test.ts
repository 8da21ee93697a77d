/**
 * The store (LMDB, its write-ahead log, checkpoints) killed with SIGKILL at random moments, on
 * real files, against a model: a child process runs random turns (store-crash-plan.ts: appends,
 * cuts into the unapplied log, term and vote changes, applies, checkpoints with compactions and
 * snapshots, entries up to 1.5 MiB) and prints each turn it has returned from; the test kills it
 * after a random delay, opens the store as a restart would, and asks that what it finds be the
 * model after the last turn printed or after the one that was running: every log entry, term and
 * vote a returned turn wrote, and the applied data and index of the last checkpoint. Some kills
 * land while the child itself is still opening the store (a crash during recovery), and some
 * runs are not checked before the next one, so a crash can follow a crash.
 *
 * A SIGKILL leaves the page cache to the kernel: this checks the order of writes and what a
 * restart reads, not whether each `fdatasync` is there (see the durability-ordering tests).
 * STORE_CRASH_RUNS sets the number of kills (default 20), STORE_CRASH_SEED the seed.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, expect, test } from 'vitest';
import { Prng } from '../../../src/shards/raft/index.js';
import type { LogIndex } from '../../../src/shards/raft/index.js';
import { Store } from '../../../src/shards/store.js';
import { SHARDS, VOTERS, fingerprint, initialModel, modelFingerprint, restarted, step } from './store-crash-plan.js';
import type { Model } from './store-crash-plan.js';

const CHILD = new URL('./store-crash-child.ts', import.meta.url).pathname;
const RUNS = Number(process.env.STORE_CRASH_RUNS ?? 20);
const SEED = Number(process.env.STORE_CRASH_SEED ?? Date.now() % 1e9);
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface Run {
  ready: boolean;
  /** The turns the child returned from, in order. */
  turns: number[];
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs the child from turn `from`; kills it `delayMs` after it started (`fromStart`) or after it printed ready. */
async function runChild(path: string, seed: number, from: number, delayMs: number, fromStart: boolean): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, path, String(seed), String(from)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const run: Run = { ready: false, turns: [], signal: null, stderr: '' };
  child.stderr.on('data', (b: Buffer) => (run.stderr += b.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', (_c, signal) => ((run.signal = signal), resolve())));
  const kill = () => setTimeout(() => child.kill('SIGKILL'), delayMs);
  let timer = fromStart ? kill() : undefined;
  for await (const line of createInterface({ input: child.stdout })) {
    if (line === 'ready') {
      run.ready = true;
      timer ??= kill();
    } else run.turns.push(Number(line));
  }
  await exited;
  clearTimeout(timer);
  return run;
}

/** The store at `path` as a restart finds it, rendered as the model's fingerprint is. */
async function recovered(path: string): Promise<string> {
  const store = Store.open({ path, worker: 0, workers: 1, checkpointMs: 1e9 });
  try {
    const lines: string[] = [];
    for (const s of SHARDS) {
      const ss = store.shard(s);
      const first = ss.firstIndex();
      const last = ss.lastIndex();
      const hard = ss.hardState();
      const data = new Map<string, string>();
      for (const { key, value } of ss.reader().range(Buffer.from([0]), Buffer.from([0xfe]), Infinity))
        data.set(Buffer.from(key).toString(), Buffer.from(value).toString());
      const entries = ss.entries(first, (last + 1) as LogIndex, Infinity).map((e) => ({ term: e.term, data: e.data }));
      lines.push(
        `shard ${s}: ${fingerprint({ first, last, compactedTerm: ss.term((first - 1) as LogIndex), entries, term: hard.term, vote: hard.vote, applied: ss.applied(), data })}`,
      );
    }
    return lines.join('\n');
  } finally {
    await store.close();
  }
}

/** Where `found` and `expected` part: a little of each from the first character that differs. */
function divergence(found: string, expected: string): string {
  let i = 0;
  while (i < found.length && found[i] === expected[i]) i++;
  const line = found.lastIndexOf('shard ', i);
  const head = found.slice(line, found.indexOf(':', line) + 1);
  const from = Math.max(line, i - 200);
  return `${head} the store has\n  ...${found.slice(from, i + 160)}\nwhere the model has\n  ...${expected.slice(from, i + 160)}`;
}

test(`SIGKILL at random moments: a restart finds every returned turn's log and hard state, and the last checkpoint's applied data (seed ${SEED})`, async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'iroh-raft-store-crash-')), 'lmdb');
  dirs.push(join(path, '..'));
  // The shards exist before the first kill (their creation is one durable transaction).
  const created = Store.open({ path, worker: 0, workers: 1 });
  created.batch(() => SHARDS.forEach((s) => created.create(s, VOTERS)));
  await created.close();
  const r = new Prng(SEED);
  // The states the store may be in: one after a checked restart, up to a few between.
  let candidates: Model[] = [initialModel()];
  let from = 1;
  let turnsRun = 0;
  const stats = { inOpening: 0, checked: 0, runningFound: 0 };
  for (let run = 0; run < RUNS; run++) {
    const fromStart = r.chance(0.25);
    const delayMs = fromStart ? r.int(100, 900) : r.int(5, 120);
    const res = await runChild(path, SEED, from, delayMs, fromStart);
    expect(res.signal, `child ended on its own (run ${run}):\n${res.stderr}`).toBe('SIGKILL');
    expect(res.turns, 'turns printed in order').toEqual(res.turns.map((_, i) => from + i));
    turnsRun += res.turns.length;
    // Each state it may have started from, through the turns it returned from, then perhaps the one it was in.
    const next = new Map<string, { model: Model; running: boolean }>();
    for (let m of candidates) {
      for (const t of res.turns) m = step(m, SEED, t);
      const returned = restarted(m);
      next.set(modelFingerprint(returned), { model: returned, running: false });
      if (res.ready) {
        const running = restarted(step(m, SEED, from + res.turns.length));
        const fp = modelFingerprint(running);
        if (!next.has(fp)) next.set(fp, { model: running, running: true });
      }
    }
    if (!res.ready) stats.inOpening++;
    from += res.turns.length + 1;
    const check = run === RUNS - 1 || !r.chance(0.3) || next.size > 8;
    if (!check) {
      candidates = [...next.values()].map((c) => c.model);
      continue;
    }
    stats.checked++;
    const found = await recovered(path);
    const match = next.get(found);
    if (match === undefined) {
      const expected = [...next.keys()].map((k, i) => `candidate ${i}: ${divergence(found, k)}`).join('\n');
      expect.fail(
        `run ${run} (seed ${SEED}, turns ${res.turns[0]}..${res.turns.at(-1)}): the store holds none of the ${next.size} states it may hold:\n${expected}`,
      );
    }
    if (match.running) stats.runningFound++;
    candidates = [match.model];
  }
  console.log(
    `store crash test, seed ${SEED}: ${RUNS} kills (${stats.inOpening} before the child was ready: starting, or opening the store), ${turnsRun} turns returned, ${stats.checked} restarts checked, ${stats.runningFound} of them with the turn running at the kill on disk`,
  );
  // The kills landed among many turns: the test exercised the store, not only its opening.
  expect(turnsRun).toBeGreaterThan(RUNS);
});
