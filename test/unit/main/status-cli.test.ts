/** `iroh-raft status`: its flags (the token's three sources among them) and the table it prints from a node's status JSON. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { ConfigError } from '../../../src/main/config.js';
import { STATUS_TIMEOUT_DEFAULT_MS, parseStatusFlags, renderStatus } from '../../../src/main/status-cli.js';

const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (e) {
    return e instanceof ConfigError ? e.code : `not a ConfigError: ${String(e)}`;
  }
  return undefined;
};

describe('status flags', () => {
  test('defaults: http://127.0.0.1:7070, the table, 5 s', () => {
    const f = parseStatusFlags([]);
    expect(f.via.href).toBe('http://127.0.0.1:7070/');
    expect(f.json).toBe(false);
    expect(f.timeoutMs).toBe(STATUS_TIMEOUT_DEFAULT_MS);
  });

  test('--via and --timeout-ms take a value after a space or an =; --json takes none', () => {
    const f = parseStatusFlags(['--via=https://[::1]:8080', '--json', '--timeout-ms', '250']);
    expect(f.via.origin).toBe('https://[::1]:8080');
    expect(f.json).toBe(true);
    expect(f.timeoutMs).toBe(250);
  });

  test('bad flags are ConfigErrors with a stable code', () => {
    expect(codeOf(() => parseStatusFlags(['--nope']))).toBe('UnknownFlag');
    expect(codeOf(() => parseStatusFlags(['--json=yes']))).toBe('UnknownFlag');
    for (const argv of [['--via'], ['--via', ''], ['--via', 'file:///etc'], ['--via', '::'], ['--timeout-ms', '-1'], ['--timeout-ms', '1e3'], ['x']]) {
      expect(
        codeOf(() => parseStatusFlags(argv)),
        argv.join(' '),
      ).toBe('InvalidFlag');
    }
  });
});

describe('status token', () => {
  const dir = mkdtempSync(join(tmpdir(), 'iroh-raft-token-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'admin.token');
  writeFileSync(file, '_admin.from-file\n', { mode: 0o600 });

  test('--token, else --token-file (trimmed, as a node writes it), else IROH_RAFT_TOKEN; none: no token', () => {
    const env = { IROH_RAFT_TOKEN: 'from-env' };
    expect(parseStatusFlags([]).token).toBeUndefined();
    expect(parseStatusFlags([], { IROH_RAFT_TOKEN: '' }).token).toBeUndefined();
    expect(parseStatusFlags([], env).token).toBe('from-env');
    expect(parseStatusFlags(['--token', 'from-flag'], env).token).toBe('from-flag');
    expect(parseStatusFlags(['--token-file', file], env).token).toBe('_admin.from-file');
    expect(parseStatusFlags([`--token-file=${file}`]).token).toBe('_admin.from-file');
  });

  test('both flags, one twice, an unreadable or empty file, a token no header can carry: InvalidFlag', () => {
    const empty = join(dir, 'empty');
    writeFileSync(empty, ' \n');
    for (const argv of [
      ['--token', 'a', '--token-file', file],
      ['--token', 'a', '--token', 'b'],
      ['--token-file', join(dir, 'missing')],
      ['--token-file', empty],
      ['--token-file'],
      ['--token', 'a b'],
      ['--token', 'é'],
    ]) {
      expect(
        codeOf(() => parseStatusFlags(argv)),
        argv.join(' '),
      ).toBe('InvalidFlag');
    }
    expect(codeOf(() => parseStatusFlags([], { IROH_RAFT_TOKEN: 'two words' }))).toBe('InvalidFlag');
  });
});

describe('status table', () => {
  const shard = (s: number, leader: number, commit: number, applied: number) => ({
    shard: s,
    role: leader === 1 ? 'leader' : 'follower',
    leader,
    term: 3,
    commit,
    applied,
  });
  const members = [1, 2, 3].map((n) => ({ node: n, id: `peer-${n}` }));

  test('members with state, workers, load and URL; shards with leader, lag; workers down; snapshots and moves', () => {
    const out = renderStatus(
      {
        node: 1,
        members,
        nodes: [
          { node: 1, self: true, up: true, workers: 2, workersDown: [1], requestsPerSec: 120.4, p99Ms: 3.25, httpUrl: 'http://127.0.0.1:7070', heardMsAgo: 0 },
          { node: 2, self: false, up: true, workers: 2, workersDown: [], requestsPerSec: 80, p99Ms: 2, httpUrl: 'http://127.0.0.1:7071', heardMsAgo: 40 },
          { node: 3, self: false, up: false, workers: 0, workersDown: [], requestsPerSec: null, p99Ms: null, httpUrl: null, heardMsAgo: 4200 },
        ],
        shards: [shard(0, 1, 10, 10), shard(1, 0, 7, 5)],
        workersDown: [1],
        snapshots: { sending: 1, receiving: 0 },
        moves: { supported: false, active: [] },
      },
      'http://127.0.0.1:7070',
    );
    expect(out.split('\n')).toEqual([
      'node 1 at http://127.0.0.1:7070: 2 of 3 members up; 2 shards hosted here, 1 with a leader; workers down here: 1',
      '',
      'MEMBER    STATE  WORKERS    REQ/S  P99 MS      HEARD  HTTP',
      '1 (this)  up     down: 1    120.4    3.25          -  http://127.0.0.1:7070',
      '2         up     2 running   80.0    2.00  0.0 s ago  http://127.0.0.1:7071',
      '3         DOWN   -              -       -  4.2 s ago  -',
      '',
      'SHARD  LEADER  ROLE HERE  TERM  COMMIT  APPLIED  LAG',
      '0      1       leader        3      10       10    0',
      '1      none    follower      3       7        5    2',
      '',
      'snapshots: sending 1, receiving 0; moves: none',
    ]);
  });

  test('a node without `nodes` in its status (an older version) still gets its members listed', () => {
    const out = renderStatus({ node: 2, members, shards: [], workersDown: [] }, 'http://h:1');
    expect(out).toContain('1 of 3 members up');
    expect(out).toContain('snapshots: not reported');
  });
});
