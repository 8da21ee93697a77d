/**
 * The transport over real Iroh endpoints on 127.0.0.1 (no relays, no discovery), keys in a temp
 * directory. Timeouts are generous; nothing asserts on speed.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type * as Iroh from '@number0/iroh/index.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RecordKind } from '../../../src/wire/index.js';
import { decodeTicket } from '../../../src/io/ticket.js';
import { HELLO_BYTES, RAFT_ALPN, Transport, TransportError, encodeHello } from '../../../src/io/transport/index.js';
import type { TransportOptions } from '../../../src/io/transport/index.js';

const iroh = createRequire(import.meta.url)('@number0/iroh/index.js') as typeof Iroh;

// The binding frees an endpoint's UDP sockets only when its JS object is collected, so rebinding
// a port within one process needs a collection.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let dir: string;
const open: Transport[] = [];
const endpoints: Iroh.Endpoint[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'transport-test-'));
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.destroy()));
  await Promise.all(endpoints.splice(0).map((e) => e.close()));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface Got {
  from: string;
  kind: number;
  shard: number;
  payload: Uint8Array;
}

interface Node {
  t: Transport;
  got: Got[];
  frames: number;
}

/** A node's secret key: a fresh one, or the same bytes for the same name (a node restarted with its key). */
const keys = new Map<string, Uint8Array>();
const secretKey = (name?: string): Uint8Array => {
  if (name === undefined) return new Uint8Array(randomBytes(32));
  let k = keys.get(name);
  if (k === undefined) keys.set(name, (k = new Uint8Array(randomBytes(32))));
  return k;
};

async function node(over: Partial<TransportOptions> = {}): Promise<Node> {
  const n: Node = { t: undefined as unknown as Transport, got: [], frames: 0 };
  n.t = await Transport.start({
    secretKey: secretKey(),
    bindAddr: '127.0.0.1:0',
    isMember: () => true,
    onRecords: (from, records) => {
      n.frames++;
      for (const r of records) n.got.push({ from, ...r });
    },
    ...over,
  });
  open.push(n.t);
  return n;
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);

/** A bare Iroh endpoint that speaks the raft ALPN (or another) by hand. */
async function rawEndpoint(): Promise<Iroh.Endpoint> {
  const b = iroh.Endpoint.builder();
  iroh.presetMinimal(b);
  b.relayMode(iroh.RelayMode.disabled());
  b.bindAddr('127.0.0.1:0');
  const ep = await b.bind();
  endpoints.push(ep);
  return ep;
}

const alpn = (s: string): number[] => Array.from(Buffer.from(s));

function addrOf(t: Transport): Iroh.EndpointAddr {
  const { id, addrs } = decodeTicket(t.ticket());
  return new iroh.EndpointAddr(iroh.EndpointId.fromString(id), null, addrs);
}

/** Connects to `t` with the raft ALPN, sends a valid hello and reads the transport's. */
async function rawRaftStream(ep: Iroh.Endpoint, t: Transport): Promise<{ conn: Iroh.Connection; send: Iroh.SendStream }> {
  const conn = await ep.connect(addrOf(t), alpn(RAFT_ALPN));
  const bi = await conn.openBi();
  await bi.send.writeAll(Array.from(encodeHello(new Uint8Array(8).fill(9))));
  expect((await bi.recv.readExact(HELLO_BYTES)).slice(0, 4)).toEqual(alpn('IRFT'));
  return { conn, send: bi.send };
}

/** A 127.0.0.1 UDP port nobody listens on. */
async function deadPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function connect(a: Node, b: Node): Promise<void> {
  a.t.addPeer(b.t.ticket());
  b.t.addPeer(a.t.ticket());
  const before = b.got.length;
  a.t.send(b.t.id, RecordKind.RaftMessage, 0, new Uint8Array([1]));
  await waitFor(() => b.got.length > before, 'a first record');
}

