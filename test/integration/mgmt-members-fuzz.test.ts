/**
 * The membership ops of `iroh-raft-mgmt/0` under a seeded fuzz, on three real node processes with
 * auth off, so joins are open: any endpoint may ask to join, as itself. From a stranger (a fresh
 * key) and from a member (node 3's own `node.key`, spoken while node 3 is down, so only the fuzz
 * speaks for that id): garbage, truncated and oversize frames, wrong shapes, requests with random
 * and plausible args (`members.join`, with forged invites too, `members.rejoin`, `members.remove`
 * and `members.invite` among the other ops), and replays of earlier frames, among them replays
 * of an accepted join.
 *
 * After every frame, the meta record as node 1 reads it (members and version, `GET /v1/status`
 * `cluster`): the answer is ok or a known service error code, never Internal; a refused request
 * leaves the record as it was; no entry of another endpoint ever changes; an answer is ok only
 * for a join or for `members.self` (auth off opens nothing else to a caller with no role), the
 * latter telling only what the record says of the caller and changing nothing; a join admits the
 * connection's own endpoint and no other, once: the first one adds it (one member more, the
 * version one up), every later one, replays included, answers the same raft id and changes
 * nothing. The admitted fuzz endpoint never shows up: targets name it, but no shard gets a replica
 * on it, not even a learner (a new member counts as up for a liveness timeout; a shard's leader
 * adds a learner only on a peer heard from, src/main/cluster-life.ts). Afterwards the nodes still
 * serve, every shard keeps the voters it had, and no node logged a management bug.
 *
 * What the fuzz names, so a run cannot break the cluster it tests (test/support/mgmt-fuzz.ts):
 * `members.remove` only the caller or refs that name nobody (refused here anyway: auth off opens
 * joins only, and removing needs an operator or admin role), and `members.rejoin` only raft ids
 * the caller never had (a member may rejoin as itself: with node 3's own raft id that would
 * declare node 3 dead).
 */
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { isServiceErrorCode } from '../../src/api/index.js';
import { MgmtClient } from '../../src/io/mgmt/index.js';
import { decodeTicket } from '../../src/io/ticket.js';
import { MgmtFuzz } from '../support/mgmt-fuzz.js';
import { TestCluster, eventually, sleep, statusWithMeta } from './cluster.js';

const POLL_MS = 50;
/**
 * Long enough for a change to reach node 1's meta replica (a raft commit, milliseconds) and two of
 * its watch rounds. A change that shows later still fails the run: every case compares the record
 * with the one expected, so it is only told against a later case.
 */
const SETTLE_MS = 3 * POLL_MS;
const SEED = Number(process.env.FUZZ_SEED ?? 20261207);
const CASES = 300;

// No member is declared dead during the run (node 3 is down for a while, the fuzz's endpoint for good).
const c = new TestCluster({ nodes: 3, shards: 2, extra: ['--meta-poll-ms', String(POLL_MS), '--dead-node-timeout-ms', '600000'] });
beforeAll(() => c.start(), 90_000);
afterAll(() => c.close());

interface Member {
  node: number;
  id: string;
  state: string;
  addrs: string[];
}
interface Rec {
  version: number;
  members: Member[];
}

/** The meta record as node 1 last read it. */
async function record(): Promise<Rec> {
  const s = (await (await fetch(`${c.node(1).url}/v1/status`)).json()) as { cluster: Rec | null };
  expect(s.cluster?.version).toEqual(expect.any(Number));
  return { version: s.cluster!.version, members: s.cluster!.members };
}

/** The record once a change made before now had time to show. */
async function settled(): Promise<Rec> {
  await sleep(SETTLE_MS);
  return record();
}

/** Kinds refused at the frame, before any op runs: their check need not wait for a change to show. */
const FRAME_ONLY: readonly string[] = ['garbage', 'truncated', 'oversize'];

/** Every shard's voters (meta group included) as node 1, which hosts them all, applied them. */
async function voters(): Promise<string> {
  const s = await statusWithMeta<{ shards: { shard: number; voters: number[] }[] }>(c.node(1).url);
  return JSON.stringify(s.shards.map((x) => [x.shard, [...x.voters].sort((a, b) => a - b)]).sort((a, b) => Number(a[0]) - Number(b[0])));
}

