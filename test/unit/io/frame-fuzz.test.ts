/**
 * A seeded fuzz of what peers write on the transport's ALPNs, over real Iroh endpoints on
 * 127.0.0.1: garbage, flipped, truncated, oversize-length, spliced and replayed frames and hellos,
 * from a stranger (an endpoint id that is not a member) and from a member (an endpoint holding a
 * member's key), thousands of messages in all. What it proves: the receiving transport neither
 * crashes nor rejects unhandled; it counts and refuses the bad input (a protocol error per bad
 * member connection, a refusal per stranger connection); it delivers upward exactly the records
 * of the frames that precede the first bad one on each connection (an oracle parses the same bytes
 * by the wire's rules), and nothing from a stranger; and it keeps serving: a real member exchanges
 * records with it afterwards. The seed is printed; `FUZZ_SEED=<n>` replays a run.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateRawSync } from 'node:zlib';
import type * as Iroh from '@number0/iroh/index.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  RecordKind,
  SNAPSHOT_ALPN,
  SNAPSHOT_MESSAGE_BYTES_MAX,
  SnapAnswer,
  SnapMessageType,
  decodeFrame,
  decodeSnapMessage,
  encodeFrame,
  encodeSnapMessage,
  snapAnswerName,
} from '../../../src/wire/index.js';
import type { DecodedRecord, SnapMessage } from '../../../src/wire/index.js';
import { Snapshots } from '../../../src/router/snapshots.js';
import { KvOp, decodeKvReply, encodeGet, encodePut } from '../../../src/shards/kv/index.js';
import type { LogIndex, NodeId, ShardId, Term } from '../../../src/shards/raft/index.js';
import type { WorkerPool } from '../../../src/workers/pool.js';
import { startPool } from '../../support/pool.js';
import { decodeTicket } from '../../../src/io/ticket.js';
import { HELLO_BYTES, RAFT_ALPN, Transport, encodeHello } from '../../../src/io/transport/index.js';
import type { SnapStream } from '../../../src/io/transport/index.js';
import { parseHello } from '../../../src/io/transport/hello.js';
import { Rng, concat, eachLimited, endpointAddr, framed, fuzzEndpoint, fuzzSeed, mutate, sendCase } from '../../support/frame-fuzz.js';

/** Rejections nobody handled while the fuzz ran: the receiver must leave none. */
const unhandled: unknown[] = [];
process.on('unhandledRejection', (e) => unhandled.push(e));
afterEach(() => expect(unhandled.map(String)).toEqual([]));

const SEED = fuzzSeed();
console.log(`frame fuzz seed ${SEED} (FUZZ_SEED=${SEED} replays it)`);

/** Small limits, so that lengths beyond them are cheap to state. */
const LIMITS = { maxFrameBytes: 64 * 1024, maxRecordBytes: 16 * 1024 };
/** Member raft connections, each with a run of fuzzed messages (sequential: a peer has one link). */
const MEMBER_CONNECTIONS = 1500;
/** Stranger connections per ALPN (run several at once). */
const STRANGER_CONNECTIONS = 300;

const key = (): Uint8Array => new Uint8Array(randomBytes(32));
const KINDS = Object.values(RecordKind);

interface Got extends DecodedRecord {
  readonly from: string;
}

let receiver: Transport;
let member: Transport;
const got: Got[] = [];
const memberGot: Got[] = [];
const fuzzKey = key();
let fuzzId: string;
const endpoints: Iroh.Endpoint[] = [];
let members: Set<string>;
/** The receiver's node (raft node 2): its worker pool, and its snapshot receiver behind the snapshot ALPN. */
let pool: WorkerPool;
let snapshots: Snapshots;
let staging: string;
const dataDir = mkdtempSync(join(tmpdir(), 'iroh-raft-frame-fuzz-'));
/** Peers whose snapshot streams the receiver's transport handed up. */
const snapStreamsFrom: string[] = [];
/** Connections the receiver gave up on, by its log: lost, refused for a protocol error, or a hello that failed. */
let ends = 0;
const ENDS = new Set(['connection lost', 'protocol error: closing the connection', 'inbound hello failed', 'inbound handshake failed']);
const countEnds = (_o: object, msg: string): void => {
  if (ENDS.has(msg)) ends++;
};
const logger = { info: countEnds, warn: countEnds, error: countEnds };

