/**
 * Joining a cluster that runs with auth on (real node processes, real Iroh on 127.0.0.1): a
 * stranger's `--join <ticket>` is refused; `iroh-raft members invite` (admin token) prints a join
 * string with which one new node joins, and its shards and the meta group gain it as a voter; the
 * same string a second time is refused, as are a forged secret and an invite request without the
 * token. Nothing refused changes the members.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { CLI, TestCluster, eventually, freePort, statusWithMeta } from './cluster.js';

const SHARDS = 2;
const c = new TestCluster({ nodes: 1, shards: SHARDS, tickMs: 50, extra: ['--auth', 'on', '--meta-poll-ms', '300'] });
beforeAll(() => c.start(), 60_000);
afterAll(() => c.close());

const tokenFile = (): string => join(c.node(1).data, 'admin.token');
const token = (): string => readFileSync(tokenFile(), 'utf8').trim();

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 90_000 });
  return { status: r.status, stdout: r.stdout.trim(), stderr: r.stderr.trim() };
}

/** The members node 1 lists, as `node:state` strings. */
async function members(): Promise<string[]> {
  const r = await fetch(`${c.node(1).url}/v1/members`, { headers: { authorization: `Bearer ${token()}` } });
  expect(r.status).toBe(200);
  const a = (await r.json()) as { members: { node: number; state: string }[] };
  return a.members.map((m) => `${m.node}:${m.state}`);
}

/** Starts a node on a fresh directory with `--join by`, which must be refused: its exit code and stderr. */
async function refusedJoin(name: string, by: string): Promise<{ status: number | null; stderr: string }> {
  const data = join(c.root, name);
  mkdirSync(data, { recursive: true });
  const r = cli(
    'start',
    '--data',
    data,
    '--http',
    `127.0.0.1:${await freePort()}`,
    '--listen',
    `127.0.0.1:${await freePort()}`,
    '--auth',
    'on',
    '--join',
    by,
    '--log-level',
    'warn',
  );
  return { status: r.status, stderr: r.stderr };
}

test('a stranger with the ticket alone is refused: JoinFailed, Forbidden; nothing changes', async () => {
  // Once node 1 has read the meta record, its members carry their state.
  await eventually(async () => (await members().catch(() => [])).join() === '1:up', 60_000, 'node 1 up in its meta record');
  const before = await members();
  const r = await refusedJoin('stranger', c.node(1).ticket);
  expect(r.status, r.stderr).toBe(2);
  expect(r.stderr).toContain('JoinFailed');
  expect(r.stderr).toContain('Forbidden');
  expect(await members()).toEqual(before);
}, 120_000);

test('members invite: the join string admits one node, which becomes a voter of every shard; used again or forged, it is refused', async () => {
  // Without the admin token: 401, and no invite.
  const anon = cli('members', 'invite', '--via', c.node(1).url);
  expect(anon.status).toBe(1);
  expect(anon.stderr).toContain('Unauthorized');
  const bad = cli('members', 'invite', '--ttl-ms', '5', '--via', c.node(1).url, '--token-file', tokenFile());
  expect(bad.status).toBe(2);
  expect(bad.stderr).toContain('InvalidFlag');

  const inv = cli('members', 'invite', '--ttl-ms', '600000', '--via', c.node(1).url, '--token-file', tokenFile());
  expect(inv.status, inv.stderr).toBe(0);
  const joinString = inv.stdout;
  expect(joinString.startsWith(`${c.node(1).ticket}.`)).toBe(true);
  expect(inv.stderr).toMatch(/valid once, until \d{4}-\d\d-\d\dT/);
  // A forged secret in the same shape: refused.
  const forged = `${c.node(1).ticket}.${'A'.repeat(43)}`;
  const f = await refusedJoin('forged', forged);
  expect(f.status, f.stderr).toBe(2);
  expect(f.stderr).toContain('Forbidden');

  const n = await c.join(1, joinString);
  expect(n).toBe(2);
  await eventually(
    async () => {
      const st = await statusWithMeta<{ shards: { voters: number[]; learners: number[] }[] }>(c.node(1).url, token());
      return st.shards.length === SHARDS + 1 && st.shards.every((s) => [...s.voters].sort().join() === '1,2' && s.learners.length === 0);
    },
    90_000,
    'voters 1, 2 on every shard and the meta group',
  );
  expect(await members()).toEqual(['1:up', '2:up']);

  // The spent string, from another new node: refused, members unchanged.
  const again = await refusedJoin('again', joinString);
  expect(again.status, again.stderr).toBe(2);
  expect(again.stderr).toContain('Forbidden');
  expect(await members()).toEqual(['1:up', '2:up']);
}, 240_000);
