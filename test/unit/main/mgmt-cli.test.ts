/**
 * The command lines of management: `roles` (HTTP admin API), `mgmt` (over Iroh) and `key new`,
 * parsed into their requests or refused with stable codes, and the node's management bounds as
 * settings (`--mgmt-connections-max`, `--mgmt-request-timeout-ms`).
 */
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test, vi } from 'vitest';
import { encodeTicket } from '../../../src/io/ticket.js';
import { UsageError } from '../../../src/main/cli-flags.js';
import { loadConfig } from '../../../src/main/config.js';
import { endpointIdOf, keyCommand, parseMgmtArgs } from '../../../src/main/mgmt-cli.js';
import { parseRolesArgs } from '../../../src/main/roles-cli.js';

const ID = 'c'.repeat(64);
const TOKEN = ['--token', '_admin.x'];

describe('iroh-raft roles', () => {
  test('grant, revoke, get and list become their /v1/roles requests', () => {
    expect(parseRolesArgs(['grant', ID, 'operator', ...TOKEN], {})).toEqual({
      method: 'PUT',
      path: `/v1/roles/${ID}`,
      body: { role: 'operator' },
      via: 'http://127.0.0.1:7070',
      token: '_admin.x',
    });
    expect(parseRolesArgs(['revoke', ID, '--via', 'http://127.0.0.1:9/x', ...TOKEN], {})).toMatchObject({ method: 'DELETE', via: 'http://127.0.0.1:9' });
    expect(parseRolesArgs(['get', ID], { IROH_RAFT_TOKEN: 't.k' })).toMatchObject({ method: 'GET', path: `/v1/roles/${ID}`, token: 't.k' });
    expect(parseRolesArgs(['list', ...TOKEN], {})).toMatchObject({ method: 'GET', path: '/v1/roles' });
  });

  test('bad usage is a UsageError with a stable code', () => {
    const bad: [string[], string][] = [
      [['grant', ID, 'root', ...TOKEN], 'InvalidFlag'],
      [['grant', 'ABC', 'admin', ...TOKEN], 'InvalidFlag'],
      [['grant', ID, ...TOKEN], 'InvalidFlag'],
      [['revoke', ...TOKEN], 'InvalidFlag'],
      [['list', 'extra', ...TOKEN], 'InvalidFlag'],
      [['frob', ...TOKEN], 'InvalidFlag'],
      [['list'], 'InvalidFlag'],
      [['list', '--bogus', '1', ...TOKEN], 'UnknownFlag'],
      [['list', '--via', 'ftp://x', ...TOKEN], 'InvalidFlag'],
    ];
    for (const [argv, code] of bad) {
      expect(() => parseRolesArgs(argv, {}), argv.join(' ')).toThrow(UsageError);
      try {
        parseRolesArgs(argv, {});
      } catch (e) {
        expect((e as UsageError).code).toBe(code);
      }
    }
  });
});

describe('iroh-raft mgmt and key new', () => {
  const ticket = encodeTicket({ id: ID, addrs: ['127.0.0.1:7071'] });

  test('mgmt: op, JSON args, ticket and key; bad ones refused', () => {
    expect(parseMgmtArgs(['tenants.create', '{"name":"acme"}', '--ticket', ticket, '--key', 'k'])).toEqual({
      op: 'tenants.create',
      args: { name: 'acme' },
      node: { id: ID, addrs: ['127.0.0.1:7071'] },
      keyPath: 'k',
      timeoutMs: 15_000,
    });
    for (const argv of [
      ['status', '--ticket', ticket],
      ['status', '--key', 'k'],
      ['--ticket', ticket, '--key', 'k'],
      ['status', '{not json', '--ticket', ticket, '--key', 'k'],
      ['status', '--ticket', 'irohraft1AAAA', '--key', 'k'],
      ['status', '--ticket', ticket, '--key', 'k', '--timeout-ms', '0'],
      ['status', '{}', 'extra', '--ticket', ticket, '--key', 'k'],
    ]) {
      expect(() => parseMgmtArgs(argv), argv.join(' ')).toThrow(UsageError);
    }
  });

  test('key new writes a 0600 key file once and prints its endpoint id', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iroh-raft-key-'));
    const file = join(dir, 'me.key');
    const out = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      expect(await keyCommand(['new', '--out', file])).toBe(0);
      const hex = readFileSync(file, 'utf8').trim();
      expect(hex).toMatch(/^[0-9a-f]{64}$/);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(out).toHaveBeenCalledWith(endpointIdOf(new Uint8Array(Buffer.from(hex, 'hex'))));
      expect(await keyCommand(['new', '--out', file])).toBe(1);
      expect(readFileSync(file, 'utf8').trim()).toBe(hex);
      expect(await keyCommand(['new'])).toBe(2);
      expect(await keyCommand(['old', '--out', file])).toBe(2);
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  });
});

describe('management bounds as settings', () => {
  test('defaults, flags, and out-of-range values refused with InvalidConfig naming the flag', () => {
    expect(loadConfig([], {})).toMatchObject({ mgmtConnectionsMax: 64, mgmtRequestTimeoutMs: 10_000 });
    expect(loadConfig(['--mgmt-connections-max', '8', '--mgmt-request-timeout-ms', '500'], {})).toMatchObject({
      mgmtConnectionsMax: 8,
      mgmtRequestTimeoutMs: 500,
    });
    for (const [flag, v] of [
      ['--mgmt-connections-max', '0'],
      ['--mgmt-connections-max', 'lots'],
      ['--mgmt-request-timeout-ms', '50'],
      ['--mgmt-request-timeout-ms', '2.5'],
    ] as const) {
      expect(() => loadConfig([flag, v], {})).toThrow(expect.objectContaining({ code: 'InvalidConfig', message: expect.stringContaining(flag) as unknown }));
    }
  });
});
