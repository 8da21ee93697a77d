/**
 * The three micro benches in one go, with short settings: bench/raft-core.ts, bench/ring.ts and
 * bench/store.ts run one after the other as child processes (not at once: they would share the
 * cores), their printed tables are parsed, and one combined table is printed.
 *
 *   npm run bench:micro
 *
 * Exit code 1 when a bench failed or printed something this script could not read.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { join } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;

interface Row {
  readonly bench: string;
  readonly configuration: string;
  readonly result: string;
}

interface Bench {
  readonly name: string;
  readonly file: string;
  readonly args: readonly string[];
  /** Rows from the bench's stdout; none when it printed nothing this script recognises. */
  readonly parse: (stdout: string) => Row[];
}

const lines = (s: string): string[] => s.split('\n');
const num = (s: string): number => Number(s.replace(/,/g, ''));
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

const BENCHES: readonly Bench[] = [
  {
    name: 'bench:core',
    file: 'bench/raft-core.ts',
    args: ['--seconds', '1', '--runs', '1'],
    // "groups  proposals/s (median)   min .. max" then "     1          123,456   123,456 .. 123,456"
    parse: (out) =>
      lines(out).flatMap((l) => {
        const m = /^\s*(\d+)\s+([\d,]+)\s+([\d,]+) \.\. ([\d,]+)$/.exec(l);
        return m
          ? [{ bench: 'bench:core', configuration: `${m[1]} group(s) x 3 replicas, in memory, batch 64, 1 x 1 s`, result: `${fmt(num(m[2]!))} proposals/s` }]
          : [];
      }),
  },
  {
    name: 'bench:ring',
    file: 'bench/ring.ts',
    args: ['--records', '100000', '--runs', '1'],
    // "ring         12,345,678 records/s   1234.5 MB/s", "postMessage ...", "ratio        12.3x"
    parse: (out) =>
      lines(out).flatMap((l) => {
        const m = /^(ring|postMessage)\s+([\d,]+) records\/s\s+([\d.]+) MB\/s$/.exec(l);
        if (m)
          return [
            {
              bench: 'bench:ring',
              configuration: `main -> worker via ${m[1] === 'ring' ? 'SharedArrayBuffer ring' : 'postMessage'}, 100-byte records, 100,000 records`,
              result: `${fmt(num(m[2]!))} records/s (${m[3]} MB/s)`,
            },
          ];
        const r = /^ratio\s+([\d.]+)x$/.exec(l);
        return r ? [{ bench: 'bench:ring', configuration: 'ring / postMessage', result: `${r[1]}x` }] : [];
      }),
  },
  {
    name: 'bench:store',
    file: 'bench/store.ts',
    args: ['--seconds', '1', '--runs', '1', '--shards', '1,64'],
    // "shards  proposals/s (median, min-max)   fsyncs/s   entries/fsync  errors" then
    // "     1       1234 (1234-1234)              456            2.7  0"
    parse: (out) =>
      lines(out).flatMap((l) => {
        const m = /^\s*(\d+)\s+(\d+) \((\d+)-(\d+)\)\s+(\d+)\s+([\d.]+|NaN)\s+(\d+)$/.exec(l);
        return m
          ? [
              {
                bench: 'bench:store',
                configuration: `${m[1]} shard(s), 1 worker, LMDB, 512 in flight, 1 x 1 s`,
                result: `${fmt(num(m[2]!))} proposals/s, ${fmt(num(m[5]!))} fsyncs/s, ${m[6]} entries/fsync, ${m[7]} errors`,
              },
            ]
          : [];
      }),
  },
];

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => cell.padEnd(widths[c]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const rows: Row[] = [];
let failed = false;
for (const b of BENCHES) {
  process.stderr.write(`[micro] ${b.name}: ${b.file} ${b.args.join(' ')}\n`);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, b.file), ...b.args], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 300_000,
  });
  process.stderr.write(`[micro] ${b.name} took ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  const parsed = r.status === 0 ? b.parse(r.stdout) : [];
  if (parsed.length === 0) {
    failed = true;
    const why = r.error ? r.error.message : r.status !== 0 ? `exit ${r.status ?? r.signal}` : 'output not recognised';
    rows.push({ bench: b.name, configuration: b.args.join(' '), result: `FAILED (${why})` });
    if (r.stdout) process.stderr.write(`[micro] ${b.name} printed:\n${r.stdout}`);
  }
  rows.push(...parsed);
}

console.log(
  `micro benches, short settings (1 run each: numbers are rough); node ${process.version}, ${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, ${new Date().toISOString().slice(0, 10)}`,
);
console.log(table([['bench', 'configuration', 'result'], ...rows.map((r) => [r.bench, r.configuration, r.result])]));
process.exitCode = failed ? 1 : 0;
