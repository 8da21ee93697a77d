/** Log lines of a real node process: JSON lines on a pipe by default, readable lines with --log-format pretty, bad values refused. */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { CLI } from './cluster.js';

const root = mkdtempSync(join(tmpdir(), 'iroh-raft-logs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Starts a node with `args`, waits until it serves, stops it with SIGTERM; its stdout and exit code. */
async function runNode(name: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ stdout: string; code: number | null }> {
  const base = ['start', '--data', join(root, name), '--http', '127.0.0.1:0', '--listen', '127.0.0.1:0', '--workers', '1', '--shards', '1'];
  const proc = spawn(process.execPath, [CLI, ...base, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '', FORCE_COLOR: '', ...env },
  });
  let stdout = '';
  proc.stdout.setEncoding('utf8');
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    proc.stdout.on('data', (d: string) => {
      stdout += d;
      if (stdout.includes('listening: HTTP')) resolve();
    });
    proc.once('exit', () => reject(new Error(`node exited before listening:\n${stdout}`)));
  });
  // One answer from the node: its event loop has run since it printed the line, so its signal
  // handlers are in place (they are set right after the line is printed).
  const httpUrl = /listening: HTTP (\S+)/.exec(stdout)![1]!;
  await (await fetch(`${httpUrl}/healthz`)).arrayBuffer();
  proc.kill('SIGTERM');
  const code = await exited;
  return { stdout, code };
}

const logLines = (stdout: string): string[] => stdout.split('\n').filter((l) => l !== '' && !l.startsWith('iroh-raft node') && !l.startsWith('ticket:'));

describe('node logs', () => {
  test('on a pipe, by default: JSON lines with numeric levels, as before', async () => {
    const { stdout, code } = await runNode('json', []);
    expect(code).toBe(0);
    const lines = logLines(stdout);
    expect(lines.length).toBeGreaterThan(2);
    for (const l of lines)
      expect(JSON.parse(l)).toMatchObject({ level: expect.any(Number) as unknown, time: expect.any(Number) as unknown, pid: expect.any(Number) as unknown });
    expect(lines.some((l) => (JSON.parse(l) as { msg: string }).msg === 'node started')).toBe(true);
  });

  test('--log-format pretty: time, level as a word, message, key=value fields; no colors on a pipe', async () => {
    const { stdout, code } = await runNode('pretty', ['--log-format', 'pretty']);
    expect(code).toBe(0);
    const lines = logLines(stdout);
    expect(lines.length).toBeGreaterThan(2);
    for (const l of lines) expect(l).toMatch(/^\d\d:\d\d:\d\d\.\d{3} (TRACE|DEBUG|INFO |WARN |ERROR|FATAL) \S/);
    expect(stdout).not.toContain('\u001b[');
    expect(lines.find((l) => l.includes(' node started '))).toMatch(
      /^\S+ INFO {2}node started {2}node=1 id=[0-9a-f]{64} http=http:\/\/127\.0\.0\.1:\d+ allowedHosts=default tls=off shards=1 members=1$/,
    );
    expect(lines.find((l) => l.includes('shutting down'))).toMatch(/INFO {2}shutting down {2}signal=SIGTERM$/);
  });

  test('IROH_RAFT_LOG_FORMAT=pretty, and FORCE_COLOR colors the level', async () => {
    const { stdout } = await runNode('env', [], { IROH_RAFT_LOG_FORMAT: 'pretty', FORCE_COLOR: '1' });
    expect(stdout).toContain('\u001b[32mINFO \u001b[0m node started');
  });

  test('a bad value exits 2 with a JSON error, like the other flags', () => {
    const run = (args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; err: unknown } => {
      const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, IROH_RAFT_DATA: join(root, 'unused'), ...env } });
      return { status: r.status, err: (JSON.parse(r.stderr.trim().split('\n')[0] ?? '{}') as { error: unknown }).error };
    };
    expect(run(['start', '--log-format', 'xml'])).toEqual({
      status: 2,
      err: { code: 'InvalidConfig', message: 'flag --log-format: expected one of json, pretty, got "xml"' },
    });
    expect(run(['start'], { IROH_RAFT_LOG_FORMAT: 'colour' })).toMatchObject({ status: 2, err: { code: 'InvalidConfig' } });
    expect(run(['start', '--log-format'])).toMatchObject({ status: 2, err: { code: 'InvalidFlag' } });
    expect(run(['dev', '--log-format', 'xml'])).toMatchObject({ status: 2, err: { code: 'InvalidConfig' } });
  });
});