/** Shards (meta group included) where `node` is a voter or a learner, as nodes 1 to 3 see them. */
async function replicasOn(node: number): Promise<string[]> {
  const out: string[] = [];
  for (const n of [1, 2, 3]) {
    if (c.node(n).proc === undefined) continue;
    const s = await statusWithMeta<{ shards: { shard: number; voters: number[]; learners: number[] }[] }>(c.node(n).url);
    for (const x of s.shards) if ([...x.voters, ...x.learners].includes(node)) out.push(`node ${n} shard ${x.shard}: ${JSON.stringify(x)}`);
  }
  return out;
}

const healthy = async (ns: number[]): Promise<boolean> => (await Promise.all(ns.map((n) => fetch(`${c.node(n).url}/healthz`)))).every((r) => r.status === 200);

interface Run {
  /** Answers by code, and by `op:code` for the membership ops. */
  readonly seen: Record<string, number>;
  /** Replays of a join frame answered ok before, answered ok again. */
  readonly joinReplays: number;
}

/** Sends CASES fuzz frames to node 1 as the endpoint of `secretKey` and checks each answer against the record. */
async function fuzzAs(who: string, secretKey: Uint8Array, seed: number): Promise<Run> {
  const node = decodeTicket(c.node(1).ticket);
  let m = await MgmtClient.connect({ secretKey, node });
  const self = m.id;
  const fuzz = new MgmtFuzz(seed, 64 * 1024, { self });
  let expected = await settled();
  const others = expected.members.filter((x) => x.id !== self);
  let admittedAs = expected.members.find((x) => x.id === self)?.node;
  const acceptedJoins = new Set<string>();
  const seen: Record<string, number> = {};
  let joinReplays = 0;
  try {
    for (let i = 0; i < CASES; i++) {
      // Now and then a fresh connection, as a reconnecting caller would make.
      if (i > 0 && i % 50 === 0) {
        await m.close();
        m = await MgmtClient.connect({ secretKey, node });
      }
      const k = fuzz.next();
      const what = `${who}, seed ${seed}, case ${i} (${k.kind} ${k.op ?? ''}): ${k.bytes.subarray(0, 60).toString('hex')}`;
      const reply = await m.exchange(k.bytes, 15_000);
      const code = reply.ok ? 'ok' : reply.error.code;
      seen[code] = (seen[code] ?? 0) + 1;
      if (k.op?.startsWith('members.') === true) seen[`${k.op}:${code}`] = (seen[`${k.op}:${code}`] ?? 0) + 1;
      expect(code === 'ok' || isServiceErrorCode(code), what).toBe(true);
      expect(code, what).not.toBe('Internal');
      const now = FRAME_ONLY.includes(k.kind) ? await record() : await settled();
      expect(
        now.members.filter((x) => x.id !== self),
        what,
      ).toEqual(others);
      if (!reply.ok) {
        expect(now, what).toEqual(expected);
        continue;
      }
      // Auth off opens joins to a caller with no role, and members.self, which tells it what the
      // record says of its own endpoint and changes nothing; nothing else.
      expect(['members.join', 'members.self'], what).toContain(k.op);
      if (k.op === 'members.self') {
        expect(reply.result, what).toEqual({ entries: now.members.filter((x) => x.id === self).map((x) => ({ node: x.node, state: x.state })) });
        expect(now, what).toEqual(expected);
        continue;
      }
      const r = reply.result as { node: number; version: number; meta: { members: Member[] } };
      expect(
        r.meta.members.filter((x) => x.id === self).map((x) => x.node),
        what,
      ).toEqual([r.node]);
      expect(
        r.meta.members.filter((x) => x.id !== self),
        what,
      ).toEqual(others);
      expect(
        now.members.filter((x) => x.id === self).map((x) => x.node),
        what,
      ).toEqual([r.node]);
      if (admittedAs === undefined) {
        admittedAs = r.node;
        expect(now.members.length, what).toBe(expected.members.length + 1);
        expect(now.version, what).toBe(expected.version + 1);
      } else {
        // A retried or replayed join: the same admission, nothing written.
        expect(r.node, what).toBe(admittedAs);
        expect(now, what).toEqual(expected);
      }
      const hex = k.bytes.toString('hex');
      if (k.kind === 'replay' && acceptedJoins.has(hex)) joinReplays++;
      acceptedJoins.add(hex);
      expected = now;
    }
  } finally {
    await m.close();
  }
  console.log(`mgmt members fuzz from ${who}, seed ${seed}: ${JSON.stringify(seen)}, join replays ${joinReplays}`);
  expect(c.node(1).proc?.exitCode).toBeNull();
  expect((await fetch(`${c.node(1).url}/healthz`)).status).toBe(200);
  return { seen, joinReplays };
}

