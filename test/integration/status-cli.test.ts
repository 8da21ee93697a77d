/**
 * `iroh-raft status` against real node processes: the table of members and shards, the JSON with
 * --json, a killed member shown DOWN, exit 1 with `Unreachable` when nothing answers, and exit 2
 * for bad flags.
 */
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { CLI, TestCluster, eventually, freePort } from './cluster.js';

/** Runs the CLI; resolves with its exit code and output (never rejects on a non-zero exit). */
function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

const cluster = new TestCluster({ nodes: 2, shards: 3 });
beforeAll(() => cluster.start());
afterAll(() => cluster.close());

test('status prints members up and every shard with its leader, term, commit, applied and lag; --json prints the node JSON', async () => {
  const url = cluster.node(1).url;
  await eventually(async () => (await fetch(`${url}/healthz`)).ok, 60_000, 'every shard led');
  await eventually(async () => /2 of 2 members up; 3 shards hosted here, 3 with a leader/.test((await cli('status', '--via', url)).stdout), 30_000, 'table');
  const { code, stdout, stderr } = await cli('status', '--via', url);
  expect(stderr).toBe('');
  expect(code).toBe(0);
  const lines = stdout.split('\n');
  expect(lines[0]).toMatch(new RegExp(`^node \\d at ${url}: 2 of 2 members up; 3 shards hosted here, 3 with a leader$`));
  expect(lines[2]).toMatch(/^MEMBER\s+STATE\s+WORKERS\s+REQ\/S\s+P99 MS\s+HEARD\s+HTTP$/);
  expect(lines.filter((l) => /^\d( \(this\))?\s+up\s/.test(l))).toHaveLength(2);
  // Each member's HTTP URL: its own, and the peer's as its liveness records said.
  for (const n of cluster.nodes) expect(stdout).toContain(n.url);
  const shardRows = lines.filter((l) => /^\d+\s+\d+\s+(leader|follower)\s+\d+\s+\d+\s+\d+\s+\d+$/.test(l));
  expect(shardRows).toHaveLength(3);
  expect(stdout).toContain('snapshots: none in progress; moves: none (membership is fixed)');

  const json = await cli('status', '--via', url, '--json');
  expect(json.code).toBe(0);
  const doc = JSON.parse(json.stdout) as { nodes: { up: boolean }[]; shards: unknown[] };
  expect(doc.nodes.map((n) => n.up)).toEqual([true, true]);
  expect(doc.shards).toHaveLength(3);
});

test('a killed member shows DOWN in the status of the one left', async () => {
  await cluster.kill(2);
  const url = cluster.node(1).url;
  await eventually(async () => /1 of 2 members up/.test((await cli('status', '--via', url)).stdout), 30_000, 'member down');
  const { stdout } = await cli('status', '--via', url);
  expect(stdout.split('\n').filter((l) => /^\d\s+DOWN\s/.test(l))).toHaveLength(1);
});

test('nothing answering at --via: exit 1 and one JSON error line Unreachable on stderr', async () => {
  const port = await freePort();
  const r = await cli('status', '--via', `http://127.0.0.1:${port}`, '--timeout-ms', '3000');
  expect(r.code).toBe(1);
  expect(r.stdout).toBe('');
  const err = JSON.parse(r.stderr.trim()) as { error: { code: string; message: string } };
  expect(err.error.code).toBe('Unreachable');
  expect(err.error.message).toContain(`http://127.0.0.1:${port}/v1/status`);
});

test('bad flags: exit 2 and a JSON error line', async () => {
  for (const [args, code] of [
    [['--bogus'], 'UnknownFlag'],
    [['--via'], 'InvalidFlag'],
    [['--via', 'ftp://127.0.0.1'], 'InvalidFlag'],
    [['--via', 'not a url'], 'InvalidFlag'],
    [['--timeout-ms', '0'], 'InvalidFlag'],
    [['extra'], 'InvalidFlag'],
  ] as const) {
    const r = await cli('status', ...args);
    expect(r.code, args.join(' ')).toBe(2);
    expect((JSON.parse(r.stderr.trim()) as { error: { code: string } }).error.code, args.join(' ')).toBe(code);
  }
});
