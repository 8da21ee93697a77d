/**
 * Management over Iroh on real node processes (two nodes, `--auth on`, Iroh on 127.0.0.1): keys
 * made by `iroh-raft key new`, roles granted and revoked through the HTTP admin API (and the
 * `roles` command), requests sent with `iroh-raft mgmt` and with the client library. A stranger
 * gets Forbidden and changes nothing; a reader gets status only; an operator lists tenants; an
 * admin creates a tenant whose token then works over HTTP; a revoke made on node 1 stops the
 * endpoint on node 2 within the role cache's lifetime. Then a seeded fuzz of frames from a
 * stranger and from an admin: no crash, no Internal error, no change from a refused request, and
 * the node keeps serving.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isServiceErrorCode } from '../../src/api/index.js';
import { MgmtClient } from '../../src/io/mgmt/index.js';
import type { MgmtReply } from '../../src/io/mgmt/index.js';
import { decodeTicket } from '../../src/io/ticket.js';
import { MgmtFuzz } from '../support/mgmt-fuzz.js';
import { CLI, TestCluster, eventually } from './cluster.js';

const c = new TestCluster({ nodes: 2, shards: 2, extra: ['--auth', 'on'] });
beforeAll(() => c.start(), 60_000);
afterAll(() => c.close());

const adminTokenFile = (n: number): string => join(c.node(n).data, 'admin.token');
const adminToken = (n: number): string => readFileSync(adminTokenFile(n), 'utf8').trim();

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout.trim(), stderr: r.stderr.trim() };
}

/** A new key file by `iroh-raft key new`, and its endpoint id. */
function newKey(name: string): { file: string; id: string } {
  const file = join(c.root, `${name}.key`);
  const r = cli('key', 'new', '--out', file);
  expect(r.status, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/^[0-9a-f]{64}$/);
  expect(statSync(file).mode & 0o777).toBe(0o600);
  return { file, id: r.stdout };
}

/** `iroh-raft mgmt <op> [args]` against node `n` as `key`: exit code and the parsed output. */
function mgmt(key: string, op: string, args?: unknown, n = 1): { status: number | null; out: unknown; code: string | undefined } {
  const r = cli('mgmt', op, ...(args === undefined ? [] : [JSON.stringify(args)]), '--ticket', c.node(n).ticket, '--key', key);
  const err = r.stderr === '' ? undefined : (JSON.parse(r.stderr.split('\n').at(-1)!) as { error: { code: string } });
  return { status: r.status, out: r.stdout === '' ? undefined : JSON.parse(r.stdout), code: err?.error.code };
}