beforeAll(async () => {
  const fuzzer = await fuzzEndpoint(fuzzKey);
  endpoints.push(fuzzer);
  fuzzId = fuzzer.id().toString();
  members = new Set([fuzzId]);
  receiver = await Transport.start({
    secretKey: key(),
    bindAddr: '127.0.0.1:0',
    isMember: (id) => members.has(id),
    onRecords: (from, records) => got.push(...records.map((r) => ({ from, ...r }))),
    onSnapshotStream: (stream: SnapStream) => {
      snapStreamsFrom.push(stream.peerId);
      snapshots.accept(stream);
    },
    logger,
    ...LIMITS,
  });
  member = await Transport.start({
    secretKey: key(),
    bindAddr: '127.0.0.1:0',
    isMember: (id) => id === receiver.id,
    onRecords: (from, records) => memberGot.push(...records.map((r) => ({ from, ...r }))),
    ...LIMITS,
  });
  members.add(member.id);
  members.add(receiver.id);
  // A new replica of shard 0 (no voters yet): it takes any offered snapshot newer than nothing.
  pool = await startPool({ dataDir: join(dataDir, 'receiver'), workers: 1, nodeId: 2, shards: [{ shard: 0 as ShardId, voters: [] }], tickMs: 10 });
  staging = join(dataDir, 'staging');
  snapshots = new Snapshots({
    self: 2 as NodeId,
    pool,
    connect: () => Promise.reject(new Error('the receiver sends no snapshots here')),
    // Node 1 is the fuzzing member, node 3 the real one.
    peerOf: (n) => (n === 1 ? fuzzId : n === 3 ? member.id : undefined),
    stagingDir: staging,
    idleTimeoutMs: 2_000,
    log: { info: () => undefined, warn: () => undefined },
  });
});

