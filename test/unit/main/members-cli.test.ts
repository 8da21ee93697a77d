/**
 * `iroh-raft members`: its command lines parsed into their `/v1/members` requests or refused with
 * stable codes (a member is a raft id or a 64 lowercase hex character endpoint id, nothing else),
 * and the table it prints. `meta.json` taking a removal learned from the members.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { UsageError } from '../../../src/main/cli-flags.js';
import { membersTable, parseMembersArgs } from '../../../src/main/members-cli.js';
import { readMetaFile, recordRemoved, writeMetaFile } from '../../../src/main/meta-file.js';
import type { ClusterMeta } from '../../../src/router/meta-record.js';

const ID = 'c'.repeat(64);
const VIA = 'http://127.0.0.1:7070';

describe('iroh-raft members', () => {
  test('list (with or without the word) and remove by raft id or endpoint id become their requests', () => {
    expect(parseMembersArgs([], {})).toEqual({ req: { method: 'GET', path: '/v1/members', via: VIA }, json: false });
    expect(parseMembersArgs(['list', '--json'], {})).toEqual({ req: { method: 'GET', path: '/v1/members', via: VIA }, json: true });
    expect(parseMembersArgs(['remove', '4', '--via', 'http://127.0.0.1:9'], {})).toEqual({
      req: { method: 'DELETE', path: '/v1/members/4', via: 'http://127.0.0.1:9' },
      json: true,
    });
    expect(parseMembersArgs(['remove', ID], { IROH_RAFT_TOKEN: 't.k' })).toEqual({
      req: { method: 'DELETE', path: `/v1/members/${ID}`, via: VIA, token: 't.k' },
      json: true,
    });
    expect(parseMembersArgs(['remove', '4294967295', '--token', 'a.b'], {}).req).toMatchObject({ path: '/v1/members/4294967295', token: 'a.b' });
  });

  test('a reference that is neither a raft id nor an endpoint id, and other bad usage, is a UsageError with a stable code', () => {
    const bad: [string[], string][] = [
      [['remove'], 'InvalidFlag'],
      [['remove', '0'], 'InvalidFlag'],
      [['remove', '04'], 'InvalidFlag'],
      [['remove', '-4'], 'InvalidFlag'],
      [['remove', '4.0'], 'InvalidFlag'],
      [['remove', '12345678901'], 'InvalidFlag'],
      [['remove', 'C'.repeat(64)], 'InvalidFlag'],
      [['remove', 'c'.repeat(63)], 'InvalidFlag'],
      [['remove', 'c'.repeat(65)], 'InvalidFlag'],
      [['remove', `${'c'.repeat(63)}g`], 'InvalidFlag'],
      [['remove', '../4'], 'InvalidFlag'],
      [['remove', '4', '5'], 'InvalidFlag'],
      [['drop', '4'], 'InvalidFlag'],
      [['remove', '4', '--force'], 'UnknownFlag'],
    ];
    for (const [argv, code] of bad) {
      let err: unknown;
      try {
        parseMembersArgs(argv, {});
      } catch (e) {
        err = e;
      }
      expect(err, argv.join(' ')).toBeInstanceOf(UsageError);
      expect((err as UsageError).code, argv.join(' ')).toBe(code);
    }
  });

  test('the table names each member with its state, then the moves under way', () => {
    const t = membersTable({
      members: [
        { node: 1, id: 'a'.repeat(64), state: 'up', addrs: ['127.0.0.1:1'] },
        { node: 4, id: ID, state: 'removed', addrs: [] },
      ],
      moves: [{ shard: 2, voters: [1, 4], learners: [3], target: [1, 3] }],
    });
    expect(t.split('\n')).toEqual([
      `NODE  STATE    ENDPOINT${' '.repeat(58)}ADDRESSES`,
      `1     up       ${'a'.repeat(64)}  127.0.0.1:1`,
      `4     removed  ${ID}`,
      '1 shards moving:',
      '  shard 2: voters 1,4 learners 3 -> 1,3',
    ]);
  });
});

describe('meta.json: a removal learned from the members', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const meta: ClusterMeta = {
    cluster: '0011223344556677',
    shards: 1,
    replicas: 2,
    nextNode: 3,
    members: [
      { node: 1, id: 'a'.repeat(64), addrs: [], state: 'up' },
      { node: 2, id: ID, addrs: ['127.0.0.1:5'], state: 'up' },
    ],
    placement: [
      [1, 2],
      [1, 2],
    ],
  };

  test('marks only that raft id removed, keeps the version; leaves a directory without the file, or with it removed already, as it is', () => {
    const dir = mkdtempSync(join(tmpdir(), 'iroh-raft-meta-'));
    dirs.push(dir);
    recordRemoved(dir, 2);
    expect(readMetaFile(dir)).toEqual({});
    writeMetaFile(dir, 7, meta);
    recordRemoved(dir, 2);
    const got = readMetaFile(dir).stored!;
    expect(got.version).toBe(7);
    expect(got.meta.members.map((m) => `${m.node}:${m.state}`)).toEqual(['1:up', '2:removed']);
    const text = readFileSync(join(dir, 'meta.json'), 'utf8');
    recordRemoved(dir, 2);
    recordRemoved(dir, 9);
    expect(readFileSync(join(dir, 'meta.json'), 'utf8')).toBe(text);
  });
});
