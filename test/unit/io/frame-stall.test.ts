/**
 * A member that starts a raft frame and stalls, over real Iroh endpoints on 127.0.0.1: the fuzz
 * helper's bare endpoint holds a member's key, says a valid hello, announces a frame of
 * maxFrameBytes (which the receiver allocates on the spot), sends a part and stops. What it
 * proves: the receiver closes that connection once frameTimeoutMs has passed since the frame
 * began (close code FrameTimeout, one counted protocol error, the link gone), while frames that
 * each complete in time are delivered even when the whole exchange lasts longer than the bound;
 * and a real member still exchanges records with the receiver afterwards.
 */
import { randomBytes } from 'node:crypto';
import type * as Iroh from '@number0/iroh/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecordKind, encodeFrame } from '../../../src/wire/index.js';
import type { DecodedRecord } from '../../../src/wire/index.js';
import { decodeTicket } from '../../../src/io/ticket.js';
import { RAFT_ALPN, Transport, encodeHello } from '../../../src/io/transport/index.js';
import { CloseCode } from '../../../src/io/transport/hello.js';
import { concat, endpointAddr, framed, fuzzEndpoint } from '../../support/frame-fuzz.js';

/** Short, so the test waits little; the stalled connection is otherwise left open for a minute. */
const FRAME_TIMEOUT_MS = 1_500;
const MAX_FRAME_BYTES = 4 * 1024 * 1024;
/** How long the fuzzer waits for the receiver to close: far beyond the bound, far below QUIC's idle timeout. */
const WAIT_CLOSE_MS = 15_000;

const key = (): Uint8Array => new Uint8Array(randomBytes(32));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Got extends DecodedRecord {
  readonly from: string;
}

let receiver: Transport;
let member: Transport;
let fuzzer: Iroh.Endpoint;
let fuzzId: string;
const got: Got[] = [];
const memberGot: Got[] = [];

beforeAll(async () => {
  fuzzer = await fuzzEndpoint(key());
  fuzzId = fuzzer.id().toString();
  const members = new Set([fuzzId]);
  const limits = { maxFrameBytes: MAX_FRAME_BYTES, maxRecordBytes: 1024 * 1024, frameTimeoutMs: FRAME_TIMEOUT_MS };
  receiver = await Transport.start({
    secretKey: key(),
    bindAddr: '127.0.0.1:0',
    isMember: (id) => members.has(id),
    onRecords: (from, records) => got.push(...records.map((r) => ({ from, ...r }))),
    ...limits,
  });
  member = await Transport.start({
    secretKey: key(),
    bindAddr: '127.0.0.1:0',
    isMember: (id) => id === receiver.id,
    onRecords: (from, records) => memberGot.push(...records.map((r) => ({ from, ...r }))),
    ...limits,
  });
  members.add(member.id);
});

afterAll(async () => {
  await Promise.all([receiver.destroy(), member.destroy()]);
  await fuzzer.close();
});

async function waitFor(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A raft connection from the fuzzer (a member's key) that has said its hello. */
async function memberStream(): Promise<{ conn: Iroh.Connection; write: (b: Uint8Array) => Promise<void> }> {
  const t = decodeTicket(receiver.ticket());
  const conn = await fuzzer.connect(endpointAddr(t.id, t.addrs), Array.from(Buffer.from(RAFT_ALPN)));
  const bi = await conn.openBi();
  const write = (b: Uint8Array): Promise<void> => bi.send.writeAll(Array.from(b));
  await write(encodeHello(new Uint8Array(randomBytes(8))));
  return { conn, write };
}

/** What `conn.closed()` says, or `still open` after WAIT_CLOSE_MS. */
async function closedWithin(conn: Iroh.Connection): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const out = await Promise.race([conn.closed(), new Promise<string>((r) => (timer = setTimeout(() => r('still open'), WAIT_CLOSE_MS)))]);
  clearTimeout(timer);
  return out;
}

const record = (shard: number, n: number): Uint8Array => encodeFrame([{ kind: RecordKind.RaftMessage, shard, payload: new Uint8Array(n).fill(shard) }]);

describe('a raft frame must complete within frameTimeoutMs of its first byte', () => {
  it('frames that each complete in time are delivered, though the exchange outlasts the bound', async () => {
    const { conn, write } = await memberStream();
    const errorsBefore = receiver.stats().protocolErrors;
    const [a, b, c] = [record(1, 100), record(2, 100), record(3, 100)].map((f) => framed(f));
    // Each write completes the frame before it and starts the next; each frame waits 60 % of
    // the bound, the whole exchange 120 %: a deadline kept from the first frame would fire.
    await write(concat([a!, b!.subarray(0, 10)]));
    await sleep(FRAME_TIMEOUT_MS * 0.6);
    await write(concat([b!.subarray(10), c!.subarray(0, 10)]));
    await sleep(FRAME_TIMEOUT_MS * 0.6);
    await write(c!.subarray(10));
    await waitFor(() => got.filter((g) => g.from === fuzzId).length === 3, 'the three records');
    expect(got.map((g) => g.shard)).toEqual([1, 2, 3]);
    expect(receiver.stats().protocolErrors).toBe(errorsBefore);
    conn.close(0n, []);
    await waitFor(() => (receiver.stats().peers[fuzzId]?.connections ?? 0) === 0, 'the receiver to let go of the connection');
  }, 30_000);

  it('a member that announces a large frame, sends part and stalls is closed with FrameTimeout and counted', async () => {
    const { conn, write } = await memberStream();
    const errorsBefore = receiver.stats().protocolErrors;
    const stated = new Uint8Array(4);
    new DataView(stated.buffer).setUint32(0, MAX_FRAME_BYTES, true);
    await write(concat([stated, new Uint8Array(64 * 1024).fill(7)]));
    await waitFor(() => (receiver.stats().peers[fuzzId]?.bytesReceived ?? 0) > 64 * 1024, 'the receiver to read the part');
    const reason = await closedWithin(conn);
    expect(reason).toContain(`code ${CloseCode.FrameTimeout}`);
    expect(reason).toContain('frame not completed within frameTimeoutMs');
    expect(receiver.stats().protocolErrors).toBe(errorsBefore + 1);
    expect(receiver.stats().peers[fuzzId]!.protocolErrors).toBe(1);
    await waitFor(() => receiver.stats().peers[fuzzId]!.connections === 0, 'the receiver to drop the link');
    expect(got.every((g) => g.shard !== 7)).toBe(true);
  }, 30_000);

  it('afterwards a real member still exchanges records with the receiver, both ways', async () => {
    member.addPeer(receiver.ticket());
    receiver.addPeer(member.ticket());
    expect(member.send(receiver.id, RecordKind.RaftMessage, 9, Uint8Array.from([1, 2, 3]))).toBe(true);
    await waitFor(() => got.some((g) => g.from === member.id), 'the member record at the receiver');
    expect(got.filter((g) => g.from === member.id).map((g) => [g.shard, [...g.payload]])).toEqual([[9, [1, 2, 3]]]);
    expect(receiver.send(member.id, RecordKind.NodeHeartbeat, 0, Uint8Array.from([4]))).toBe(true);
    await waitFor(() => memberGot.length > 0, 'the receiver record at the member');
    expect(memberGot.map((g) => [g.from, [...g.payload]])).toEqual([[receiver.id, [4]]]);
  }, 30_000);
});
