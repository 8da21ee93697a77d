/**
 * Discovery (`iroh-raft-discovery/0`) on three real node processes over real Iroh on 127.0.0.1.
 *
 * 1. Node 3 restarted on other HTTP and Iroh ports, with no new ticket given to anyone: nodes 1
 *    and 2 learn its new address from its own announcement (status shows it, source `discovery`),
 *    and it catches up by snapshot (the logs were compacted while it was down). This much would
 *    also work without discovery, as long as the connections node 3 opens itself stay up: Iroh
 *    answers on the path a peer dialed in from. The next case would not.
 * 2. Node 3 stopped, node 1 restarted on new ports while node 3 is down: node 1, given node 3's
 *    old ticket only, finds node 3's new address in its peers.json (source `stored`); node 3,
 *    restarted with node 1's old ticket only, learns node 1's new address from node 2's gossip,
 *    proved by dialing node 1. Nodes 1 and 3 then hear each other directly (liveness); without
 *    discovery neither would ever dial the other where it is.
 * 3. A seeded fuzz of discovery frames (garbage, truncated, oversize, broken, stale, conflicting,
 *    two on a stream, replays) from a stranger and from a member (its key, while that node is
 *    down): no crash, no change of anything node 1 knows (its own generation and addresses, every
 *    member's entry), the node keeps serving.
 */
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { decodeTicket } from '../../src/io/ticket.js';
import { DiscFuzz, DiscSpeaker } from '../support/disc-fuzz.js';
import { TestCluster, eventually, freePort } from './cluster.js';

const c = new TestCluster({
  nodes: 3,
  shards: 4,
  extra: ['--compact-every-entries', '200', '--compact-keep-entries', '20', '--discovery-interval-ms', '5000'],
});
beforeAll(() => c.start(), 90_000);
afterAll(() => c.close());

interface MemberAddrs {
  id: string;
  addrs: string[];
  source: 'ticket' | 'stored' | 'discovery';
  generation: number;
}
interface Status {
  node: number;
  shards: { shard: number; applied: number; leader: number; firstIndex: number }[];
  discovery: {
    generation: number;
    addrs: string[];
    members: MemberAddrs[];
    counters: { strangers: number; badFrames: number; stale: number; conflicts: number; hintsProbed: number };
  };
  liveness: { peers: { node: number; up: boolean }[] };
}
const status = async (n: number): Promise<Status> => (await (await fetch(`${c.node(n).url}/v1/status`)).json()) as Status;
const idOf = (n: number): string => decodeTicket(c.node(n).ticket).id;
const known = async (n: number, of: number): Promise<MemberAddrs> => (await status(n)).discovery.members.find((m) => m.id === idOf(of))!;

async function put(n: number, key: string, value: string): Promise<boolean> {
  const res = await fetch(`${c.node(n).url}/v1/kv/${key}`, { method: 'PUT', body: value }).catch(() => undefined);
  return res?.status === 200;
}
const staleGet = async (n: number, key: string): Promise<string | undefined> => {
  const res = await fetch(`${c.node(n).url}/v1/kv/${key}?consistency=stale`);
  return res.status === 200 ? res.text() : undefined;
};
const healthy = async (ns: number[]): Promise<boolean> => (await Promise.all(ns.map((n) => fetch(`${c.node(n).url}/healthz`)))).every((r) => r.status === 200);

/** Node `n` gets new HTTP and Iroh ports; its ticket (which the others were started with) stays the old one. */
async function move(n: number): Promise<void> {
  const old = c.node(n);
  const httpPort = await freePort();
  c.nodes[n - 1] = { ...old, httpPort, listenPort: await freePort(), url: `http://127.0.0.1:${httpPort}` };
}

/** Every shard of node `n` has applied as far as node `ref`'s replica. */
async function caughtUp(n: number, ref: number): Promise<boolean> {
  const [mine, theirs] = await Promise.all([status(n), status(ref)]);
  return mine.shards.every((s) => s.applied >= theirs.shards.find((t) => t.shard === s.shard)!.applied);
}

test('a node restarted on other ports is found again without new tickets, and catches up by snapshot', async () => {
  await eventually(() => healthy([1, 2, 3]), 60_000, 'every shard has a leader');
  // At start every node announced itself: node 1 knows node 3 from node 3's own claim.
  await eventually(async () => (await known(1, 3)).source === 'discovery', 20_000, 'node 1 heard from node 3');
  expect((await known(1, 3)).addrs).toEqual([`127.0.0.1:${c.node(3).listenPort}`]);

  expect(await c.stop(3)).toBe(0);
  // Enough writes that every shard compacts its log past what node 3 has (about 300 a shard; the
  // placement hash is keyed per cluster, so the split differs from run to run): it needs snapshots.
  let written = 0;
  for (let i = 0; written < 1200; i++) if (await put(1 + (i % 2), `a${i}`, `v${i}`)) written++;
  expect(Math.min(...(await status(1)).shards.map((s) => s.firstIndex))).toBeGreaterThan(100);

  await move(3);
  await c.startNode(3);
  await eventually(async () => (await known(1, 3)).addrs[0] === `127.0.0.1:${c.node(3).listenPort}`, 20_000, "node 1 learns node 3's new address");
  expect(await known(1, 3)).toMatchObject({ source: 'discovery' });
  expect((await known(2, 3)).addrs[0]).toBe(`127.0.0.1:${c.node(3).listenPort}`);
  await eventually(() => healthy([1, 2, 3]), 30_000, 'healthy again');
  await eventually(() => caughtUp(3, 1), 60_000, 'node 3 catches up');
  const metrics = await (await fetch(`${c.node(3).url}/metrics`)).text();
  expect(metrics).toMatch(/iroh_raft_host_snapshots_installed_total\{[^}]*\} [1-9]/);
  // A write through node 1 reaches node 3's replica.
  expect(await put(1, 'after-move', 'here')).toBe(true);
  await eventually(async () => (await staleGet(3, 'after-move')) === 'here', 10_000, 'node 3 has the write');
  // Node 3's own view: its generation moved past the one it announced before the restart.
  const peersJson = JSON.parse(readFileSync(join(c.node(3).data, 'peers.json'), 'utf8')) as { generation: number };
  expect(peersJson.generation).toBe((await status(3)).discovery.generation);
}, 180_000);

