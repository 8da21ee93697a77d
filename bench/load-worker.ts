/**
 * The load generator of bench/cluster.ts, in a process of its own so that nothing else shares
 * its event loop: one autocannon instance per target URL, the connections split between them,
 * each connection one request at a time (closed loop: a slow answer delays that connection's next
 * request, so latencies under overload show as lower throughput, not as queueing).
 *
 * Started with an IPC channel: it says `ready` once loaded, then takes one LoadConfig and answers
 * with progress messages every second and one result (or error) message, then exits.
 *
 * Latency is measured here, not taken from autocannon (whose histogram holds whole milliseconds):
 * `setupRequest` runs just before autocannon writes the request, `onResponse` when its last byte
 * is parsed; both stamp `process.hrtime.bigint()` into the request's context.
 */
import autocannon from 'autocannon';
import { hashOfPlacement } from '../src/wire/shard-hash.js';
import type { ShardHash } from '../src/wire/shard-hash.js';
import { runClientLoad } from './client-load.js';
import { OpStats } from './op-stats.js';
import type { LoadConfig, LoadResult, WorkerMessage } from './workload.js';
import { casRequest, casValueOf, errorCodeOf, getRequest, putRequest, readKey, readValue, valueOf, versionOf, writeKey } from './workload.js';

/** autocannon's per-request context (fresh for every request when the request list has one entry). */
interface RequestContext {
  t0: bigint;
  op: 'put' | 'get';
  key: string;
  instance: number;
  /** A put's write number; a compare-and-set's preloaded key index. */
  seq: number;
}

/**
 * --direct: the cluster's key -> shard function from GET /v1/placement (the bench's nodes run
 * with auth off, so it comes with the placement key), once the node knows it.
 */