afterAll(async () => {
  await Promise.all([receiver.destroy(), member.destroy()]);
  await Promise.all(endpoints.splice(0).map((e) => e.close()));
  snapshots.close();
  await pool.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const receiverAddr = (): Iroh.EndpointAddr => {
  const t = decodeTicket(receiver.ticket());
  return endpointAddr(t.id, t.addrs);
};

async function waitFor(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what} (seed ${SEED})`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Valid frames to mutate: a few records each, of every kind, payloads up to 300 bytes (some empty). */
function validFrames(rng: Rng): Uint8Array[] {
  return Array.from({ length: 24 }, () =>
    encodeFrame(
      Array.from({ length: rng.int(0, 4) }, () => ({
        kind: rng.pick(KINDS),
        shard: rng.pick([0, 1, rng.int(0, 0xffffffff)]),
        payload: rng.bytes(rng.pick([0, 1, 3, rng.int(0, 300)])),
      })),
    ),
  );
}

/**
 * The wire's rules applied to what a member wrote on its stream (a hello, then `length u32 LE,
 * frame`s): the records the receiver must deliver and, if the bytes break the rules, why. With
 * `finished`, bytes left inside a hello or a frame at the end break them too.
 */
function oracle(stream: Uint8Array, finished: boolean): { records: DecodedRecord[]; error: string | undefined } {
  const records: DecodedRecord[] = [];
  if (stream.length < HELLO_BYTES) return { records, error: finished ? 'stream ended inside the hello' : undefined };
  try {
    parseHello(Array.from(stream.subarray(0, HELLO_BYTES)));
  } catch (e) {
    return { records, error: `hello: ${(e as Error).message}` };
  }
  let at = HELLO_BYTES;
  const view = new DataView(stream.buffer, stream.byteOffset, stream.byteLength);
  while (stream.length - at >= 4) {
    const len = view.getUint32(at, true);
    if (len > LIMITS.maxFrameBytes) return { records, error: `length ${len} beyond maxFrameBytes` };
    if (stream.length - at - 4 < len) break;
    try {
      records.push(...decodeFrame(stream.subarray(at + 4, at + 4 + len), LIMITS.maxRecordBytes));
    } catch (e) {
      return { records, error: `bad frame: ${(e as Error).message}` };
    }
    at += 4 + len;
  }
  return { records, error: finished && at < stream.length ? 'stream ended inside a frame' : undefined };
}

/** A member connection's bytes: a hello (now and then a broken or replayed one), then fuzzed frames up to the first the rules refuse. */
function memberStream(rng: Rng, valid: readonly Uint8Array[], history: Uint8Array[], hellos: Uint8Array[]): { bytes: Uint8Array; messages: number } {
  let hello = rng.next() < 0.3 && hellos.length > 0 ? rng.pick(hellos) : encodeHello(rng.bytes(8));
  if (rng.next() < 0.1) {
    // A broken hello: flipped, cut, or garbage.
    hello = rng.pick([
      () => hello.map((b, i) => (i === rng.int(0, HELLO_BYTES - 1) ? b ^ (1 << rng.int(0, 7)) : b)),
      () => hello.slice(0, rng.int(0, HELLO_BYTES - 1)),
      () => rng.bytes(HELLO_BYTES),
    ])();
  } else if (hellos.length < 8) hellos.push(hello);
  const parts = [hello];
  let messages = 1;
  for (let n = rng.int(1, 10); n > 0; n--) {
    if (oracle(concat(parts), false).error !== undefined) break;
    const m = mutate(rng, valid, LIMITS.maxFrameBytes, history, { fullOversize: true });
    parts.push(m.bytes);
    messages++;
    if (m.mutation === 'valid' && history.length < 64) history.push(m.bytes);
  }
  return { bytes: concat(parts), messages };
}

const same = (a: readonly DecodedRecord[], b: readonly DecodedRecord[]): boolean =>
  a.length === b.length && a.every((r, i) => r.kind === b[i]!.kind && r.shard === b[i]!.shard && Buffer.from(r.payload).equals(Buffer.from(b[i]!.payload)));

describe('frame fuzz: iroh-raft/0', () => {
  it('a member sending fuzzed hellos and frames: each bad connection is one protocol error, exactly the records before it are delivered, nothing crashes', async () => {
    const rng = new Rng(SEED);
    const valid = validFrames(rng);
    const history: Uint8Array[] = [];
    const hellos: Uint8Array[] = [];
    const fuzzer = endpoints[0]!;
    const to = receiverAddr();
    let messages = 0;
    let refusedByRules = 0;
    for (let c = 0; c < MEMBER_CONNECTIONS; c++) {
      const s = memberStream(rng, valid, history, hellos);
      messages += s.messages;
      // Mostly a stream that ends; now and then one left open (a stalled peer) or cut off.
      const mode = rng.pick(['finish', 'finish', 'finish', 'finish', 'finish', 'finish', 'stall', 'abandon'] as const);
      const expected = oracle(s.bytes, mode === 'finish');
      const before = got.length;
      const errorsBefore = receiver.stats().protocolErrors;
      const endsBefore = ends;
      const out = await sendCase(fuzzer, to, RAFT_ALPN, s.bytes, {
        finish: mode === 'finish',
        waitMs: mode === 'stall' ? 20 : 10_000,
        abandon: mode === 'abandon',
      });
      const where = `seed ${SEED}, connection ${c} (${mode}): ${expected.error ?? 'valid'}`;
      expect(out.connected, where).toBe(true);
      // The receiver is done with the connection before the next one comes: one it did not see
      // end must have failed there (its log says so).
      if (mode !== 'finish') await waitFor(() => ends > endsBefore, `the receiver to see connection ${c} go`);
      await waitFor(() => (receiver.stats().peers[fuzzId]?.connections ?? 0) === 0, `the receiver to let go of connection ${c}`);
      const delivered = got.slice(before);
      expect(
        delivered.every((r) => r.from === fuzzId),
        where,
      ).toBe(true);
      if (mode === 'finish') {
        expect(same(delivered, expected.records), where).toBe(true);
        expect(receiver.stats().protocolErrors - errorsBefore, where).toBe(expected.error === undefined ? 0 : 1);
        expect(out.ended, where).toBe(expected.error === undefined ? 'end' : 'closed');
        if (expected.error !== undefined) refusedByRules++;
      } else {
        // Cut off or left open: what arrived before is a prefix of what the rules allow.
        expect(same(delivered, expected.records.slice(0, delivered.length)), where).toBe(true);
      }
    }
    console.log(`frame fuzz iroh-raft/0 member: ${MEMBER_CONNECTIONS} connections, ${messages} messages, ${refusedByRules} refused by the rules`);
    expect(messages).toBeGreaterThan(2_000);
    expect(refusedByRules).toBeGreaterThan(MEMBER_CONNECTIONS / 3);
  }, 240_000);

  it('a stranger replaying and fuzzing: every connection is refused, nothing it sent is delivered', async () => {
    const rng = new Rng(SEED ^ 0x5eed);
    const valid = validFrames(rng);
    const history: Uint8Array[] = [];
    const hellos: Uint8Array[] = [];
    const strangers = await Promise.all(Array.from({ length: 4 }, () => fuzzEndpoint()));
    endpoints.push(...strangers);
    const to = receiverAddr();
    const refusedBefore = receiver.stats().refused;
    const streams = Array.from({ length: STRANGER_CONNECTIONS }, () => memberStream(rng, valid, history, hellos).bytes);
    await eachLimited(streams, 8, async (bytes, i) => {
      await sendCase(strangers[i % strangers.length]!, to, RAFT_ALPN, bytes, { finish: true, waitMs: 10_000 });
    });
    await waitFor(() => receiver.stats().refused - refusedBefore === STRANGER_CONNECTIONS, 'every stranger connection refused');
    const ids = new Set(strangers.map((s) => s.id().toString()));
    expect(got.filter((r) => ids.has(r.from))).toEqual([]);
    expect(got.every((r) => r.from === fuzzId)).toBe(true);
  }, 120_000);

  it('afterwards a real member still exchanges records with the receiver, both ways', async () => {
    member.addPeer(receiver.ticket());
    receiver.addPeer(member.ticket());
    const payload = Uint8Array.from([1, 2, 3, 4, 5]);
    expect(member.send(receiver.id, RecordKind.RaftMessage, 7, payload)).toBe(true);
    await waitFor(() => got.some((r) => r.from === member.id), 'the member record at the receiver');
    expect(got.filter((r) => r.from === member.id).map((r) => [r.kind, r.shard, [...r.payload]])).toEqual([[RecordKind.RaftMessage, 7, [1, 2, 3, 4, 5]]]);
    expect(receiver.send(member.id, RecordKind.NodeHeartbeat, 0, new Uint8Array([9]))).toBe(true);
    await waitFor(() => memberGot.length > 0, 'the receiver record at the member');
    expect(memberGot.map((r) => [r.from, r.kind, [...r.payload]])).toEqual([[receiver.id, RecordKind.NodeHeartbeat, [9]]]);
  }, 60_000);
});

/** Snapshot member connections (sequential: the receiver takes two transfers at once, one per shard). */
const SNAP_CONNECTIONS = 400;

/** Valid snapshot stream bodies to mutate: offers (to this receiver and not), chunks with their true crc32, Ends, Answers. */
function validSnapBodies(rng: Rng): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < 8; i++) {
    // The first three are offers the receiver takes: shard 0, from the fuzzing member (node 1) to it (node 2).
    const fits = i < 3;
    out.push(
      encodeSnapMessage({
        type: SnapMessageType.Offer,
        shard: fits ? 0 : rng.pick([0, 1, rng.int(0, 0xffffffff)]),
        from: fits ? 1 : rng.pick([1, 3, rng.int(0, 0xffffffff)]),
        to: fits ? 2 : rng.pick([2, 1, rng.int(0, 0xffffffff)]),
        term: rng.int(1, 9),
        index: rng.pick([1, rng.int(1, 1000), 2 ** 53 - 1]),
        indexTerm: rng.int(1, 9),
        voters: rng.pick([[1, 2], [2], []]),
        learners: rng.pick([[], [3]]),
      }),
    );
    const raw = rng.bytes(rng.pick([0, 1, rng.int(1, 2000)]));
    out.push(
      encodeSnapMessage({
        type: SnapMessageType.Chunk,
        index: rng.pick([0, 0, 1, rng.int(0, 9)]),
        rawLength: raw.length,
        crc32: crc32(raw),
        compressed: deflateRawSync(raw),
      }),
    );
    out.push(encodeSnapMessage({ type: SnapMessageType.End, chunks: rng.int(0, 3), rawBytes: rng.int(0, 5000), crc32: rng.int(0, 0xffffffff) }));
  }
  out.push(encodeSnapMessage({ type: SnapMessageType.Answer, answer: SnapAnswer.Installed, retryAfterMs: 0 }));
  return out;
}

/** The answers in what a receiver wrote back (`length u32 LE, body`, each an Answer). */
function answersIn(reply: Uint8Array): string[] {
  const out: string[] = [];
  const view = new DataView(reply.buffer, reply.byteOffset, reply.byteLength);
  for (let at = 0; at + 4 <= reply.length;) {
    const len = view.getUint32(at, true);
    const m: SnapMessage = decodeSnapMessage(reply.subarray(at + 4, at + 4 + len));
    expect(m.type).toBe(SnapMessageType.Answer);
    if (m.type === SnapMessageType.Answer) out.push(snapAnswerName(m.answer));
    at += 4 + len;
  }
  return out;
}

const readOn = async (p: WorkerPool, key: string): Promise<Uint8Array | undefined> => {
  const o = await p.read(0 as ShardId, encodeGet('t', new TextEncoder().encode(key)), 'stale');
  if (!o.ok) return undefined;
  const r = decodeKvReply(KvOp.Get, o.body);
  return r.ok && r.found ? r.value : undefined;
};

describe('frame fuzz: iroh-raft-snap/0', () => {
  it('a member sending fuzzed offers, chunks and ends: answered or cut off, never installed, nothing left staged', async () => {
    const rng = new Rng(SEED ^ 0x5a5a);
    const valid = validSnapBodies(rng);
    const offers = valid.filter((b) => b[0] === SnapMessageType.Offer);
    const history: Uint8Array[] = [];
    const fuzzer = endpoints[0]!;
    const to = receiverAddr();
    const answers = new Map<string, number>();
    let messages = 0;
    for (let c = 0; c < SNAP_CONNECTIONS; c++) {
      // Mostly a real offer first, so the fuzz reaches the chunks; then fuzzed messages.
      const parts = rng.next() < 0.7 ? [framed(rng.pick(offers))] : [];
      for (let n = rng.int(1, 6); n > 0; n--) {
        const m = mutate(rng, valid, SNAPSHOT_MESSAGE_BYTES_MAX, history);
        parts.push(m.bytes);
        if (m.mutation === 'valid' && history.length < 64) history.push(m.bytes);
      }
      messages += parts.length;
      const out = await sendCase(fuzzer, to, SNAPSHOT_ALPN, concat(parts), { finish: rng.next() < 0.9, waitMs: 10_000 });
      const where = `seed ${SEED}, snapshot connection ${c}`;
      expect(out.connected, where).toBe(true);
      for (const a of answersIn(out.reply)) answers.set(a, (answers.get(a) ?? 0) + 1);
      await waitFor(() => snapshots.active().receiving === 0, `the receiver to end snapshot connection ${c}`);
    }
    console.log(
      `frame fuzz iroh-raft-snap/0 member: ${SNAP_CONNECTIONS} connections, ${messages} messages, answers ${JSON.stringify(Object.fromEntries(answers))}`,
    );
    expect(messages).toBeGreaterThan(1_000);
    expect(answers.get('Installed')).toBeUndefined();
    expect(snapshots.counters.received).toBe(0);
    expect(snapshots.counters.receiveFailures).toBeGreaterThan(0);
    // The fuzz reached past the offer: some were accepted, and then refused for what followed.
    expect(answers.get('Accept') ?? 0).toBeGreaterThan(0);
    expect((answers.get('BadStream') ?? 0) + (answers.get('ChecksumMismatch') ?? 0)).toBeGreaterThan(0);
    await waitFor(() => readdirSync(staging).length === 0, 'nothing left staged');
    // Nothing installed: the replica still takes a snapshot at index 1.
    expect(await pool.snapshotOffer(0 as ShardId, 1 as LogIndex)).toBe('accept');
  }, 120_000);

  it('a stranger on the snapshot ALPN is refused before any stream is handed up', async () => {
    const rng = new Rng(SEED ^ 0x77);
    const valid = validSnapBodies(rng);
    const stranger = await fuzzEndpoint();
    endpoints.push(stranger);
    const to = receiverAddr();
    const refusedBefore = receiver.stats().refused;
    const cases = Array.from({ length: STRANGER_CONNECTIONS }, () =>
      concat([framed(rng.pick(valid)), mutate(rng, valid, SNAPSHOT_MESSAGE_BYTES_MAX, []).bytes]),
    );
    await eachLimited(cases, 8, async (bytes) => {
      const out = await sendCase(stranger, to, SNAPSHOT_ALPN, bytes, { finish: true, waitMs: 10_000 });
      expect(out.reply.length).toBe(0);
    });
    await waitFor(() => receiver.stats().refused - refusedBefore === STRANGER_CONNECTIONS, 'every stranger connection refused');
    expect(snapStreamsFrom.filter((p) => p !== fuzzId && p !== member.id)).toEqual([]);
  }, 120_000);

  it('afterwards a real member transfers a real snapshot to the receiver, and it is installed', async () => {
    // The real member (node 3) leads shard 0 alone and holds a few keys.
    const leader = await startPool({
      dataDir: join(dataDir, 'leader'),
      workers: 1,
      nodeId: 3,
      shards: [{ shard: 0 as ShardId, voters: [3 as NodeId] }],
      tickMs: 10,
    });
    const tx = new Snapshots({
      self: 3 as NodeId,
      pool: leader,
      connect: (peerId) => member.openSnapshotStream(peerId),
      peerOf: (n) => (n === 2 ? receiver.id : undefined),
      stagingDir: join(dataDir, 'leader-staging'),
      log: { info: () => undefined, warn: () => undefined },
    });
    try {
      member.addPeer(receiver.ticket());
      const enc = new TextEncoder();
      for (let i = 0; ; i++) {
        if ((await leader.propose(0 as ShardId, { command: encodePut('t', enc.encode('after-fuzz'), enc.encode('yes')) })).ok) break;
        if (i > 500) throw new Error('the leader never took a write');
        await new Promise((r) => setTimeout(r, 20));
      }
      const status = (await leader.control(0).status()).shards[0]!;
      tx.request(0 as ShardId, { from: 3 as NodeId, to: 2 as NodeId, term: status.term as Term, index: status.applied as LogIndex });
      await waitFor(() => tx.counters.sent === 1, 'the real transfer', 30_000);
      expect(snapshots.counters.received).toBe(1);
      for (let i = 0; (await readOn(pool, 'after-fuzz')) === undefined; i++) {
        if (i > 500) throw new Error('the installed snapshot never became readable');
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(Buffer.from((await readOn(pool, 'after-fuzz'))!).toString()).toBe('yes');
    } finally {
      tx.close();
      await leader.close();
    }
  }, 120_000);
});
