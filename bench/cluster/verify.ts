/**
 * After the load: every acknowledged write (or a uniform sample of them) is read back through a
 * random live node, linearizably, and must hold the value written; with --mix cas, every key a
 * compare-and-set was acknowledged on must be at or past its highest acknowledged version.
 */
import { callRetrying, describe, forEachLimit } from '../kv-client.js';
import type { Answer } from '../kv-client.js';
import { casValueOf, getRequest, readKey, readValue, valueOf, writeKey } from '../workload.js';
import type { KvRequest, LoadResult } from '../workload.js';
import type { Config } from './flags.js';
import type { Target } from './load.js';
import { progress } from './progress.js';
import { SIDE_CONCURRENCY } from './settings.js';

export interface VerifyResult {
  readonly ackedWrites: number;
  readonly checked: number;
  /** True when `checked` is a uniform sample of the acknowledged writes, not all of them. */
  readonly sampled: boolean;
  readonly ok: number;
  /** 404: an acknowledged write is gone. */
  readonly missing: number;
  /** 200 with another value. */
  readonly wrong: number;
  /** Could not be read (errors after retries): neither confirmed nor refuted. */
  readonly unreadable: number;
  readonly unreadableCodes: Record<string, number>;
  readonly samples: readonly string[];
  readonly seconds: number;
}

/** What reading one acknowledged write back found. */
type Verdict = 'ok' | { readonly missing: string } | { readonly wrong: string };

/**
 * Reads `items` back through random live nodes (SIDE_CONCURRENCY at a time, retrying 503/504 and
 * network errors on another node) and counts what `judge` says of each answer; answers other than
 * 200 and 404 count as unreadable, by code.
 */
async function readBack<T>(
  t: Target,
  items: readonly T[],
  request: (item: T) => KvRequest,
  judge: (item: T, a: Answer) => Verdict,
): Promise<Omit<VerifyResult, 'ackedWrites' | 'checked' | 'sampled'>> {
  const t0 = performance.now();
  let ok = 0;
  let missing = 0;
  let wrong = 0;
  let unreadable = 0;
  const unreadableCodes: Record<string, number> = {};
  const samples: string[] = [];
  const note = (s: string): void => {
    if (samples.length < 10) samples.push(s);
  };
  const unread = (code: string, what: string): void => {
    unreadable++;
    unreadableCodes[code] = (unreadableCodes[code] ?? 0) + 1;
    note(`${what}: ${code}`);
  };
  await forEachLimit(items, SIDE_CONCURRENCY, async (item) => {
    const req = request(item);
    let url = '';
    let a: Answer;
    try {
      a = await callRetrying(() => {
        const live = t.liveUrls();
        url = live[Math.floor(Math.random() * live.length)] ?? t.urls[0]!;
        return `${url}${req.path}`;
      }, req);
    } catch (e) {
      return unread(e instanceof Error ? e.message : String(e), `${req.path} via ${url}`);
    }
    if (a.status !== 200 && a.status !== 404) return unread(describe(a), `${req.path} via ${url}`);
    const v = judge(item, a);
    if (v === 'ok') ok++;
    else if ('missing' in v) {
      missing++;
      note(`${v.missing} (via ${url})`);
    } else {
      wrong++;
      note(`${v.wrong} (via ${url})`);
    }
  });
  return { ok, missing, wrong, unreadable, unreadableCodes, samples, seconds: (performance.now() - t0) / 1000 };
}

/** Reads the acknowledged writes of load `r` back (for --mix cas: the keys it changed). */
export async function verify(t: Target, cfg: Config, prefix: string, r: LoadResult): Promise<VerifyResult> {
  if (cfg.mix.cas === true) return verifyCas(t, cfg, prefix, r);
  const items = r.acked;
  if (items.length > 0)
    progress(
      `[${t.system}] reading back ${items.length}${r.ackedSampled ? ` (a sample of ${r.ackedWrites})` : ''} acknowledged writes (linearizable, random node)`,
    );
  const key = ([instance, seq]: readonly [number, number]): string => writeKey(prefix, instance, seq);
  const found = await readBack(
    t,
    items,
    (w) => getRequest(t.api, key(w), 'linearizable'),
    (w, a) => {
      let value: string | null | undefined;
      try {
        value = a.status === 200 ? readValue(t.api, a.body.toString('latin1')) : null;
      } catch {
        value = undefined;
      }
      if (value === null) return { missing: `${key(w)}: ${describe(a)}` };
      if (value !== undefined && value === valueOf(key(w), cfg.valueSize).toString('latin1')) return 'ok';
      return {
        wrong: `${key(w)}: ${value === undefined ? `unparsable answer ${JSON.stringify(a.body.subarray(0, 60).toString('latin1'))}` : `${value.length} bytes, starts ${JSON.stringify(value.slice(0, 40))}`}`,
      };
    },
  );
  return { ackedWrites: r.ackedWrites, checked: items.length, sampled: r.ackedSampled, ...found };
}

/**
 * --mix cas: every key a compare-and-set was acknowledged on must be at least at the highest
 * acknowledged version, and hold the value of the version it is at (a timed-out compare-and-set
 * may have applied after all, so a higher version is fine; its value is just as checkable).
 */
async function verifyCas(t: Target, cfg: Config, prefix: string, r: LoadResult): Promise<VerifyResult> {
  const items = Object.entries(r.casMax).map(([i, v]) => [readKey(prefix, Number(i)), v] as const);
  progress(`[${t.system}] reading back ${items.length} keys changed by ${r.ackedWrites} acknowledged compare-and-sets (linearizable, random node)`);
  const found = await readBack(
    t,
    items,
    ([key]) => getRequest('iroh-raft', key, 'linearizable'),
    ([key, maxVersion], a) => {
      if (a.status === 404) return { missing: `${key}: gone (acknowledged up to version ${maxVersion})` };
      const version = Number(a.headers['x-version']);
      if (version >= maxVersion && a.body.equals(casValueOf(key, version, cfg.valueSize))) return 'ok';
      return {
        wrong: `${key}: version ${version}, acknowledged up to ${maxVersion}, value starts ${JSON.stringify(a.body.subarray(0, 40).toString('latin1'))}`,
      };
    },
  );
  return { ackedWrites: r.ackedWrites, checked: items.length, sampled: false, ...found };
}