async function http(path: string, o: { method?: string; token?: string; body?: unknown; n?: number } = {}): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${c.node(o.n ?? 1).url}${path}`, {
    method: o.method ?? 'GET',
    headers: o.token === undefined ? {} : { authorization: `Bearer ${o.token}` },
    ...(o.body === undefined ? {} : { body: typeof o.body === 'string' ? o.body : JSON.stringify(o.body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text === '' ? undefined : JSON.parse(text) };
}

/** The tenants and roles as the admin API lists them (the state a refused request must not change). */
async function state(): Promise<string> {
  const t = await http('/v1/tenants', { token: adminToken(1) });
  const r = await http('/v1/roles', { token: adminToken(1) });
  expect([t.status, r.status]).toEqual([200, 200]);
  return JSON.stringify([t.json, r.json]);
}

async function clientOf(keyFile: string, n = 1): Promise<MgmtClient> {
  const secretKey = new Uint8Array(Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'hex'));
  return MgmtClient.connect({ secretKey, node: decodeTicket(c.node(n).ticket) });
}

let stranger: { file: string; id: string };
let reader: { file: string; id: string };
let operator: { file: string; id: string };
let admin: { file: string; id: string };

describe('roles over iroh-raft-mgmt/0 (--auth on)', () => {
  test('a stranger gets Forbidden for status and tenants.create, and nothing changes', async () => {
    stranger = newKey('stranger');
    reader = newKey('reader');
    operator = newKey('operator');
    admin = newKey('admin');
    const before = await state();
    expect(mgmt(stranger.file, 'status')).toMatchObject({ status: 1, code: 'Forbidden' });
    expect(mgmt(stranger.file, 'tenants.create', { name: 'acme' })).toMatchObject({ status: 1, code: 'Forbidden' });
    expect(await state()).toBe(before);
    const metrics = await (await fetch(`${c.node(1).url}/metrics`, { headers: { authorization: `Bearer ${adminToken(1)}` } })).text();
    expect(metrics).toMatch(/^iroh_raft_mgmt_errors_total\{code="Forbidden"\} 2$/m);
    expect(metrics).toMatch(/^iroh_raft_mgmt_requests_total 2$/m);
  });

  test('granted reader over HTTP (roles grant): status, but still Forbidden for tenants.create', async () => {
    const g = cli('roles', 'grant', reader.id, 'reader', '--via', c.node(1).url, '--token-file', adminTokenFile(1));
    expect(g.status, g.stderr).toBe(0);
    expect(JSON.parse(g.stdout)).toMatchObject({ endpointId: reader.id, role: 'reader' });
    const s = mgmt(reader.file, 'status');
    expect(s.status).toBe(0);
    expect(s.out).toMatchObject({ node: expect.any(Number) as number });
    // Node 2 reads the replicated binding too.
    await eventually(
      async () => await clientOf(reader.file, 2).then(async (m) => ((await m.call('status')).ok ? (await m.close(), true) : (await m.close(), false))),
      5_000,
      'reader on node 2',
    );
    expect(mgmt(reader.file, 'tenants.create', { name: 'acme' })).toMatchObject({ status: 1, code: 'Forbidden' });
    expect(mgmt(reader.file, 'tenants.list')).toMatchObject({ status: 1, code: 'Forbidden' });
  });

  test('an operator lists tenants; an admin creates one and its token works over HTTP', async () => {
    expect((await http(`/v1/roles/${operator.id}`, { method: 'PUT', token: adminToken(1), body: { role: 'operator' } })).status).toBe(200);
    expect((await http(`/v1/roles/${admin.id}`, { method: 'PUT', token: adminToken(2), body: { role: 'admin' }, n: 2 })).status).toBe(200);
    expect(mgmt(operator.file, 'tenants.list')).toMatchObject({ status: 0, out: { tenants: [] } });
    expect(mgmt(operator.file, 'tenants.create', { name: 'acme' })).toMatchObject({ status: 1, code: 'Forbidden' });
    const made = mgmt(admin.file, 'tenants.create', { name: 'acme', quota: { keysMax: 100 } });
    expect(made.status).toBe(0);
    const token = (made.out as { token: string }).token;
    expect(token).toMatch(/^acme\./);
    expect(mgmt(operator.file, 'tenants.list')).toMatchObject({ status: 0, out: { tenants: [{ name: 'acme', quota: { keysMax: 100 } }] } });
    expect(mgmt(operator.file, 'tenants.setQuota', { name: 'acme', quota: { keysMax: 200 } })).toMatchObject({ status: 0, out: { quota: { keysMax: 200 } } });
    const put = await fetch(`${c.node(2).url}/v1/kv/k1`, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body: 'v1' });
    expect(put.status).toBe(200);
    const got = await fetch(`${c.node(1).url}/v1/kv/k1`, { headers: { authorization: `Bearer ${token}` } });
    expect([got.status, await got.text()]).toEqual([200, 'v1']);
    const roles = cli('roles', 'list', '--via', c.node(1).url, '--token', adminToken(1));
    expect(roles.status).toBe(0);
    expect((JSON.parse(roles.stdout) as { roles: { endpointId: string; role: string }[] }).roles.map((r) => [r.endpointId, r.role]).sort()).toEqual(
      [
        [reader.id, 'reader'],
        [operator.id, 'operator'],
        [admin.id, 'admin'],
      ].sort(),
    );
  });

  test('a revoke made on node 1 stops the endpoint on node 2 within the role cache lifetime', async () => {
    const m = await clientOf(reader.file, 2);
    try {
      expect((await m.call('status')).ok).toBe(true);
      const r = cli('roles', 'revoke', reader.id, '--via', c.node(1).url, '--token-file', adminTokenFile(1));
      expect(r.status, r.stderr).toBe(0);
      const revokedAt = Date.now();
      let last: MgmtReply | undefined;
      await eventually(async () => {
        last = await m.call('status');
        return !last.ok && last.error.code === 'Forbidden';
      }, 5_000);
      // The cache lives 1 s from its read; a read and a poll step on top.
      expect(Date.now() - revokedAt).toBeLessThan(2_500);
      expect(cli('roles', 'revoke', reader.id, '--via', c.node(1).url, '--token-file', adminTokenFile(1))).toMatchObject({ status: 1 });
    } finally {
      await m.close();
    }
  });

  test('the role admin API refuses bad input with stable codes, and tenants and strangers entirely', async () => {
    const a = adminToken(1);
    const cases: [string, string, unknown, string | undefined, number, string][] = [
      ['PUT', `/v1/roles/${stranger.id}`, { role: 'root' }, a, 400, 'BadRequest'],
      ['PUT', `/v1/roles/${stranger.id}`, 'not json', a, 400, 'BadRequest'],
      ['PUT', `/v1/roles/${stranger.id}`, { role: 'admin', x: 1 }, a, 400, 'BadRequest'],
      ['PUT', `/v1/roles/${stranger.id}`, { role: 'x'.repeat(2000) }, a, 413, 'PayloadTooLarge'],
      ['PUT', '/v1/roles/ABC', { role: 'admin' }, a, 400, 'BadRequest'],
      ['GET', `/v1/roles/${stranger.id}`, undefined, a, 404, 'RoleNotFound'],
      ['DELETE', `/v1/roles/${stranger.id}`, undefined, a, 404, 'RoleNotFound'],
      ['POST', '/v1/roles', undefined, a, 405, 'MethodNotAllowed'],
      ['PUT', `/v1/roles/${stranger.id}`, { role: 'admin' }, undefined, 401, 'Unauthorized'],
    ];
    const before = await state();
    for (const [method, path, body, token, status, code] of cases) {
      const r = await http(path, { method, ...(token === undefined ? {} : { token }), body });
      expect([r.status, (r.json as { error?: { code?: string } }).error?.code], `${method} ${path}`).toEqual([status, code]);
    }
    const made = mgmt(admin.file, 'tenants.create', { name: 'beta' });
    const tenantToken = (made.out as { token: string }).token;
    const asTenant = await http(`/v1/roles/${stranger.id}`, { method: 'PUT', token: tenantToken, body: { role: 'admin' } });
    expect([asTenant.status, (asTenant.json as { error: { code: string } }).error.code]).toEqual([403, 'Forbidden']);
    expect(mgmt(admin.file, 'tenants.delete', { name: 'beta' })).toMatchObject({ status: 0 });
    expect(await state()).toBe(before);
  });
});

describe('a seeded fuzz of frames on iroh-raft-mgmt/0', () => {
  const SEED = 20261206;
  const CASES = 300;

  for (const who of ['stranger', 'admin'] as const) {
    test(`from ${who === 'stranger' ? 'a stranger' : 'an admin'}: every frame answered with a known code, never Internal; refused ones change nothing`, async () => {
      const key = newKey(`fuzz-${who}`);
      if (who === 'admin') expect((await http(`/v1/roles/${key.id}`, { method: 'PUT', token: adminToken(1), body: { role: 'admin' } })).status).toBe(200);
      const fuzz = new MgmtFuzz(SEED + (who === 'admin' ? 1 : 0), 64 * 1024, { self: key.id });
      let m = await clientOf(key.file);
      let expected = await state();
      const seen: Record<string, number> = {};
      try {
        for (let i = 0; i < CASES; i++) {
          const k = fuzz.next();
          const what = `seed ${SEED} case ${i} (${k.kind}): ${k.bytes.subarray(0, 60).toString('hex')}`;
          const reply = await m.exchange(k.bytes, 15_000);
          const code = reply.ok ? 'ok' : reply.error.code;
          seen[code] = (seen[code] ?? 0) + 1;
          expect(code === 'ok' || isServiceErrorCode(code), what).toBe(true);
          expect(code, what).not.toBe('Internal');
          // A stranger may ask only what the cluster says of its own endpoint (members.self).
          if (who === 'stranger') expect(['Forbidden', 'BadRequest', 'PayloadTooLarge', ...(k.op === 'members.self' ? ['ok'] : [])], what).toContain(code);
          const now = await state();
          if (reply.ok) expected = now;
          else expect(now, what).toBe(expected);
          // Now and then a fresh connection, as a reconnecting caller would make.
          if (i % 50 === 49) {
            await m.close();
            m = await clientOf(key.file);
          }
        }
      } finally {
        await m.close();
      }
      // Each kind of answer was reached (the cases are not all refused at the first check).
      console.log(`mgmt fuzz from ${who}, seed ${SEED}: ${JSON.stringify(seen)}`);
      for (const code of who === 'stranger' ? ['Forbidden', 'BadRequest', 'PayloadTooLarge'] : ['ok', 'NotFound', 'BadRequest', 'PayloadTooLarge'])
        expect(seen[code] ?? 0, code).toBeGreaterThan(0);
      // The fuzz names no real node in members.remove or members.rejoin: both are members, up.
      const members = await http('/v1/members', { token: adminToken(1) });
      const real = [1, 2].map((n) => decodeTicket(c.node(n).ticket).id);
      expect((members.json as { members: { id: string; state: string }[] }).members.filter((x) => real.includes(x.id)).map((x) => x.state)).toEqual([
        'up',
        'up',
      ]);
      // The node keeps serving, over Iroh and HTTP, and logged no bug.
      const check = await clientOf(key.file);
      const after = await check.call('status');
      await check.close();
      expect(after.ok ? 'ok' : after.error.code).toBe(who === 'admin' ? 'ok' : 'Forbidden');
      expect((await fetch(`${c.node(1).url}/healthz`)).status).toBe(200);
      expect(c.node(1).proc?.exitCode).toBe(null);
      expect(c.node(1).output).not.toContain('management request failed');
    }, 180_000);
  }
});
