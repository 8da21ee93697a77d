/**
 * `iroh-raft kv` against a real node process: put (argument, --file, stdin), get (raw, --json,
 * consistency), del, scan (lines, --json, --limit), tenants and the token flag; errors as one JSON
 * line on stderr with exit 1 for what the cluster answered and 2 for bad usage.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CLI, TestCluster, eventually } from './cluster.js';

const c = new TestCluster({ nodes: 1, shards: 4 });
beforeAll(async () => {
  await c.start();
  await eventually(async () => (await fetch(`${c.node(1).url}/healthz`)).status === 200, 30_000, 'leaders');
}, 60_000);
afterAll(() => c.close());

interface Run {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

function kv(args: readonly string[], opts: { stdin?: Uint8Array; env?: Record<string, string>; via?: boolean } = {}): Promise<Run> {
  const argv = [CLI, 'kv', ...args, ...(opts.via === false ? [] : ['--via', c.node(1).url])];
  const p = spawn(process.execPath, argv, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  const out: Buffer[] = [];
  let stderr = '';
  p.stdout.on('data', (d: Buffer) => out.push(d));
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  p.stdin.end(opts.stdin ?? new Uint8Array(0));
  return new Promise((resolve) => p.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr })));
}

const errorOf = (r: Run): { code: string; message: string } => (JSON.parse(r.stderr.trim()) as { error: { code: string; message: string } }).error;

describe('iroh-raft kv', () => {
  test('put, get, del: from an argument, a file or stdin; raw and JSON reads', async () => {
    const put = await kv(['put', 'greeting', 'hello world']);
    expect([put.code, put.stdout.toString()]).toEqual([0, '{"version":1}\n']);
    const get = await kv(['get', 'greeting']);
    expect([get.code, get.stdout.toString()]).toEqual([0, 'hello world']);

    const file = join(c.root, 'value.bin');
    writeFileSync(file, new Uint8Array([0, 255, 10]));
    expect((await kv(['put', 'bin', '--file', file])).stdout.toString()).toBe('{"version":1}\n');
    expect([...(await kv(['get', 'bin', '--consistency', 'stale'])).stdout]).toEqual([0, 255, 10]);
    const json = await kv(['get', 'bin', '--json']);
    expect(JSON.parse(json.stdout.toString())).toMatchObject({ key: 'bin', value: { base64: 'AP8K' }, version: 1 });

    expect((await kv(['put', 'greeting', '-'], { stdin: new TextEncoder().encode('from stdin') })).stdout.toString()).toBe('{"version":2}\n');
    expect((await kv(['get', 'greeting', '--consistency=lease'])).stdout.toString()).toBe('from stdin');

    // Conditional: compare-and-set and compare-and-delete with --version.
    const conflict = await kv(['put', 'greeting', 'x', '--version', '1']);
    expect([conflict.code, errorOf(conflict).code]).toEqual([1, 'VersionMismatch']);
    expect((await kv(['put', 'greeting', 'again', '--version', '2'])).stdout.toString()).toBe('{"version":3}\n');
    expect(errorOf(await kv(['del', 'greeting', '--version', '2'])).code).toBe('VersionMismatch');
    expect(errorOf(await kv(['del', 'greeting', '--version', '0'])).code).toBe('InvalidArgument');
    expect((await kv(['del', 'greeting', '--version', '3'])).stdout.toString()).toBe('{"deleted":true}\n');
    expect((await kv(['put', 'greeting', 'back', '--version', '0'])).stdout.toString()).toBe('{"version":1}\n');
    expect((await kv(['del', 'greeting'])).stdout.toString()).toBe('{"deleted":true}\n');
    const gone = await kv(['get', 'greeting']);
    expect(gone.code).toBe(1);
    expect(errorOf(gone).code).toBe('KeyNotFound');
  });

  test('scan: lines or JSON lines, --limit, per tenant; the token flag and variable are accepted', async () => {
    for (const k of ['users/ada', 'users/bob', 'users/cy', 'other']) {
      expect((await kv(['put', k, `v-${k}`, '--tenant', 'acme', '--token', 't0ken'])).code).toBe(0);
    }
    const lines = await kv(['scan', 'users/', '--tenant', 'acme'], { env: { IROH_RAFT_TOKEN: 'x' } });
    expect(lines.stdout.toString()).toBe('users/ada\tv-users/ada\nusers/bob\tv-users/bob\nusers/cy\tv-users/cy\n');
    const two = await kv(['scan', 'users/', '--tenant', 'acme', '--limit', '2', '--json']);
    expect(
      two.stdout
        .toString()
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as unknown),
    ).toEqual([
      { key: 'users/ada', value: 'v-users/ada', version: 1 },
      { key: 'users/bob', value: 'v-users/bob', version: 1 },
    ]);
    // Another tenant sees none of them.
    expect((await kv(['scan', 'users/', '--tenant', 'globex'])).stdout.toString()).toBe('');
  });

  test('load: the JSON lines of scan --json written into another tenant, binary keys and values too; a bad line writes nothing', async () => {
    const file = join(c.root, 'bin-value.bin');
    writeFileSync(file, new Uint8Array([0, 255, 10, 7]));
    expect((await kv(['put', 'copy/bin', '--file', file, '--tenant', 'src'])).code).toBe(0);
    for (let i = 0; i < 40; i++)
      expect((await fetch(`${c.node(1).url}/v1/kv/copy/${i}`, { method: 'PUT', body: `v${i}`, headers: { 'x-tenant': 'src' } })).status).toBe(200);
    const dump = await kv(['scan', 'copy/', '--tenant', 'src', '--json']);
    expect(dump.code).toBe(0);
    const loaded = await kv(['load', '--tenant', 'dst'], { stdin: dump.stdout });
    expect([loaded.code, loaded.stdout.toString(), loaded.stderr]).toEqual([0, '{"loaded":41}\n', '']);
    const copied = await kv(['scan', 'copy/', '--tenant', 'dst', '--json']);
    const strip = (b: Buffer): unknown[] =>
      b
        .toString()
        .trim()
        .split('\n')
        .map((l) => {
          const { key, value } = JSON.parse(l) as { key: unknown; value: unknown };
          return { key, value };
        });
    expect(strip(copied.stdout)).toEqual(strip(dump.stdout));
    expect(strip(copied.stdout)).toContainEqual({ key: 'copy/bin', value: { base64: 'AP8KBw==' } });

    // A bad line anywhere refuses the whole input: exit 2, BadInput naming the line, nothing written.
    for (const bad of [
      '{"key":"a","value":"1"}\nnot json\n',
      '{"key":"a","value":"1"}\n{"key":"b"}\n',
      '{"key":{"base64":"!!"},"value":"1"}\n',
      '{"key":"","value":"1"}\n',
    ]) {
      const r = await kv(['load', '--tenant', 'refused'], { stdin: new TextEncoder().encode(bad) });
      expect([r.code, errorOf(r).code], bad).toEqual([2, 'BadInput']);
      expect(errorOf(r).message).toMatch(/line \d+/);
    }
    expect((await kv(['scan', '', '--tenant', 'refused'])).stdout.toString()).toBe('');
    const extra = await kv(['load', 'k'], { stdin: new Uint8Array(0) });
    expect([extra.code, errorOf(extra).code]).toEqual([2, 'InvalidArgument']);
  });

  test('errors: bad usage exits 2, what the cluster answers exits 1, each one JSON line with a stable code', async () => {
    const cases: [string[], number, string][] = [
      [['frob', 'k'], 2, 'UnknownCommand'],
      [['get'], 2, 'InvalidArgument'],
      [['put', 'k'], 2, 'InvalidArgument'],
      [['get', 'k', '--bogus'], 2, 'UnknownFlag'],
      [['get', 'k', '--consistency', 'strong'], 2, 'InvalidFlag'],
      [['scan', 'p', '--limit', '0'], 2, 'InvalidFlag'],
      [['put', 'k', 'v', '--version', '-1'], 2, 'InvalidFlag'],
      [['get', 'k', '--version', '1'], 2, 'UnknownFlag'],
      [['put', 'k', '--file', '/nonexistent/file'], 2, 'FileUnreadable'],
      [['put', 'k', 'v', '--tenant', 'bad tenant!'], 1, 'InvalidTenant'],
    ];
    for (const [args, exit, code] of cases) {
      const r = await kv(args);
      expect([r.code, errorOf(r).code], args.join(' ')).toEqual([exit, code]);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    const bad = await kv(['get', 'k', '--via', 'localhost:7070'], { via: false });
    expect([bad.code, errorOf(bad).code]).toEqual([2, 'InvalidFlag']);
    // No node there: Unreachable (or Timeout) after the client's retries, exit 1.
    const down = await kv(['get', 'k', '--via', 'http://127.0.0.1:1', '--timeout-ms', '1500'], { via: false });
    expect(down.code).toBe(1);
    expect(['Unreachable', 'Timeout']).toContain(errorOf(down).code);
  });
});
