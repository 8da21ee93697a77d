/**
 * `--helper-threads` on real node processes (Linux): with the default (`batch`) every thread of
 * the node but its event loop runs under SCHED_BATCH, the event loop under SCHED_OTHER, and the
 * node serves; with `normal` every thread keeps SCHED_OTHER; a bad value is refused at start.
 * The policies are read from /proc/<pid>/task/<tid>/stat (field 41), as the kernel sees them.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { CLI, TestCluster, eventually } from './cluster.js';

/** Test-only preload: `<data>/crash-worker-<w>` crashes shard worker w (see crash-worker.cjs). */
const HOOK = new URL('./crash-worker.cjs', import.meta.url).pathname;
const SCHED_OTHER = 0;
const SCHED_BATCH = 3;

/** The scheduling policy of each thread of `pid`, by thread id. */
function policies(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    // Fields after the command name (which may hold spaces and parentheses) start at field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(Number(tid), Number(fields[41 - 3]));
  }
  return out;
}

const clusters: TestCluster[] = [];
afterAll(() => Promise.all(clusters.map((c) => c.close())));

async function started(extra: string[], nodeArgs: string[] = []): Promise<{ c: TestCluster; pid: number }> {
  const c = new TestCluster({ nodes: 1, shards: 4, workers: 2, extra, logLevel: 'info', nodeArgs });
  clusters.push(c);
  await c.start();
  const pid = c.node(1).proc!.pid!;
  return { c, pid };
}

describe.runIf(process.platform === 'linux')('--helper-threads', () => {
  test('batch (the default): the event loop under SCHED_OTHER, every other thread (workers, Iroh, V8) under SCHED_BATCH; the node serves', async () => {
    const { c, pid } = await started([]);
    // Set right after the node is up (its "listening" line), and said in its log.
    await eventually(() => Promise.resolve(c.node(1).output.includes('helper threads scheduled SCHED_BATCH')), 10_000, 'the log says the threads were set');
    const p = policies(pid);
    // The event loop, two shard workers, the Iroh binding's threads and V8's: many threads.
    expect(p.size).toBeGreaterThan(5);
    expect(p.get(pid)).toBe(SCHED_OTHER);
    const others = [...p].filter(([tid]) => tid !== pid);
    expect(others.filter(([, policy]) => policy !== SCHED_BATCH)).toEqual([]);
    const put = await fetch(`${c.node(1).url}/v1/kv/k`, { method: 'PUT', body: 'v' });
    expect(put.status).toBe(200);
    expect(await (await fetch(`${c.node(1).url}/v1/kv/k`)).text()).toBe('v');
  });

  test('batch: a shard worker restarted after a crash (a new thread of the event loop) runs under SCHED_BATCH too', async () => {
    const { c, pid } = await started([], ['--require', HOOK]);
    await eventually(() => Promise.resolve(c.node(1).output.includes('helper threads scheduled SCHED_BATCH')), 10_000, 'the policy is set');
    const before = new Set(policies(pid).keys());
    const marker = join(c.node(1).data, 'crash-worker-0');
    writeFileSync(marker, '');
    const workersDown = async (): Promise<number[]> => ((await (await fetch(`${c.node(1).url}/v1/status`)).json()) as { workersDown: number[] }).workersDown;
    await eventually(async () => (await workersDown()).includes(0), 20_000, 'worker 0 is down');
    rmSync(marker);
    await eventually(async () => c.node(1).output.includes('"worker restarted"') && (await workersDown()).length === 0, 30_000, 'worker 0 runs again');
    await eventually(
      async () => (await fetch(`${c.node(1).url}/v1/kv/after-restart`, { method: 'PUT', body: 'v' })).status === 200,
      30_000,
      'the node writes again',
    );
    const p = policies(pid);
    // The restarted worker is a thread that was not there before, and nothing runs under the default but the event loop.
    expect([...p.keys()].filter((tid) => !before.has(tid)).length).toBeGreaterThan(0);
    expect(p.get(pid)).toBe(SCHED_OTHER);
    expect([...p].filter(([tid, policy]) => tid !== pid && policy !== SCHED_BATCH)).toEqual([]);
  });

  test('normal: every thread keeps SCHED_OTHER', async () => {
    const { c, pid } = await started(['--helper-threads', 'normal']);
    const p = policies(pid);
    expect(p.size).toBeGreaterThan(5);
    expect([...p].filter(([, policy]) => policy !== SCHED_OTHER)).toEqual([]);
    expect(c.node(1).output).not.toContain('SCHED_BATCH');
    expect((await fetch(`${c.node(1).url}/v1/kv/k`, { method: 'PUT', body: 'v' })).status).toBe(200);
  });

  test('any other value is refused at start: exit 2, InvalidConfig naming the flag', () => {
    const c = new TestCluster({ nodes: 1, shards: 4 });
    clusters.push(c);
    for (const [args, env] of [
      [['--helper-threads', 'fast'], {}],
      [[], { IROH_RAFT_HELPER_THREADS: 'BATCH' }],
    ] as const) {
      const r = spawnSync(process.execPath, [CLI, 'start', '--data', join(c.root, 'refused'), '--http', '127.0.0.1:0', '--listen', '127.0.0.1:0', ...args], {
        encoding: 'utf8',
        env: { ...process.env, ...env },
        timeout: 30_000,
      });
      expect(r.status, r.stderr).toBe(2);
      const err = (JSON.parse(r.stderr.trim().split('\n').at(-1)!) as { error: { code: string; message: string } }).error;
      expect(err.code).toBe('InvalidConfig');
      expect(err.message).toMatch(/helper-threads|HELPER_THREADS/);
    }
  });
});