test('a restarted node finds a member that moved while it was down in peers.json; that member learns it back by gossip', async () => {
  const gen3 = (await known(1, 3)).generation;
  expect(await c.stop(3)).toBe(0);
  expect(await c.stop(1)).toBe(0);
  await move(1);
  // Node 1 starts with node 3's old ticket only; node 3 is down, so only peers.json can say where it is.
  await c.startNode(1);
  expect(await known(1, 3)).toMatchObject({ source: 'stored', generation: gen3, addrs: [`127.0.0.1:${c.node(3).listenPort}`] });
  await eventually(async () => (await known(2, 1)).addrs[0] === `127.0.0.1:${c.node(1).listenPort}`, 20_000, "node 2 learns node 1's new address");
  // Node 3 comes back where it was, with node 1's old ticket.
  await c.startNode(3);
  await eventually(async () => (await known(3, 1)).addrs[0] === `127.0.0.1:${c.node(1).listenPort}`, 20_000, "node 3 learns node 1's new address");
  // Neither node 1 nor node 3 was given the other's address: they hear each other directly only
  // because of peers.json (node 1) and gossip proved by a dial (node 3).
  const [n1, n3] = [(await status(1)).node, (await status(3)).node];
  const hears = async (a: number, b: number): Promise<boolean> => (await status(a)).liveness.peers.find((p) => p.node === b)?.up === true;
  await eventually(async () => (await hears(1, n3)) && (await hears(3, n1)), 20_000, 'nodes 1 and 3 hear each other');
  await eventually(() => healthy([1, 2, 3]), 30_000, 'healthy again');
  expect(await put(1, 'after-second-move', 'there')).toBe(true);
  await eventually(async () => (await staleGet(3, 'after-second-move')) === 'there', 20_000, 'node 3 has the write');
}, 120_000);

test('seeded discovery fuzz from a stranger and from a member: refused, nothing changes, the node keeps serving', async () => {
  const seed = Number(process.env.FUZZ_SEED ?? 1_406);
  const to = { id: idOf(1), addrs: [`127.0.0.1:${c.node(1).listenPort}`] };
  const stranger = await DiscSpeaker.bind(new Uint8Array(randomBytes(32)));
  // Node 2's key, spoken while node 2 is down, so only the fuzz speaks for that id.
  expect(await c.stop(2)).toBe(0);
  const member = await DiscSpeaker.bind(new Uint8Array(Buffer.from(readFileSync(join(c.node(2).data, 'node.key'), 'utf8').split('\n')[0]!, 'hex')));
  try {
    expect(member.id).toBe(idOf(2));
    const before = await known(1, 2);
    // All node 1 knows: its own generation and addresses, and every member's entry (node 3's
    // too, which the gossip in the frames names at higher generations and other addresses).
    const book = async (): Promise<unknown> => {
      const d = (await status(1)).discovery;
      return { generation: d.generation, addrs: d.addrs, members: d.members };
    };
    const whole = await book();
    const others = [idOf(3)];
    for (const [who, s] of [
      ['stranger', stranger],
      ['member', member],
    ] as const) {
      const fuzz = new DiscFuzz(seed, before, others);
      for (let i = 0; i < 60; i++) {
        const f = fuzz.next();
        const why = `${who}, seed ${seed}, case ${i} (${f.kind})`;
        const r = await s.speak(to, f.bytes);
        if (who === 'stranger') {
          expect(r.reply, why).toBeUndefined();
          expect(r.closed, why).toMatch(/not a member/);
        }
        expect(await book(), why).toEqual(whole);
      }
    }
    const st = await status(1);
    expect(st.discovery.counters.strangers).toBeGreaterThanOrEqual(60);
    expect(st.discovery.counters.badFrames).toBeGreaterThan(10);
    expect(st.discovery.counters.stale + st.discovery.counters.conflicts).toBeGreaterThan(5);
    // Gossip that outranked node 3's claim was probed, not believed.
    expect(st.discovery.counters.hintsProbed).toBeGreaterThan(0);
    const metrics = await (await fetch(`${c.node(1).url}/metrics`)).text();
    expect(metrics).toMatch(/^iroh_raft_discovery_strangers_refused_total [1-9]\d+$/m);
  } finally {
    await Promise.all([stranger.close(), member.close()]);
  }
  // Node 1 never stopped, and node 2 comes back and is known where it is.
  expect(c.node(1).proc?.exitCode).toBeNull();
  await c.startNode(2);
  await eventually(() => healthy([1, 2, 3]), 30_000, 'healthy after the fuzz');
  expect(await put(1, 'after-fuzz', 'ok')).toBe(true);
  await eventually(async () => (await staleGet(2, 'after-fuzz')) === 'ok', 20_000, 'node 2 has the write');
}, 180_000);
