/**
 * Records per second through the Iroh transport between two processes on 127.0.0.1: this process
 * sends `--size`-byte records as fast as the link takes them (batches of `--batch` per event-loop
 * turn, holding the peer's queue under `--queue` bytes so nothing is dropped), a child process
 * receives and counts. Each run lasts `--seconds`; the receiver's count between start and stop is
 * the figure. Prints the median of `--runs` runs.
 *
 *   npx tsx bench/transport.ts [--size 100] [--batch 1000] [--seconds 3] [--runs 3] [--queue 4194304]
 */
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Transport } from '../src/io/transport/index.js';
import { RecordKind } from '../src/wire/index.js';
import { median } from './stats.js';

type ToChild = { op: 'start' } | { op: 'stop' };
type FromChild = { op: 'ready'; ticket: string } | { op: 'started' } | { op: 'stopped'; records: number; bytes: number; seconds: number };

async function receiver(senderId: string): Promise<void> {
  let counting = false;
  let records = 0;
  let bytes = 0;
  let t0 = 0n;
  const t = await Transport.start({
    secretKey: randomBytes(32),
    bindAddr: '127.0.0.1:0',
    isMember: (id) => id === senderId,
    onRecords: (_peer, rs) => {
      if (!counting) return;
      records += rs.length;
      for (const r of rs) bytes += r.payload.length;
    },
  });
  const send = (m: FromChild): void => void process.send!(m);
  process.on('message', (m: ToChild) => {
    if (m.op === 'start') {
      records = 0;
      bytes = 0;
      counting = true;
      t0 = process.hrtime.bigint();
      send({ op: 'started' });
    } else {
      counting = false;
      send({ op: 'stopped', records, bytes, seconds: Number(process.hrtime.bigint() - t0) / 1e9 });
    }
  });
  process.on('disconnect', () => void t.close().then(() => process.exit(0)));
  send({ op: 'ready', ticket: t.ticket() });
}

async function sender(): Promise<void> {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: '100' },
      batch: { type: 'string', default: '1000' },
      seconds: { type: 'string', default: '3' },
      runs: { type: 'string', default: '3' },
      queue: { type: 'string', default: String(4 * 1024 * 1024) },
    },
  });
  const size = Number(values.size);
  const batch = Number(values.batch);
  const seconds = Number(values.seconds);
  const runs = Number(values.runs);
  const queueMax = Number(values.queue);
  for (const [name, v] of [
    ['size', size],
    ['batch', batch],
    ['seconds', seconds],
    ['runs', runs],
    ['queue', queueMax],
  ] as const) {
    if (!Number.isFinite(v) || v <= 0) {
      console.error(`--${name} must be a positive number`);
      process.exit(2);
    }
  }

  const t = await Transport.start({ secretKey: randomBytes(32), bindAddr: '127.0.0.1:0', isMember: () => true, onRecords: () => undefined });
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--receiver', t.id], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = (): Promise<FromChild> => new Promise((resolve) => child.once('message', (m: FromChild) => resolve(m)));
  const ready = await next();
  if (ready.op !== 'ready') throw new Error('receiver did not start');
  t.addPeer(ready.ticket);
  const peer = (await import('../src/io/ticket.js')).decodeTicket(ready.ticket).id;

  const payload = new Uint8Array(size).fill(7);
  const pump = async (untilMs: number): Promise<void> => {
    while (Date.now() < untilMs) {
      const queued = t.stats().peers[peer]?.queuedBytes ?? 0;
      if (queued < queueMax) {
        for (let i = 0; i < batch; i++) t.send(peer, RecordKind.RaftMessage, i & 0xff, payload);
      }
      await new Promise((r) => setImmediate(r));
    }
  };

  await pump(Date.now() + 1000); // connect and warm up
  const rs: { recordsPerSec: number; mbPerSec: number }[] = [];
  for (let run = 0; run < runs; run++) {
    // Let the warm-up or previous run drain so each run starts from an empty queue.
    while ((t.stats().peers[peer]?.queuedBytes ?? 0) > 0) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 200));
    child.send({ op: 'start' } satisfies ToChild);
    await next();
    await pump(Date.now() + seconds * 1000);
    child.send({ op: 'stop' } satisfies ToChild);
    const m = await next();
    if (m.op !== 'stopped') throw new Error('unexpected message from receiver');
    rs.push({ recordsPerSec: m.records / m.seconds, mbPerSec: m.bytes / m.seconds / 1e6 });
  }
  const s = t.stats();
  child.disconnect();
  await new Promise((r) => child.once('exit', r));
  await t.close();

  const recs = rs.map((r) => r.recordsPerSec);
  const mbs = rs.map((r) => r.mbPerSec);
  console.log(`bench:transport  two processes on 127.0.0.1, ${size}-byte records, ${batch} per turn, ${runs} x ${seconds} s`);
  console.log(`machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, node ${process.version}, ${new Date().toISOString().slice(0, 10)}`);
  console.log(`records/s  ${Math.round(median(recs)).toLocaleString('en-US')}  (runs: ${recs.map((x) => Math.round(x).toLocaleString('en-US')).join(', ')})`);
  console.log(`payload MB/s  ${median(mbs).toFixed(2)}  (wire adds a 12-byte record header each, padding to 4, and 4 bytes per frame)`);
  console.log(
    `sender: ${s.framesSent} frames for ${s.recordsSent} records (${(s.recordsSent / Math.max(1, s.framesSent)).toFixed(0)} records/frame), dropped ${s.dropped}`,
  );
}

if (process.argv[2] === '--receiver') {
  await receiver(process.argv[3]!);
} else {
  await sender();
}
