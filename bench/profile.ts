/**
 * Where the CPU time of a node goes: reads the `.cpuprofile` files `node --cpu-prof` wrote (one
 * per thread: the main thread and each shard worker) and sums self time by area of the code
 * (HTTP, router, transport, the Iroh binding, raft, LMDB, encoding, GC...) and by function.
 *
 *   npx tsx bench/profile.ts DIR [--top 15]
 *
 * bench/cluster.ts --profile starts its nodes with --cpu-prof and prints this summary after the
 * run. Native code is not sampled on its own: time inside a native call (the Iroh binding's
 * byte conversion, an LMDB commit) is counted to the JavaScript function that made the call.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
}
interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Areas of the code, the first match wins (tested against the frame's URL, then its name). */
const AREAS: readonly (readonly [string, RegExp])[] = [
  ['Iroh binding', /@number0\/iroh/],
  ['LMDB', /\/lmdb\//],
  ['msgpack', /msgpackr/],
  ['prom-client', /prom-client/],
  ['pino (logs)', /pino|sonic-boom|thread-stream/],
  ['raft core', /\/shards\/raft\//],
  ['shard host + KV', /\/shards\//],
  ['worker loop + ring', /\/workers\//],
  ['transport', /\/io\/transport|\/io\/ticket/],
  ['HTTP API', /\/io\/http\//],
  ['router', /\/router\//],
  ['node main', /\/main\//],
  ['node:http + net', /node:(_http|http|net|stream|internal\/streams|internal\/http|internal\/stream_base)/],
  ['other Node internals', /^node:/],
];

/** A profile's named pseudo-frames. */
const SPECIAL: Record<string, string> = {
  '(garbage collector)': 'GC',
  '(idle)': 'idle',
  '(program)': 'V8/native (program)',
  '(root)': 'V8/native (program)',
};

function areaOf(f: CallFrame): string {
  const special = SPECIAL[f.functionName];
  if (special !== undefined && f.url === '') return special;
  for (const [name, re] of AREAS) if (re.test(f.url)) return name;
  if (f.url === '') return 'native builtins';
  return 'other JS';
}

export interface ThreadProfile {
  readonly file: string;
  /** Sampled wall time of the profile, ms. */
  readonly totalMs: number;
  /** Time not idle, ms. */
  readonly busyMs: number;
  /** Self time by area, ms, largest first (idle left out). */
  readonly areas: readonly { readonly area: string; readonly ms: number }[];
  /** Self time by function, ms, largest first (idle left out). */
  readonly functions: readonly { readonly fn: string; readonly area: string; readonly ms: number }[];
}

/**
 * Self time in `file`; with `window` (CLOCK_MONOTONIC microseconds, the clock of both the
 * profile's timestamps and `process.hrtime`), only the samples taken inside it.
 */
export function summarizeProfile(file: string, window?: { readonly fromUs: number; readonly toUs: number }): ThreadProfile {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) byId.set(n.id, n);
  const selfUs = new Map<number, number>();
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    const d = p.timeDeltas[i] ?? 0;
    t += d;
    if (window && (t < window.fromUs || t > window.toUs)) continue;
    const id = p.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + d);
  }
  const areas = new Map<string, number>();
  const fns = new Map<string, { area: string; us: number }>();
  let busy = 0;
  let totalUs = 0;
  for (const us of selfUs.values()) totalUs += us;
  for (const [id, us] of selfUs) {
    const f = byId.get(id)!.callFrame;
    const area = areaOf(f);
    if (area === 'idle') continue;
    busy += us;
    areas.set(area, (areas.get(area) ?? 0) + us);
    const short =
      f.url === '' ? '' : ` ${f.url.replace(/^file:\/\/.*?\/(node_modules|dist|src|bench)\//, '$1/').replace(/^node:/, 'node:')}:${f.lineNumber + 1}`;
    const key = `${f.functionName || '(anonymous)'}${short}`;
    const e = fns.get(key) ?? { area, us: 0 };
    e.us += us;
    fns.set(key, e);
  }
  return {
    file,
    totalMs: totalUs / 1000,
    busyMs: busy / 1000,
    areas: [...areas].map(([area, us]) => ({ area, ms: us / 1000 })).sort((a, b) => b.ms - a.ms),
    functions: [...fns].map(([fn, e]) => ({ fn, area: e.area, ms: e.us / 1000 })).sort((a, b) => b.ms - a.ms),
  };
}

/** Every `.cpuprofile` in `dir`, main threads first (Node names them CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile). */
export function summarizeDir(dir: string, window?: { readonly fromUs: number; readonly toUs: number }): ThreadProfile[] {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  const thread = (f: string): number => Number(f.split('.')[4] ?? 0);
  files.sort((a, b) => thread(a) - thread(b) || a.localeCompare(b));
  return files.map((f) => summarizeProfile(join(dir, f), window));
}

/** A text report: per thread, busy share, areas and the top functions by self time. */
export function formatProfiles(title: string, profiles: readonly ThreadProfile[], top = 12): string {
  const lines = [title];
  for (const p of profiles) {
    const busyPct = p.totalMs > 0 ? (p.busyMs / p.totalMs) * 100 : 0;
    const thread = basename(p.file).split('.')[4] === '0' ? 'main thread' : `worker thread ${basename(p.file).split('.')[4]}`;
    lines.push(`  ${thread} (${basename(p.file)}): busy ${p.busyMs.toFixed(0)} ms of ${p.totalMs.toFixed(0)} ms (${busyPct.toFixed(0)} %)`);
    const pct = (ms: number): string => `${((ms / Math.max(p.busyMs, 1e-9)) * 100).toFixed(1).padStart(5)} %`;
    lines.push(
      `    by area (% of busy): ${p.areas
        .slice(0, 10)
        .map((a) => `${a.area} ${pct(a.ms).trim()}`)
        .join(', ')}`,
    );
    for (const f of p.functions.slice(0, top)) lines.push(`    ${pct(f.ms)}  ${f.fn}  [${f.area}]`);
  }
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const dir = process.argv[2];
  if (dir === undefined) {
    console.error('usage: npx tsx bench/profile.ts DIR [--top N]');
    process.exit(2);
  }
  const i = process.argv.indexOf('--top');
  const top = i > 0 ? Number(process.argv[i + 1]) : 15;
  if (!Number.isInteger(top) || top < 1) {
    console.error(`--top must be a whole number >= 1, got '${process.argv[i + 1]}'`);
    process.exit(2);
  }
  let profiles: ThreadProfile[];
  try {
    profiles = summarizeDir(dir);
  } catch (e) {
    console.error(`cannot read profiles in ${dir}: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(2);
  }
  if (profiles.length === 0) {
    console.error(`no .cpuprofile files in ${dir}`);
    process.exit(2);
  }
  console.log(formatProfiles(`profiles in ${dir}`, profiles, top));
}