async function placementHash(url: string): Promise<ShardHash> {
  for (let tries = 0; ; tries++) {
    const p = (await (await fetch(`${url}/v1/placement`)).json()) as { hash: string; placementKey?: string };
    const fn = hashOfPlacement(p.hash, p.placementKey);
    if (fn !== undefined) return fn;
    if (tries >= 100) throw new Error(`--direct: ${url} names no key -> shard function this bench computes: ${JSON.stringify(p.hash)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * --direct: which shards each URL's node leads, from its GET /v1/status, refreshed every 0.5 s
 * while the load runs (a node that does not answer keeps its last view).
 */
class LeaderMap {
  private led: Set<number>[];
  private lists: number[][];
  private timer: NodeJS.Timeout | undefined;

  private constructor(private readonly urls: readonly string[]) {
    this.led = urls.map(() => new Set());
    this.lists = urls.map(() => []);
  }

  static async start(urls: readonly string[], shards: number): Promise<LeaderMap> {
    const m = new LeaderMap(urls);
    await m.refresh(shards);
    m.timer = setInterval(() => void m.refresh(shards), 500);
    return m;
  }

  private async refresh(shards: number): Promise<void> {
    await Promise.all(
      this.urls.map(async (u, i) => {
        try {
          const st = (await (await fetch(`${u}/v1/status`)).json()) as { shards?: { shard: number; role: string }[] };
          const mine = (st.shards ?? []).filter((s) => s.role === 'leader' && s.shard < shards).map((s) => s.shard);
          this.led[i] = new Set(mine);
          this.lists[i] = mine;
        } catch {
          // Unreachable for now: keep what it led.
        }
      }),
    );
  }

  ledSet(i: number): ReadonlySet<number> | undefined {
    return this.led[i];
  }

  ledBy(i: number): readonly number[] | undefined {
    return this.lists[i];
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

function send(m: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(m, undefined, {}, () => resolve());
  });
}

async function run(cfg: LoadConfig): Promise<LoadResult> {
  const put = new OpStats();
  const get = new OpStats();
  const connErrors = new Map<string, number>();
  let readMismatches = 0;
  const readMismatchSamples: string[] = [];
  let ackedWrites = 0;
  let ackedWritesMeasured = 0;
  const acked: [number, number][] = [];
  /** --mix cas: the version last seen per preloaded key (all start at 1), and the highest acknowledged. */
  const casKnown = new Map<number, number>();
  const casMax = new Map<number, number>();
  let ok = 0;
  let nonOk = 0;
  const warmupS = cfg.warmupS ?? 0;
  /** False during the warm-up: answers are checked and counted by status, not timed. */
  let measuring = warmupS === 0;
  const expected = new Map<string, string>();
  const expectedValue = (key: string): string => {
    // Preloaded values are read over and over: keep the small ones as strings to compare with.
    let v = expected.get(key);
    if (v === undefined) {
      v = valueOf(key, cfg.valueSize).toString('latin1');
      if (cfg.valueSize <= 4096) expected.set(key, v);
    }
    return v;
  };

  const leaders = cfg.direct === undefined ? undefined : await LeaderMap.start(cfg.urls, cfg.direct.shards);
  const direct = cfg.direct === undefined ? undefined : { ...cfg.direct, hash: await placementHash(cfg.urls[0]!) };
  /** With --direct: preloaded read keys by shard. */
  const readKeysByShard: number[][] = [];
  if (direct !== undefined) {
    for (let s = 0; s < direct.shards; s++) readKeysByShard.push([]);
    for (let k = 0; k < cfg.readKeys; k++) readKeysByShard[direct.hash.shardOf(direct.tenant, Buffer.from(readKey(cfg.prefix, k)), direct.shards)]!.push(k);
  }
  /** A preloaded read key: with --direct, one on a shard the instance's node leads (when it leads any). */
  const pickReadKey = (index: number): number => {
    const led = leaders?.ledBy(index);
    if (direct !== undefined && led !== undefined && led.length > 0) {
      const keys = readKeysByShard[led[Math.floor(Math.random() * led.length)]!]!;
      if (keys.length > 0) return keys[Math.floor(Math.random() * keys.length)]!;
    }
    return Math.floor(Math.random() * cfg.readKeys);
  };

  const instance = (index: number, url: string, connections: number): Promise<autocannon.Result> => {
    let seq = 0;
    /** The next write seq of this instance: with --direct, one whose key's shard its node leads (seqs skipped are never written). */
    const nextSeq = (): number => {
      const led = leaders?.ledSet(index);
      if (direct === undefined || led === undefined || led.size === 0) return seq++;
      for (;;) {
        const s = seq++;
        if (led.has(direct.hash.shardOf(direct.tenant, Buffer.from(writeKey(cfg.prefix, index, s)), direct.shards))) return s;
      }
    };
    const setupRequest = (req: autocannon.Request, context: object): autocannon.Request => {
      const ctx = context as RequestContext;
      const read = cfg.mix.readPercent === 100 || (cfg.mix.readPercent > 0 && Math.random() * 100 < cfg.mix.readPercent);
      ctx.instance = index;
      let r;
      if (cfg.mix.cas === true) {
        ctx.op = 'put';
        ctx.seq = Math.floor(Math.random() * cfg.readKeys);
        ctx.key = readKey(cfg.prefix, ctx.seq);
        const expected = casKnown.get(ctx.seq) ?? 1;
        r = casRequest(ctx.key, expected, casValueOf(ctx.key, expected + 1, cfg.valueSize));
      } else if (read) {
        ctx.op = 'get';
        ctx.key = readKey(cfg.prefix, pickReadKey(index));
        r = getRequest(cfg.api, ctx.key, cfg.consistency);
      } else {
        ctx.op = 'put';
        ctx.seq = nextSeq();
        ctx.key = writeKey(cfg.prefix, index, ctx.seq);
        r = putRequest(cfg.api, ctx.key, valueOf(ctx.key, cfg.valueSize));
      }
      req.method = r.method;
      req.path = r.path;
      req.body = r.body;
      // A fresh object: autocannon writes content-length into the headers it is given, and a
      // shared object would carry a PUT's length into the next GET.
      req.headers = r.contentType === undefined ? {} : { 'content-type': r.contentType };
      if (cfg.tenant !== undefined) req.headers['x-tenant'] = cfg.tenant;
      ctx.t0 = process.hrtime.bigint();
      return req;
    };
    const onResponse = (status: number, body: string, context: object): void => {
      const t1 = process.hrtime.bigint();
      const ctx = context as RequestContext;
      const stats = ctx.op === 'put' ? put : get;
      stats.statuses.set(status, (stats.statuses.get(status) ?? 0) + 1);
      if (cfg.mix.cas === true) {
        // Both a success and a conflict tell the key's current version.
        const v = versionOf(body);
        if (v !== undefined && (status === 200 || status === 412)) casKnown.set(ctx.seq, Math.max(casKnown.get(ctx.seq) ?? 1, v));
        if (status === 200 && v !== undefined) casMax.set(ctx.seq, Math.max(casMax.get(ctx.seq) ?? 0, v));
      }
      if (status < 200 || status > 299) {
        nonOk++;
        const code = errorCodeOf(status, body);
        stats.errorCodes.set(code, (stats.errorCodes.get(code) ?? 0) + 1);
        return;
      }
      ok++;
      if (measuring) {
        stats.latency.recordNs(t1 - ctx.t0);
        if (ctx.op === 'put') ackedWritesMeasured++;
      }
      if (cfg.mix.cas === true) {
        ackedWrites++;
      } else if (ctx.op === 'put') {
        ackedWrites++;
        if (acked.length < cfg.ackedKeptMax) {
          acked.push([ctx.instance, ctx.seq]);
        } else {
          // Reservoir sampling: every acknowledged write is kept with the same probability.
          const j = Math.floor(Math.random() * ackedWrites);
          if (j < cfg.ackedKeptMax) acked[j] = [ctx.instance, ctx.seq];
        }
      } else {
        let got: string | null;
        try {
          got = readValue(cfg.api, body);
        } catch {
          got = null;
        }
        if (got !== expectedValue(ctx.key)) {
          readMismatches++;
          if (readMismatchSamples.length < 10)
            readMismatchSamples.push(`${ctx.key}: ${got === null ? 'no value' : `${got.length} bytes, starts ${JSON.stringify(got.slice(0, 40))}`}`);
        }
      }
    };
    return autocannon({
      url,
      connections,
      // Split like the connections: each instance its part of the rate (at least 1 request/s).
      ...(cfg.ratePerSec === undefined ? {} : { overallRate: Math.max(1, Math.round((cfg.ratePerSec * connections) / cfg.connections)) }),
      duration: warmupS + cfg.durationS,
      timeout: cfg.timeoutS,
      requests: [{ setupRequest, onResponse }],
      setupClient: (client) => {
        // 'connError' is emitted by autocannon's Client but missing from its typings.
        (client as unknown as NodeJS.EventEmitter).on('connError', (e: unknown) => {
          const m = e instanceof Error ? e.message : String(e);
          connErrors.set(m, (connErrors.get(m) ?? 0) + 1);
        });
      },
    });
  };

  const share = (i: number): number => Math.floor(cfg.connections / cfg.urls.length) + (i < cfg.connections % cfg.urls.length ? 1 : 0);
  const t0 = performance.now();
  let measuredFrom = t0;
  const warmup =
    warmupS === 0
      ? undefined
      : setTimeout(() => {
          measuring = true;
          measuredFrom = performance.now();
          void send({ type: 'measuring' });
        }, warmupS * 1000);
  let last = { t: t0, ok: 0, nonOk: 0 };
  const progress = setInterval(() => {
    const t = performance.now();
    const dt = (t - last.t) / 1000;
    void send({ type: 'progress', elapsedS: (t - t0) / 1000, okPerSec: (ok - last.ok) / dt, nonOkPerSec: (nonOk - last.nonOk) / dt });
    last = { t, ok, nonOk };
  }, 1000);
  let results: autocannon.Result[];
  try {
    results = await Promise.all(cfg.urls.map((u, i) => instance(i, u, share(i))));
  } finally {
    clearInterval(progress);
    clearTimeout(warmup);
    leaders?.stop();
  }
  if (!measuring) throw new Error(`the load ended before its ${warmupS} s warm-up did`);
  const elapsedS = (performance.now() - measuredFrom) / 1000;
  const sum = (f: (r: autocannon.Result) => number): number => results.reduce((a, r) => a + f(r), 0);
  return {
    elapsedS,
    put: put.toJSON(),
    get: get.toJSON(),
    readMismatches,
    readMismatchSamples,
    ackedWrites,
    ackedWritesMeasured,
    acked,
    ackedSampled: ackedWrites > acked.length,
    autocannon: {
      requests: sum((r) => r.requests.total),
      errors: sum((r) => r.errors),
      timeouts: sum((r) => r.timeouts),
      non2xx: sum((r) => r.non2xx),
      mismatches: sum((r) => r.mismatches),
      resets: sum((r) => (r as { resets?: number }).resets ?? 0),
    },
    connErrors: Object.fromEntries(connErrors),
    casMax: Object.fromEntries([...casMax].map(([k, v]) => [String(k), v])),
  };
}

let finished = false;
process.once('message', (cfg: LoadConfig) => {
  void (async () => {
    try {
      await send({ type: 'result', result: await (cfg.client === true ? runClientLoad(cfg, send) : run(cfg)) });
    } catch (e) {
      process.exitCode = 1;
      await send({ type: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    }
    finished = true;
    process.disconnect?.();
  })();
});
// The parent went away (interrupted): nobody will read the result, so stop loading the servers.
process.once('disconnect', () => {
  if (!finished) process.exit(1);
});
void send({ type: 'ready' });
