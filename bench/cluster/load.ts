/**
 * The load on a system: the keys preloaded for reads, and the load generator (bench/load-worker.ts,
 * autocannon in a process of its own) that drives it and reports what it measured.
 */
import { spawn } from 'node:child_process';
import { callRetrying, describe, forEachLimit } from '../kv-client.js';
import { PRELOAD_KEYS_MAX, putRequest, readKey, valueOf } from '../workload.js';
import type { Api, LoadConfig, LoadResult, WorkerMessage } from '../workload.js';
import { cpuSeconds } from '../proc.js';
import type { RssPoller } from '../proc.js';
import type { Config } from './flags.js';
import { fmtInt } from './format.js';
import { progress } from './progress.js';
import { ACKED_KEPT_MAX, LOAD_TIMEOUT_S, LOAD_WORKER, ROOT, SIDE_CONCURRENCY } from './settings.js';

/** A system to put the load on. */
export interface Target {
  readonly system: string;
  /** The HTTP API the URLs speak. */
  readonly api: Api;
  readonly urls: readonly string[];
  /** Local processes to watch (/proc), none with --target. */
  readonly procs: readonly { readonly name: string; readonly pid: number }[];
  /** True when the URLs are nodes with /metrics and /v1/status. */
  readonly isNode: boolean;
  /** Watched processes that exited without being asked to, described (empty while all run). */
  readonly exits: () => string[];
  /** URLs whose process still runs (all of them with --target). */
  readonly liveUrls: () => string[];
}

/** Writes the keys that reads and compare-and-sets use (none for a write-only mix), round robin over the URLs. */
export async function preload(t: Target, cfg: Config, prefix: string): Promise<{ keys: number; seconds: number }> {
  if (cfg.mix.readPercent === 0 && cfg.mix.cas !== true) return { keys: 0, seconds: 0 };
  const keys = Math.min(cfg.keys, PRELOAD_KEYS_MAX);
  progress(`[${t.system}] preloading ${keys} keys through ${t.urls.length} URL(s)`);
  const t0 = performance.now();
  await forEachLimit(
    Array.from({ length: keys }, (_, i) => i),
    SIDE_CONCURRENCY,
    async (i) => {
      const key = readKey(prefix, i);
      const req = putRequest(t.api, key, valueOf(key, cfg.valueSize));
      const a = await callRetrying(() => `${t.urls[i % t.urls.length]!}${req.path}`, req);
      if (a.status !== 200) throw new Error(`preloading ${key} failed: ${describe(a)}`);
    },
  );
  return { keys, seconds: (performance.now() - t0) / 1000 };
}

/** What the load generator is told to do. */
function loadConfig(t: Target, cfg: Config, prefix: string, readKeys: number): LoadConfig {
  return {
    api: t.api,
    urls: t.urls,
    connections: cfg.connections,
    durationS: cfg.durationS,
    valueSize: cfg.valueSize,
    mix: cfg.mix,
    consistency: cfg.consistency,
    prefix,
    readKeys,
    timeoutS: LOAD_TIMEOUT_S,
    ackedKeptMax: ACKED_KEPT_MAX,
    ...(cfg.direct && t.api === 'iroh-raft' ? { direct: { shards: cfg.shards, tenant: 'default' } } : {}),
    ...(cfg.client && t.api === 'iroh-raft' ? { client: true } : {}),
    ...(cfg.warmupS > 0 ? { warmupS: cfg.warmupS } : {}),
  };
}

/** Prints the load generator's progress line, after any watched process that fell over since the last one. */
function reportProgress(t: Target, m: Extract<WorkerMessage, { type: 'progress' }>, reported: Set<string>): void {
  for (const e of t.exits()) {
    if (!reported.has(e)) progress(`[${t.system}] ${e}`);
    reported.add(e);
  }
  progress(
    `[${t.system}] ${m.elapsedS.toFixed(0).padStart(3)} s  ${fmtInt(m.okPerSec).padStart(8)} ok/s${m.nonOkPerSec > 0 ? `  ${fmtInt(m.nonOkPerSec)} non-2xx/s` : ''}`,
  );
}

/** Runs the load generator process; resolves with its result and its CPU seconds over the run. */
export async function drive(
  t: Target,
  cfg: Config,
  prefix: string,
  readKeys: number,
  rss: RssPoller,
  atStart: () => void,
): Promise<{ result: LoadResult; cpuS: number | undefined; pid: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', LOAD_WORKER], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: ROOT });
  const pid = child.pid!;
  rss.add(pid);
  let cpu0: number | undefined;
  let cpuS: number | undefined;
  const reported = new Set<string>();
  const result = await new Promise<LoadResult>((resolve, reject) => {
    let done = false;
    child.on('message', (m: WorkerMessage) => {
      switch (m.type) {
        case 'ready':
          // With a warm-up the measured window starts at 'measuring' instead.
          if (cfg.warmupS === 0) {
            atStart();
            cpu0 = cpuSeconds(pid);
          }
          child.send(loadConfig(t, cfg, prefix, readKeys));
          break;
        case 'measuring':
          atStart();
          cpu0 = cpuSeconds(pid);
          break;
        case 'progress':
          reportProgress(t, m, reported);
          break;
        case 'result': {
          const c1 = cpuSeconds(pid);
          cpuS = c1 !== undefined && cpu0 !== undefined ? c1 - cpu0 : undefined;
          done = true;
          resolve(m.result);
          break;
        }
        case 'error':
          done = true;
          reject(new Error(`load generator failed: ${m.message}`));
          break;
      }
    });
    child.once('exit', (code, signal) => {
      if (!done) reject(new Error(`load generator exited (${code ?? signal}) without a result`));
    });
  });
  return { result, cpuS, pid };
}
