/** Number formats, the plain-text table and the date in file names of the cluster load test's output. */
import type { SystemResult } from './measure.js';

/** A whole number with thousands separators; '-' when not finite. */
export const fmtInt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
/** Milliseconds to the microsecond; '-' when not finite. */
export const fmtMs = (n: number): string => (Number.isFinite(n) ? n.toFixed(3) : '-');
/** Bytes as MiB with one decimal; '-' when unknown. */
/** MB (10^6 bytes) per second, two decimals below 10, one above. */
export const fmtMBps = (n: number): string => (Number.isFinite(n) ? n.toFixed(n < 10 ? 2 : 1) : '-');
export const fmtMiB = (b: number | undefined): string => (b === undefined ? '-' : (b / 2 ** 20).toFixed(1));
/** A number with `digits` decimals; '-' when unknown. */
export const fmtOpt = (n: number | undefined, digits: number): string => (n === undefined ? '-' : n.toFixed(digits));

/** Requests/s, p50 and p99 of one system's run, as table cells; dashes when it did not finish. */
export function rateCells(r: SystemResult | undefined): string[] {
  return r ? [fmtInt(r.okPerSec), fmtMs(r.latency.all.p50Ms), fmtMs(r.latency.all.p99Ms)] : ['-', '-', '-'];
}

/** Rows as aligned columns; columns from `rightFrom` on are right-aligned. The first row is the header. */
export function table(rows: string[][], rightFrom = 1): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => (c < rightFrom ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** The PROBLEMS block that ends a report, or nothing when there are none. */
export function problemLines(problems: readonly string[]): string[] {
  return problems.length > 0 ? ['', 'PROBLEMS:', ...problems.map((p) => `  - ${p}`)] : [];
}

/** An ISO date as a file name part: 2026-11-26T101500. */
export function fileStamp(isoDate: string): string {
  return isoDate.slice(0, 19).replace(/:/g, '');
}