describe('Transport', () => {
  it('exchanges records both ways, sender identified by its endpoint id, payloads intact', async () => {
    const a = await node();
    const b = await node();
    a.t.addPeer(b.t.ticket());
    b.t.addPeer(a.t.ticket());
    for (let i = 0; i < 50; i++) {
      expect(a.t.send(b.t.id, RecordKind.RaftMessage, i, bytes(100 + i, i))).toBe(true);
      expect(b.t.send(a.t.id, RecordKind.ClientPropose, 1000 + i, bytes(3 * i, i))).toBe(true);
    }
    await waitFor(() => a.got.length === 50 && b.got.length === 50, 'all records');
    expect(b.got.map((g) => g.shard)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    for (const [i, g] of b.got.entries()) {
      expect(g).toEqual({ from: a.t.id, kind: RecordKind.RaftMessage, shard: i, payload: bytes(100 + i, i) });
    }
    for (const [i, g] of a.got.entries()) {
      expect(g).toEqual({ from: b.t.id, kind: RecordKind.ClientPropose, shard: 1000 + i, payload: bytes(3 * i, i) });
    }
    const sa = a.t.stats();
    expect(sa.recordsSent).toBe(50);
    expect(sa.recordsReceived).toBe(50);
    expect(sa.peers[b.t.id]).toMatchObject({ state: 'connected', recordsSent: 50, recordsReceived: 50, dropped: 0, protocolErrors: 0 });
    expect(sa.bytesSent).toBe(b.t.stats().bytesReceived);
    // Both dialed at once; one connection remains on each side.
    await waitFor(() => a.t.stats().peers[b.t.id]?.connections === 1 && b.t.stats().peers[a.t.id]?.connections === 1, 'one connection per pair');
  });

  it('sends the records of one event-loop turn as one frame, in order', async () => {
    const a = await node();
    const b = await node();
    await connect(a, b);
    const s0 = a.t.stats();
    const r0 = b.t.stats();
    const frames0 = b.frames;
    const base = b.got.length;
    const n = 1000;
    for (let i = 0; i < n; i++) a.t.send(b.t.id, RecordKind.RaftMessage, i % 7, bytes(i % 300, i));
    await waitFor(() => b.got.length === base + n, 'the batch');
    const s1 = a.t.stats();
    const r1 = b.t.stats();
    expect(s1.framesSent - s0.framesSent).toBe(1);
    expect(s1.recordsSent - s0.recordsSent).toBe(n);
    expect(r1.framesReceived - r0.framesReceived).toBe(1);
    expect(b.frames - frames0).toBe(1);
    const got = b.got.slice(base);
    for (let i = 0; i < n; i++) expect(got[i]).toEqual({ from: a.t.id, kind: RecordKind.RaftMessage, shard: i % 7, payload: bytes(i % 300, i) });
  });

  it('frames to several peers at once, small and past a 64 KiB piece, arrive whole', async () => {
    const a = await node();
    const b = await node();
    const c = await node();
    await connect(a, b);
    await connect(a, c);
    const baseB = b.got.length;
    const baseC = c.got.length;
    // Each turn queues a record for each peer; both links write in the same turns, their frames'
    // pieces interleaved, with sizes that shrink and grow the array between writes.
    const sizes = [70_000, 3, 1_500, 130_000, 0, 700, 65_533];
    for (let turn = 0; turn < sizes.length; turn++) {
      a.t.send(b.t.id, RecordKind.RaftMessage, turn, bytes(sizes[turn]!, turn));
      a.t.send(c.t.id, RecordKind.RaftMessage, turn, bytes(sizes[sizes.length - 1 - turn]!, 100 + turn));
      await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => b.got.length === baseB + sizes.length && c.got.length === baseC + sizes.length, 'every record at both peers');
    sizes.forEach((n, turn) => {
      expect(b.got[baseB + turn]!.payload).toEqual(bytes(n, turn));
      expect(c.got[baseC + turn]!.payload).toEqual(bytes(sizes[sizes.length - 1 - turn]!, 100 + turn));
    });
  });

  it('splits a backlog larger than maxFrameBytes into several frames, and carries a large record', async () => {
    const a = await node({ maxFrameBytes: 64 * 1024, maxRecordBytes: 60 * 1024 });
    const b = await node({ maxFrameBytes: 64 * 1024, maxRecordBytes: 60 * 1024 });
    await connect(a, b);
    const base = b.got.length;
    const f0 = a.t.stats().framesSent;
    for (let i = 0; i < 20; i++) a.t.send(b.t.id, RecordKind.RaftMessage, i, bytes(10_000, i));
    a.t.send(b.t.id, RecordKind.RaftMessage, 99, bytes(60 * 1024, 5));
    await waitFor(() => b.got.length === base + 21, 'the backlog');
    expect(a.t.stats().framesSent - f0).toBeGreaterThanOrEqual(4);
    expect(b.got.slice(base).map((g) => g.shard)).toEqual([...Array.from({ length: 20 }, (_, i) => i), 99]);
    expect(b.got.at(-1)!.payload).toEqual(bytes(60 * 1024, 5));
    // Above maxRecordBytes: refused at the sender and counted.
    expect(a.t.send(b.t.id, RecordKind.RaftMessage, 0, new Uint8Array(60 * 1024 + 1))).toBe(false);
    expect(a.t.stats().peers[b.t.id]!.dropped).toBe(1);
  });

  it('a small record queued after many MiB of large ones arrives before the large ones are through', async () => {
    const a = await node();
    const b = await node();
    await connect(a, b);
    const base = b.got.length;
    const bulk = 8;
    const big = (i: number): Uint8Array => new Uint8Array(1024 * 1024).fill(i + 1);
    for (let i = 0; i < bulk; i++) expect(a.t.send(b.t.id, RecordKind.RaftMessage, i, big(i))).toBe(true);
    // Queued in the same turn, behind 8 MiB.
    expect(a.t.send(b.t.id, RecordKind.NodeHeartbeat, 100, bytes(40, 1))).toBe(true);
    // Queued once the first frame is being written, still behind most of the 8 MiB.
    await waitFor(() => a.t.stats().peers[b.t.id]!.queuedRecords < bulk + 1, 'the first frame to leave');
    expect(a.t.send(b.t.id, RecordKind.NodeHeartbeat, 101, bytes(40, 2))).toBe(true);
    await waitFor(() => b.got.length === base + bulk + 2, 'every record');
    const got = b.got.slice(base);
    const order = got.map((g) => g.shard);
    expect(order.indexOf(100)).toBeLessThan(order.indexOf(0));
    expect(order.indexOf(101)).toBeGreaterThan(-1);
    expect(order.indexOf(101)).toBeLessThan(order.indexOf(bulk - 1));
    expect(order.filter((s) => s < 100)).toEqual(Array.from({ length: bulk }, (_, i) => i));
    for (const g of got) if (g.shard < 100) expect(Buffer.from(g.payload).equals(big(g.shard))).toBe(true);
  });

  it('exchanges records among three transports', async () => {
    const ns = [await node(), await node(), await node()];
    for (const x of ns) for (const y of ns) if (x !== y) x.t.addPeer(y.t.ticket());
    for (let round = 0; round < 3; round++) {
      for (const [i, x] of ns.entries()) for (const y of ns) if (x !== y) x.t.send(y.t.id, RecordKind.RaftMessage, i * 10 + round, bytes(64, round));
      await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => ns.every((x) => x.got.length === 6), 'every record');
    for (const [i, x] of ns.entries()) {
      for (const [j, y] of ns.entries()) {
        if (i === j) continue;
        expect(y.got.filter((g) => g.from === x.t.id).map((g) => g.shard)).toEqual([i * 10, i * 10 + 1, i * 10 + 2]);
      }
    }
  });

  it('the same key gives the same node id (across restarts), another key another id; a key that is not 32 bytes is refused', async () => {
    const key = secretKey('stable');
    const t1 = await Transport.start({ secretKey: key, bindAddr: '127.0.0.1:0', isMember: () => true, onRecords: () => undefined });
    const id = t1.id;
    await t1.close();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const t2 = await Transport.start({ secretKey: key, bindAddr: '127.0.0.1:0', isMember: () => true, onRecords: () => undefined });
    open.push(t2);
    expect(t2.id).toBe(id);
    expect(decodeTicket(t2.ticket())).toEqual({ id, addrs: t2.addrs() });
    const t3 = await Transport.start({ secretKey: secretKey('other'), bindAddr: '127.0.0.1:0', isMember: () => true, onRecords: () => undefined });
    open.push(t3);
    expect(t3.id).not.toBe(id);
    await expect(
      Transport.start({ secretKey: new Uint8Array(31), bindAddr: '127.0.0.1:0', isMember: () => true, onRecords: () => undefined }),
    ).rejects.toMatchObject({
      code: 'InvalidConfig',
    });
  });

  it('validates options and inputs', async () => {
    const base = { secretKey: secretKey(), bindAddr: '127.0.0.1:0', isMember: () => true, onRecords: () => undefined };
    await expect(Transport.start({ ...base, maxFrameBytes: 1000 })).rejects.toMatchObject({ code: 'InvalidConfig' });
    await expect(Transport.start({ ...base, maxRecordBytes: 16 * 1024 * 1024 })).rejects.toMatchObject({ code: 'InvalidConfig' });
    await expect(Transport.start({ ...base, backoff: { initialMs: 100, maxMs: 10 } })).rejects.toMatchObject({ code: 'InvalidConfig' });
    await expect(Transport.start({ ...base, dialTimeoutMs: 0 })).rejects.toMatchObject({ code: 'InvalidConfig' });
    await expect(Transport.start({ ...base, endpointCloseWaitMs: -1 })).rejects.toMatchObject({ code: 'InvalidConfig' });
    await expect(Transport.start({ ...base, bindAddr: 'nowhere' })).rejects.toMatchObject({ code: 'BindFailed' });
    const a = await node();
    expect(() => a.t.addPeer('garbage')).toThrow(expect.objectContaining({ code: 'InvalidTicket' }) as unknown);
    expect(() => a.t.addPeer(a.t.ticket())).toThrow(TransportError);
    expect(() => a.t.addPeer({ id: 'ab', addrs: [] })).toThrow(expect.objectContaining({ code: 'InvalidPeer' }) as unknown);
    expect(() => a.t.send('x', RecordKind.RaftMessage, 0, new Uint8Array(1))).toThrow(expect.objectContaining({ code: 'InvalidPeer' }) as unknown);
    expect(() => a.t.send(a.t.id, 999, 0, new Uint8Array(1))).toThrow(expect.objectContaining({ code: 'InvalidRecord' }) as unknown);
    expect(() => a.t.send(a.t.id, RecordKind.RaftMessage, -1, new Uint8Array(1))).toThrow(expect.objectContaining({ code: 'InvalidRecord' }) as unknown);
  });

  it('refuses a non-member: its connection is closed and nothing is delivered', async () => {
    const a = await node();
    const b = await node({ isMember: () => false });
    a.t.addPeer(b.t.ticket());
    a.t.send(b.t.id, RecordKind.RaftMessage, 1, new Uint8Array([1, 2, 3]));
    await waitFor(() => b.t.stats().refused >= 1, 'a refusal');
    await waitFor(() => (a.t.stats().peers[b.t.id]?.consecutiveFailures ?? 0) >= 1, 'the dial to fail');
    expect(b.got).toEqual([]);
    expect(b.t.stats().recordsReceived).toBe(0);
  });

  it('cuts off a peer at its next frame once it stops being a member', async () => {
    let member = true;
    const a = await node();
    const b = await node({ isMember: () => member });
    await connect(a, b);
    member = false;
    const before = b.got.length;
    a.t.send(b.t.id, RecordKind.RaftMessage, 2, new Uint8Array([2]));
    await waitFor(() => (b.t.stats().peers[a.t.id]?.refused ?? 0) >= 1, 'the frame to be refused');
    await waitFor(() => b.t.stats().peers[a.t.id]?.connections === 0, 'the connection to close');
    // And it stays cut off for a second, twenty initial backoffs: the refusing side does not dial
    // the peer again, and the peer's dials back are refused before they count as connections.
    for (const until = Date.now() + 1000; Date.now() < until;) {
      expect(b.t.stats().peers[a.t.id]?.connections).toBe(0);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(b.got.length).toBe(before);
  });

  it('reconnects to a peer that restarts on the same key and port, and records flow again', async () => {
    const a = await node();
    const bKey = secretKey('restart-same');
    const b1 = await node({ secretKey: bKey });
    const bId = b1.t.id;
    const port = b1.t.addrs()[0]!;
    await connect(a, b1);
    await b1.t.close();
    let b2: Node | undefined;
    const until = Date.now() + 20_000;
    while (b2 === undefined) {
      gc();
      try {
        b2 = await node({ secretKey: bKey, bindAddr: port });
      } catch (e) {
        if ((e as TransportError).code !== 'BindFailed' || Date.now() > until) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const b = b2;
    expect(b.t.id).toBe(bId);
    b.t.addPeer(a.t.ticket());
    // Keep sending until one arrives: records sent while the old connection was dying may be lost (raft resends).
    await waitFor(() => {
      a.t.send(b.t.id, RecordKind.RaftMessage, 7, new Uint8Array([7]));
      return b.got.some((g) => g.shard === 7 && g.from === a.t.id);
    }, 'a record to the restarted peer');
    b.t.send(a.t.id, RecordKind.RaftMessage, 8, new Uint8Array([8]));
    await waitFor(() => a.got.some((g) => g.shard === 8 && g.from === b.t.id), 'a record from the restarted peer');
  });

  it('replaces the dead connection of a peer killed with SIGKILL and restarted on its port, without waiting for the idle timeout', async () => {
    const logs: string[] = [];
    const logger = {
      info: (_o: object, m: string) => logs.push(m),
      warn: (_o: object, m: string) => logs.push(m),
      error: (_o: object, m: string) => logs.push(m),
    };
    const a = await node({ logger });
    const src = new URL('../../../src/io/transport/index.ts', import.meta.url).pathname;
    // The child echoes every record back with shard + 1000.
    const script = `
      import { Transport } from ${JSON.stringify(src)};
      const [keyHex, bindAddr, peer] = process.argv.slice(1);
      const t = await Transport.start({ secretKey: new Uint8Array(Buffer.from(keyHex, 'hex')), bindAddr, isMember: () => true, onRecords: (p, rs) => { for (const r of rs) t.send(p, r.kind, r.shard + 1000, r.payload); } });
      t.addPeer(peer);
      console.log('ready ' + t.ticket());
    `;
    const bKey = Buffer.from(secretKey('killed')).toString('hex');
    const children: ReturnType<typeof spawn>[] = [];
    const startB = (bindAddr: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const c = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, bKey, bindAddr, a.t.ticket()], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        children.push(c);
        let out = '';
        c.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /ready (\S+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        c.on('exit', (code) => reject(new Error(`child exited with ${code}`)));
      });
    const kill = async (): Promise<void> => {
      const c = children.at(-1)!;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await exited;
    };
    try {
      const ticket = await startB('127.0.0.1:0');
      const { id, addrs } = decodeTicket(ticket);
      a.t.addPeer(ticket);
      const echo = async (shard: number): Promise<void> =>
        waitFor(
          () => {
            a.t.send(id, RecordKind.RaftMessage, shard, new Uint8Array([shard]));
            return a.got.some((g) => g.shard === shard + 1000 && g.from === id);
          },
          `the echo of ${shard}`,
          60_000,
        );
      await echo(1);
      await kill();
      await startB(addrs[0]!);
      await echo(2);
      expect(logs).toContain('peer restarted: replacing its old connection');
      await kill();
    } finally {
      for (const c of children) c.kill('SIGKILL');
    }
  });

  it('reconnects to a peer that restarts on a new port once given its new ticket', async () => {
    const a = await node();
    const bKey = secretKey('restart-new');
    const b1 = await node({ secretKey: bKey });
    await connect(a, b1);
    await b1.t.destroy();
    const b2 = await node({ secretKey: bKey });
    expect(b2.t.addrs()).not.toEqual(b1.t.addrs());
    a.t.addPeer(b2.t.ticket());
    await waitFor(() => {
      a.t.send(b2.t.id, RecordKind.RaftMessage, 9, new Uint8Array([9]));
      return b2.got.some((g) => g.shard === 9);
    }, 'a record to the moved peer');
    expect(a.t.stats().peers[b2.t.id]!.addrs).toEqual(b2.t.addrs());
  });

  it('learns the address of a peer that dialed in, so it can dial back later', async () => {
    const a = await node();
    const b = await node();
    b.t.addPeer(a.t.ticket()); // a is never told where b is
    b.t.send(a.t.id, RecordKind.RaftMessage, 1, new Uint8Array([1]));
    await waitFor(() => a.got.length === 1, 'the first record');
    expect(a.t.stats().peers[b.t.id]!.addrs).toEqual(b.t.addrs());
    a.t.send(b.t.id, RecordKind.RaftMessage, 2, new Uint8Array([2]));
    await waitFor(() => b.got.length === 1, 'the answer');
  });

  describe('a peer speaking garbage is cut off, and the transport keeps serving others', () => {
    async function setup(): Promise<{ a: Node; b: Node; ep: Iroh.Endpoint }> {
      const a = await node();
      const b = await node();
      await connect(a, b);
      return { a, b, ep: await rawEndpoint() };
    }

    async function stillServes(a: Node, b: Node): Promise<void> {
      const before = b.got.length;
      a.t.send(b.t.id, RecordKind.RaftMessage, 42, new Uint8Array([42]));
      await waitFor(() => b.got.length > before, 'traffic between the good peers');
    }

    it('a wrong hello', async () => {
      const { a, b, ep } = await setup();
      const conn = await ep.connect(addrOf(b.t), alpn(RAFT_ALPN));
      const bi = await conn.openBi();
      await bi.send.writeAll(alpn('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      await expect(conn.closed()).resolves.toMatch(/code 1/);
      expect(b.t.stats().peers[ep.id().toString()]!.protocolErrors).toBe(1);
      await stillServes(a, b);
    });

    it('a length above maxFrameBytes', async () => {
      const { a, b, ep } = await setup();
      const { conn, send } = await rawRaftStream(ep, b.t);
      await send.writeAll([0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
      await expect(conn.closed()).resolves.toMatch(/exceeds maxFrameBytes/);
      expect(b.t.stats().protocolErrors).toBe(1);
      await stillServes(a, b);
    });

    it('a frame that does not decode', async () => {
      const { a, b, ep } = await setup();
      const { conn, send } = await rawRaftStream(ep, b.t);
      // Length 16, then a record header with an unknown kind.
      await send.writeAll([16, 0, 0, 0, 4, 0, 0, 0, 0xee, 0xee, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
      await expect(conn.closed()).resolves.toMatch(/bad frame/);
      expect(b.t.stats().peers[ep.id().toString()]!.protocolErrors).toBe(1);
      expect(b.got.every((g) => g.from === a.t.id)).toBe(true);
      await stillServes(a, b);
    });

    it('a stream that ends inside a frame', async () => {
      const { a, b, ep } = await setup();
      const { conn, send } = await rawRaftStream(ep, b.t);
      await send.writeAll([100, 0, 0, 0, 1, 2]);
      await send.finish();
      await expect(conn.closed()).resolves.toMatch(/inside a frame/);
      await stillServes(a, b);
    });
  });

  it('says a peer is there as soon as bytes of a frame arrive, before the frame is whole (onTraffic)', async () => {
    const heard: string[] = [];
    const b = await node({ onTraffic: (peer) => heard.push(peer) });
    const ep = await rawEndpoint();
    const { send } = await rawRaftStream(ep, b.t);
    // The length of a 1 MiB frame, then 200 KB of it: nothing whole yet.
    const len = 1 << 20;
    await send.writeAll([len & 0xff, (len >> 8) & 0xff, (len >> 16) & 0xff, len >>> 24, ...bytes(200_000, 3)]);
    await waitFor(() => heard.length > 0, 'traffic from the raw peer');
    expect(new Set(heard)).toEqual(new Set([ep.id().toString()]));
    expect(b.frames).toBe(0);
  });

  it('keeps accepting after a connection with a wrong ALPN', async () => {
    const b = await node();
    const ep = await rawEndpoint();
    await expect(ep.connect(addrOf(b.t), alpn('not-raft/0'))).rejects.toThrow();
    await waitFor(() => b.t.stats().handshakeFailures >= 1, 'the failed handshake to be counted');
    const a = await node();
    await connect(a, b);
    expect(b.got.at(-1)!.from).toBe(a.t.id);
  });

  it('gives up on an unreachable peer within dialTimeoutMs, opens the breaker after N failures, then drops sends without dialing', async () => {
    const a = await node({ dialTimeoutMs: 300, backoff: { initialMs: 10, maxMs: 20 }, breaker: { failures: 3, coolDownMs: 60_000 } });
    const ghost = iroh.SecretKey.generate().public().toString();
    a.t.addPeer({ id: ghost, addrs: [`127.0.0.1:${await deadPort()}`] });
    const t0 = Date.now();
    expect(a.t.send(ghost, RecordKind.RaftMessage, 0, new Uint8Array(8))).toBe(true);
    await waitFor(() => a.t.stats().dialFailures >= 1, 'the first dial to fail');
    // Iroh alone would wait 30 s; the dial timeout cuts it short (generous bound, not a speed check).
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(a.t.stats().peers[ghost]!.state).not.toBe('connected');
    // Records queued while dialing wait; keep one queued so the transport keeps retrying.
    await waitFor(
      () => {
        if (a.t.stats().peers[ghost]!.queuedRecords === 0) a.t.send(ghost, RecordKind.RaftMessage, 0, new Uint8Array(8));
        return a.t.stats().peers[ghost]!.state === 'open';
      },
      'the breaker to open',
      30_000,
    );
    const s = a.t.stats();
    expect(s.peers[ghost]!.consecutiveFailures).toBe(3);
    expect(s.dialFailures).toBe(3);
    const dropped = s.peers[ghost]!.dropped;
    expect(dropped).toBeGreaterThanOrEqual(1); // the queue is dropped when the breaker opens
    for (let i = 0; i < 10; i++) expect(a.t.send(ghost, RecordKind.RaftMessage, 0, new Uint8Array(8))).toBe(false);
    await new Promise((r) => setTimeout(r, 500));
    const s2 = a.t.stats();
    expect(s2.peers[ghost]!.dropped).toBe(dropped + 10);
    expect(s2.dialFailures).toBe(3); // no dial while open
    expect(s2.peers[ghost]!.state).toBe('open');
  });

  it('tries one dial after the cool-down (half-open) and opens the breaker again when it fails', async () => {
    const a = await node({ dialTimeoutMs: 200, backoff: { initialMs: 5, maxMs: 10 }, breaker: { failures: 2, coolDownMs: 300 } });
    const ghost = iroh.SecretKey.generate().public().toString();
    a.t.addPeer({ id: ghost, addrs: [`127.0.0.1:${await deadPort()}`] });
    await waitFor(
      () => {
        if (a.t.stats().peers[ghost]!.queuedRecords === 0) a.t.send(ghost, RecordKind.RaftMessage, 0, new Uint8Array(8));
        return a.t.stats().peers[ghost]!.state === 'open';
      },
      'the breaker to open',
      30_000,
    );
    expect(a.t.stats().dialFailures).toBe(2);
    // A peer given to addPeer is kept connected: after the cool-down one dial is tried on its own.
    await waitFor(() => a.t.stats().dialFailures === 3, 'the half-open dial to fail');
    await waitFor(() => a.t.stats().peers[ghost]!.state === 'open', 'the breaker to open again');
    expect(a.t.stats().peers[ghost]).toMatchObject({ consecutiveFailures: 3, queuedRecords: 0 });
    await waitFor(() => a.t.stats().dialFailures === 4, 'the next half-open dial');
    // A new address for the peer resets its breaker.
    a.t.addPeer({ id: ghost, addrs: [`127.0.0.1:${await deadPort()}`] });
    expect(a.t.stats().peers[ghost]).toMatchObject({ consecutiveFailures: 0 });
    expect(a.t.stats().peers[ghost]!.state).not.toBe('open');
  });

  it('removePeer drops what is queued for the peer and closes its connection', async () => {
    const a = await node();
    const b = await node();
    await connect(a, b);
    // b still wants a and may dial it again at once (a accepts members): what must end are the
    // connections b held when a removed it, each gone from b's links once b sees it closed.
    const linksOf = (t: Transport, id: string): unknown[] => [
      ...((t as unknown as { peers: Map<string, { links: Set<unknown> }> }).peers.get(id)?.links ?? []),
    ];
    const held = linksOf(b.t, a.t.id);
    expect(held.length).toBeGreaterThan(0);
    a.t.removePeer(b.t.id);
    expect(a.t.stats().peers[b.t.id]).toBeUndefined();
    await waitFor(() => held.every((l) => !linksOf(b.t, a.t.id).includes(l)), 'b to see the connection end');
    a.t.removePeer(b.t.id); // idempotent
  });

  it('bounds the queue of a peer that cannot be reached yet', async () => {
    const a = await node({ peerQueueBytesMax: 4096, dialTimeoutMs: 5000 });
    const ghost = iroh.SecretKey.generate().public().toString();
    a.t.addPeer({ id: ghost, addrs: [`127.0.0.1:${await deadPort()}`] });
    let accepted = 0;
    for (let i = 0; i < 100; i++) if (a.t.send(ghost, RecordKind.RaftMessage, 0, new Uint8Array(100))) accepted++;
    expect(accepted).toBe(36); // 4096 / (12 + 100)
    const p = a.t.stats().peers[ghost]!;
    expect(p.dropped).toBe(64);
    expect(p.queuedBytes).toBeLessThanOrEqual(4096);
  });

  it('close() flushes what was queued, and send() after close is a no-op counted as dropped', async () => {
    const a = await node();
    const b = await node();
    await connect(a, b);
    const base = b.got.length;
    for (let i = 0; i < 200; i++) a.t.send(b.t.id, RecordKind.RaftMessage, i, bytes(500, i));
    await a.t.close();
    expect(b.got.length - base).toBe(200);
    expect(a.t.send(b.t.id, RecordKind.RaftMessage, 0, new Uint8Array(1))).toBe(false);
    expect(a.t.stats().dropped).toBe(1);
    await waitFor(() => b.t.stats().peers[a.t.id]?.connections === 0, 'b to see the connection end');
    await a.t.close(); // idempotent
  });

  it("close() after a peer closed does not wait out the endpoint's close (endpointCloseWaitMs)", async () => {
    // The binding's endpoint close waits about 3 s for a peer that is gone to answer the close of
    // its connection; a node stopping just after its peers would wait that long on every stop.
    const a = await node();
    const b = await node({ endpointCloseWaitMs: 200 });
    await connect(a, b);
    b.t.send(a.t.id, RecordKind.RaftMessage, 0, new Uint8Array(1));
    await waitFor(() => a.got.length > 0, 'a record from b');
    await a.t.close();
    await waitFor(() => b.t.stats().peers[a.t.id]?.connections === 0, 'b to see the connection end');
    // b still wants a and dials it again (after 50 ms of backoff). A connection that never heard
    // from its peer has no round-trip time yet, and QUIC keeps a closed connection for three probe
    // timeouts of the initial estimate (~1 s each): that is what the endpoint's close waits for.
    await waitFor(() => b.t.stats().peers[a.t.id]?.state === 'dialing', 'b to dial a again');
    await new Promise((r) => setTimeout(r, 300));
    const t0 = performance.now();
    await b.t.close();
    const ms = performance.now() - t0;
    // Without the bound this takes the binding's ~3,000 ms; with it, about 200.
    expect(ms).toBeLessThan(2_500);
  });

  it('close() does not wait for a dial to a peer whose last dial failed; what was queued for it is dropped', async () => {
    const a = await node();
    // No breaker: however many dials fail before the close, the record stays queued until it.
    const b = await node({ dialTimeoutMs: 1500, endpointCloseWaitMs: 200, breaker: { failures: 1000 } });
    await connect(a, b);
    await a.t.close();
    // b's first redial meets a closing or gone and fails; a later one, to a port still bound but
    // no longer answering, would hang until dialTimeoutMs. (At least one failure: on a loaded
    // machine the next may come before this test looks.)
    await waitFor(() => (b.t.stats().peers[a.t.id]?.consecutiveFailures ?? 0) >= 1, 'a failed dial', 10_000);
    await waitFor(() => b.t.stats().peers[a.t.id]?.state === 'dialing', 'b to dial a again');
    const dropped = b.t.stats().dropped;
    expect(b.t.send(a.t.id, RecordKind.RaftMessage, 0, new Uint8Array(1))).toBe(true);
    const t0 = performance.now();
    await b.t.close();
    const ms = performance.now() - t0;
    // Waiting for the dial would take until it fails, up to 1,500 ms; without it, about 200.
    expect(ms).toBeLessThan(1_000);
    expect(b.t.stats().dropped).toBe(dropped + 1);
  });

  it('leaves nothing running after close(): the process exits on its own', async () => {
    const src = new URL('../../../src/io/transport/index.ts', import.meta.url).pathname;
    const script = `
      import { randomBytes } from 'node:crypto';
      import { Transport } from ${JSON.stringify(src)};
      const mk = (_k, got) => Transport.start({ secretKey: new Uint8Array(randomBytes(32)), bindAddr: '127.0.0.1:0', isMember: () => true, onRecords: (_p, r) => got.push(...r) });
      const ga = [], gb = [];
      const a = await mk('exit-a.key', ga), b = await mk('exit-b.key', gb);
      a.addPeer(b.ticket()); b.addPeer(a.ticket());
      a.send(b.id, 1, 1, new Uint8Array(10)); b.send(a.id, 1, 2, new Uint8Array(10));
      while (ga.length + gb.length < 2) await new Promise((r) => setTimeout(r, 10));
      await a.close(); await b.close();
      console.log('closed');
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(null);
      }, 60_000);
      child.on('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(out).toContain('closed');
    expect(code).toBe(0);
  });

  it('destroy() stops at once and is idempotent with close()', async () => {
    const a = await node();
    const b = await node();
    await connect(a, b);
    await a.t.destroy();
    await a.t.close();
    expect(a.t.send(b.t.id, RecordKind.RaftMessage, 0, new Uint8Array(1))).toBe(false);
    await waitFor(() => b.t.stats().peers[a.t.id]?.connections === 0, 'b to see the connection end');
  });
});