test('membership ops fuzzed from a stranger and from a member: refused ones change nothing, a join admits only the caller and only once', async () => {
  await eventually(async () => (await healthy([1, 2, 3])) && (await record()).members.length === 3, 60_000, 'three members, every shard led');
  await eventually(async () => (JSON.parse(await voters()) as [number, number[]][]).every(([, v]) => v.length === 3), 60_000, 'three voters per shard');
  // The founders replan a few times in their first second: start once the record is quiet.
  await eventually(
    async () => {
      const v = (await record()).version;
      await sleep(1_000);
      return (await record()).version === v;
    },
    30_000,
    'the meta record is quiet',
  );
  const before = await voters();
  const founders = (await record()).members;

  const stranger = await fuzzAs('a stranger', new Uint8Array(randomBytes(32)), SEED);
  for (const code of [
    'ok',
    'Forbidden',
    'BadRequest',
    'PayloadTooLarge',
    'members.join:ok',
    'members.remove:Forbidden',
    'members.invite:Forbidden',
    'members.self:ok',
  ])
    expect(stranger.seen[code] ?? 0, `stranger ${code}`).toBeGreaterThan(0);
  expect(stranger.joinReplays, 'replays of an accepted join').toBeGreaterThan(0);
  const ghost = (await record()).members.filter((x) => !founders.some((f) => f.id === x.id));
  // The fuzz's endpoint, admitted but never heard from, stays joining: no target names it, and it
  // is never given a replica.
  expect(ghost.map((x) => x.state)).toEqual(['joining']);
  expect(await replicasOn(ghost[0]!.node)).toEqual([]);

  // Node 3's key, spoken while node 3 is down, so only the fuzz speaks for that id.
  expect(await c.stop(3)).toBe(0);
  const key3 = new Uint8Array(Buffer.from(readFileSync(join(c.node(3).data, 'node.key'), 'utf8').split('\n')[0]!, 'hex'));
  const member = await fuzzAs('a member', key3, SEED + 1);
  for (const code of [
    'ok',
    'Forbidden',
    'BadRequest',
    'PayloadTooLarge',
    'NotFound',
    'members.join:ok',
    'members.remove:Forbidden',
    'members.invite:Forbidden',
    'members.self:ok',
  ])
    expect(member.seen[code] ?? 0, `member ${code}`).toBeGreaterThan(0);
  // A member may call members.rejoin: its requests got past the role check, to the args and the record.
  expect((member.seen['members.rejoin:BadRequest'] ?? 0) + (member.seen['members.rejoin:NotFound'] ?? 0)).toBeGreaterThan(0);
  expect(member.seen['members.rejoin:Forbidden'] ?? 0).toBe(0);

  // Node 3 comes back as itself; the cluster serves; no shard lost or gained a voter.
  await c.startNode(3);
  await eventually(() => healthy([1, 2, 3]), 30_000, 'healthy after the fuzz');
  const put = await fetch(`${c.node(2).url}/v1/kv/after-fuzz`, { method: 'PUT', body: 'still here' });
  expect(put.status).toBe(200);
  const got = await fetch(`${c.node(3).url}/v1/kv/after-fuzz`);
  expect([got.status, await got.text()]).toEqual([200, 'still here']);
  expect(await voters()).toBe(before);
  expect(await replicasOn(ghost[0]!.node)).toEqual([]);
  const listed = (await (await fetch(`${c.node(1).url}/v1/members`)).json()) as { members: Member[] };
  expect(listed.members.map((x) => [x.node, x.id, x.state])).toEqual([...founders, ...ghost].map((x) => [x.node, x.id, x.state]));
  for (const n of [1, 2, 3]) {
    expect(c.node(n).proc?.exitCode, `node ${n}`).toBeNull();
    expect(c.node(n).output, `node ${n}`).not.toContain('management request failed');
  }
}, 400_000);
