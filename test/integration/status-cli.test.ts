/**
 * `iroh-raft status` against real node processes: the table of members and shards, the JSON with
 * --json, a killed member shown DOWN, exit 1 with `Unreachable` when nothing answers, and exit 2
 * for bad flags; against a node with `--auth on`: exit 1 `Unauthorized` without its admin token
 * or with a wrong one, the table with it (from --token, --token-file or IROH_RAFT_TOKEN).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CLI, TestCluster, eventually, freePort } from './cluster.js';

/** The environment without IROH_RAFT_TOKEN (a developer's own must not leak into the runs). */
const { IROH_RAFT_TOKEN: _ignored, ...baseEnv } = process.env;

/** Runs the CLI; resolves with its exit code and output (never rejects on a non-zero exit). */
function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return cliEnv({}, ...args);
}

/** Runs the CLI with `env` added to the environment. */
function cliEnv(env: Record<string, string>, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000, env: { ...baseEnv, ...env } }, (err, stdout, stderr) => {
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
  // A peer's HTTP URL reaches this node with its liveness report (about once a second).
  const complete = (out: string): boolean =>
    /2 of 2 members up; 3 shards hosted here, 3 with a leader/.test(out) && cluster.nodes.every((n) => out.includes(n.url));
  await eventually(async () => complete((await cli('status', '--via', url)).stdout), 30_000, 'table');
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
  expect(stdout).toContain('snapshots: none in progress; moves: none');

  // With auth off a token is not needed, and one given is not in the way.
  expect((await cliEnv({ IROH_RAFT_TOKEN: '_admin.whatever' }, 'status', '--via', url)).stdout).toBe(stdout);

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

describe('a node with --auth on', () => {
  const secured = new TestCluster({ nodes: 1, shards: 2, extra: ['--auth', 'on'] });
  beforeAll(() => secured.start(), 60_000);
  afterAll(() => secured.close());
  const tokenFile = (): string => join(secured.node(1).data, 'admin.token');
  const errorOf = (r: { stderr: string }): { code: string; message: string } =>
    (JSON.parse(r.stderr.trim()) as { error: { code: string; message: string } }).error;

  test('without its admin token, or with a wrong one: exit 1 and one JSON error line Unauthorized', async () => {
    const url = secured.node(1).url;
    const none = await cli('status', '--via', url);
    expect(none.code).toBe(1);
    expect(none.stdout).toBe('');
    expect(errorOf(none).code).toBe('Unauthorized');
    expect(errorOf(none).message).toMatch(/answered 401: this node requires its admin token: give --token, --token-file/);
    const wrong = await cli('status', '--via', url, '--token', `_admin.${'A'.repeat(43)}`);
    expect(wrong.code).toBe(1);
    expect(errorOf(wrong).code).toBe('Unauthorized');
    expect(errorOf(wrong).message).toMatch(/refused the token/);
    const wrongEnv = await cliEnv({ IROH_RAFT_TOKEN: 'garbage' }, 'status', '--via', url, '--json');
    expect([wrongEnv.code, errorOf(wrongEnv).code]).toEqual([1, 'Unauthorized']);
  });

  test('with its admin token from --token-file, --token or IROH_RAFT_TOKEN: the table and the JSON', async () => {
    const url = secured.node(1).url;
    const token = readFileSync(tokenFile(), 'utf8').trim();
    await eventually(
      async () => /1 of 1 members up; 2 shards hosted here, 2 with a leader/.test((await cli('status', '--via', url, '--token-file', tokenFile())).stdout),
      30_000,
      'table',
    );
    const viaFile = await cli('status', '--via', url, '--token-file', tokenFile());
    expect([viaFile.code, viaFile.stderr]).toEqual([0, '']);
    expect(viaFile.stdout.split('\n')[0]).toMatch(new RegExp(`^node \\d+ at ${url}: 1 of 1 members up; 2 shards hosted here, 2 with a leader$`));
    const viaFlag = await cli('status', '--via', url, '--token', token, '--json');
    expect(viaFlag.code).toBe(0);
    expect((JSON.parse(viaFlag.stdout) as { shards: unknown[] }).shards).toHaveLength(2);
    const viaEnv = await cliEnv({ IROH_RAFT_TOKEN: token }, 'status', '--via', url);
    expect(viaEnv.code).toBe(0);
    expect(viaEnv.stdout).toMatch(/1 of 1 members up/);
  });
});
