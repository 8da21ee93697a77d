/**
 * What the Iroh binding costs per byte on the JavaScript thread, each way, and whether the shape
 * of the array we hand it matters. `@number0/iroh` takes and returns bytes as `Array<number>`:
 * going out, its `writeAll` copies our array element by element before it returns its promise
 * (timed here around the call); coming in, `read` builds an array element by element when its
 * promise settles. The last row is the process's CPU per byte moved end to end (the difference
 * between frames of --size bytes and of 16, as many of each): what is left of it after the first
 * rows' call is the way in and QUIC. Two endpoints in this process on 127.0.0.1.
 *
 *   npx tsx bench/iroh-bytes.ts [--size 1600] [--calls 3000] [--rounds 3]
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { iroh } from '../src/io/transport/iroh.js';
import type * as Iroh from '@number0/iroh/index.js';
import { median } from './stats.js';

const { values } = parseArgs({
  options: { size: { type: 'string', default: '1600' }, calls: { type: 'string', default: '3000' }, rounds: { type: 'string', default: '3' } },
});
const SIZE = Number(values.size);
const CALLS = Number(values.calls);
const ROUNDS = Number(values.rounds);
const ALPN = Array.from(Buffer.from('iroh-raft-bench/0'));

async function endpoint(): Promise<Iroh.Endpoint> {
  const b = iroh.Endpoint.builder();
  iroh.presetMinimal(b);
  b.relayMode(iroh.RelayMode.disabled());
  b.secretKey(Array.from(randomBytes(32)));
  b.alpns([ALPN]);
  b.bindAddr('127.0.0.1:0');
  return b.bind();
}

const a = await endpoint();
const b = await endpoint();
const accepted = (async () => {
  const inc = await b.acceptNext();
  if (inc === null) throw new Error('no incoming connection');
  return (await inc.accept()).connect();
})();
const conn = await a.connect(new iroh.EndpointAddr(b.id(), null, b.addr().directAddresses()), ALPN);
const bi = await conn.openBi();
await bi.send.writeAll([0]);
const peer = await accepted;
const rbi = await peer.acceptBi();
await rbi.recv.readExact(1);

const src = randomBytes(SIZE);
const shapes: Record<string, () => number[]> = {
  'holey (new Array(n), by index)': () => {
    const arr = new Array<number>(SIZE);
    for (let i = 0; i < SIZE; i++) arr[i] = src[i]!;
    return arr;
  },
  'packed (push)': () => {
    const arr: number[] = [];
    for (let i = 0; i < SIZE; i++) arr.push(src[i]!);
    return arr;
  },
  'Array.from': () => Array.from(src),
};

/** ns per byte inside writeAll's synchronous part, and to build the array. */
async function sendRound(build: () => number[]): Promise<{ call: number; build: number }> {
  const reading = (async () => {
    let got = 0;
    while (got < SIZE * CALLS) got += (await rbi.recv.read(64 * 1024)).length;
  })();
  let callNs = 0n;
  let buildNs = 0n;
  for (let j = 0; j < CALLS; j++) {
    const t0 = process.hrtime.bigint();
    const arr = build();
    const t1 = process.hrtime.bigint();
    const p = bi.send.writeAll(arr);
    const t2 = process.hrtime.bigint();
    await p;
    buildNs += t1 - t0;
    callNs += t2 - t1;
  }
  await reading;
  return { call: Number(callNs) / CALLS / SIZE, build: Number(buildNs) / CALLS / SIZE };
}

/** CPU µs of this whole process (both endpoints, tokio included) to move `calls` frames of `size` bytes. */
async function moveCpu(size: number): Promise<number> {
  const arr = Array.from(randomBytes(size));
  const c0 = process.cpuUsage();
  const sending = (async () => {
    for (let j = 0; j < CALLS; j++) await bi.send.writeAll(arr);
  })();
  let got = 0;
  while (got < size * CALLS) got += (await rbi.recv.read(64 * 1024)).length;
  await sending;
  const c = process.cpuUsage(c0);
  return c.user + c.system;
}

const rows: string[][] = [];
for (const [name, build] of Object.entries(shapes)) {
  const calls: number[] = [];
  const builds: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const x = await sendRound(build);
    calls.push(x.call);
    builds.push(x.build);
  }
  rows.push([`out, ${name}`, median(calls).toFixed(1), median(builds).toFixed(1)]);
}
// Both ways: the whole process's CPU for frames of SIZE against frames of 16 bytes, as many of
// them; the difference per byte is what one more byte costs end to end (out, QUIC, in).
const perByte: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const large = await moveCpu(SIZE);
  const small = await moveCpu(16);
  perByte.push(((large - small) * 1000) / ((SIZE - 16) * CALLS));
}
rows.push(['one more byte moved, whole process CPU (out, QUIC, in)', median(perByte).toFixed(1), '']);

console.log(`Iroh binding, ${SIZE}-byte writes, ${CALLS} calls per round, median of ${ROUNDS} rounds (ns per byte)`);
console.log(['what', 'binding (writeAll call)', 'building the array'].join(' | '));
for (const row of rows) console.log(row.join(' | '));
conn.close(0n, []);
await a.close();
await b.close();
process.exit(0);
