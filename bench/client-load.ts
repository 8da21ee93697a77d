/**
 * --client: the load of bench/load-worker.ts driven through iroh-raft's own client library
 * (src/client) instead of autocannon: `connections` closed loops over one Client given every URL,
 * each one request at a time. The client reads GET /v1/placement and sends writes and
 * linearizable or lease reads straight to the shard's leader, so the nodes' forwarded count shows
 * what leader-awareness saves (compare with the same run without --client). Keys, values and the
 * result are those of the autocannon load, so the read-back and the report are the same.
 */
import { Client, ClientError } from '../src/client/index.js';
import { OpStats } from './op-stats.js';
import type { LoadConfig, LoadResult, WorkerMessage } from './workload.js';
import { readKey, valueOf, writeKey } from './workload.js';

/** OpStats that also count a client call that threw, by its code and status. */
class ClientOpStats extends OpStats {
  failed(e: unknown): void {
    const code = e instanceof ClientError ? e.code : 'Thrown';
    const status = e instanceof ClientError ? e.status : 0;
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
    this.errorCodes.set(`${status} ${code}`, (this.errorCodes.get(`${status} ${code}`) ?? 0) + 1);
  }
}

/** Runs the load through the client; `send` carries progress messages to the parent. */
export async function runClientLoad(cfg: LoadConfig, send: (m: WorkerMessage) => Promise<void>): Promise<LoadResult> {
  if (cfg.mix.cas === true) throw new Error('--client does not drive --mix cas');
  const client = new Client({ endpoints: cfg.urls, timeoutMs: Math.min(50_000, cfg.timeoutS * 1000), lanesMax: cfg.connections });
  const put = new ClientOpStats();
  const get = new ClientOpStats();
  let ok = 0;
  let nonOk = 0;
  let ackedWrites = 0;
  const acked: [number, number][] = [];
  let readMismatches = 0;
  const readMismatchSamples: string[] = [];
  const t0 = performance.now();
  const end = t0 + cfg.durationS * 1000;

  const loop = async (instance: number): Promise<void> => {
    for (let seq = 0; performance.now() < end;) {
      const read = cfg.mix.readPercent === 100 || (cfg.mix.readPercent > 0 && Math.random() * 100 < cfg.mix.readPercent);
      const start = process.hrtime.bigint();
      if (read) {
        const key = readKey(cfg.prefix, Math.floor(Math.random() * cfg.readKeys));
        try {
          const g = await client.get(key, { consistency: cfg.consistency });
          get.latency.recordNs(process.hrtime.bigint() - start);
          get.statuses.set(200, (get.statuses.get(200) ?? 0) + 1);
          ok++;
          const want = valueOf(key, cfg.valueSize);
          if (g === null || !want.equals(g.value)) {
            readMismatches++;
            if (readMismatchSamples.length < 10) readMismatchSamples.push(`${key}: ${g === null ? 'no value' : `${g.value.length} bytes`}`);
          }
        } catch (e) {
          nonOk++;
          get.failed(e);
        }
        continue;
      }
      const s = seq++;
      const key = writeKey(cfg.prefix, instance, s);
      try {
        await client.put(key, valueOf(key, cfg.valueSize));
        put.latency.recordNs(process.hrtime.bigint() - start);
        put.statuses.set(200, (put.statuses.get(200) ?? 0) + 1);
        ok++;
        ackedWrites++;
        if (acked.length < cfg.ackedKeptMax) acked.push([instance, s]);
        else {
          const j = Math.floor(Math.random() * ackedWrites);
          if (j < cfg.ackedKeptMax) acked[j] = [instance, s];
        }
      } catch (e) {
        nonOk++;
        put.failed(e);
      }
    }
  };

  let last = { t: t0, ok: 0, nonOk: 0 };
  const progress = setInterval(() => {
    const t = performance.now();
    const dt = (t - last.t) / 1000;
    void send({ type: 'progress', elapsedS: (t - t0) / 1000, okPerSec: (ok - last.ok) / dt, nonOkPerSec: (nonOk - last.nonOk) / dt });
    last = { t, ok, nonOk };
  }, 1000);
  try {
    await Promise.all(Array.from({ length: cfg.connections }, (_, i) => loop(i)));
  } finally {
    clearInterval(progress);
    await client.close();
  }
  return {
    elapsedS: (performance.now() - t0) / 1000,
    put: put.toJSON(),
    get: get.toJSON(),
    readMismatches,
    readMismatchSamples,
    ackedWrites,
    acked,
    ackedSampled: ackedWrites > acked.length,
    // No autocannon here: its cross-check totals are ours.
    autocannon: { requests: ok + nonOk, errors: 0, timeouts: 0, non2xx: nonOk, mismatches: 0, resets: 0 },
    connErrors: {},
    casMax: {},
  };
}
