/**
 * A self-contained SVG chart of a bench sweep: two stacked panels sharing the x axis,
 * requests per second on top and p99 latency below. No scripts, fonts or other external assets.
 * The swept values are spaced evenly (they are usually powers of two), labelled with their value.
 */

export interface SweepPoint {
  /** The swept value (shards, connections, ...). */
  readonly x: number;
  /** undefined: the run failed, no point is drawn. */
  readonly reqPerSec: number | undefined;
  readonly p99Ms: number | undefined;
}

const W = 640;
const PANEL_H = 200;
const M = { left: 80, right: 20, top: 40, gap: 60, bottom: 50 };

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A round upper bound for an axis and its tick step (1, 2 or 5 times a power of ten). */
function niceScale(max: number, ticks = 5): { top: number; step: number } {
  if (!(max > 0)) return { top: 1, step: 0.2 };
  const raw = max / ticks;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw)!;
  return { top: Math.ceil(max / step) * step, step };
}

const fmtTick = (n: number): string => (Math.abs(n) >= 1000 ? Math.round(n).toLocaleString('en-US') : String(Number(n.toPrecision(6))));

function panel(top: number, label: string, color: string, xs: readonly number[], ys: readonly (number | undefined)[], xOf: (i: number) => number): string[] {
  const out: string[] = [];
  const { top: yMax, step } = niceScale(Math.max(0, ...ys.filter((y): y is number => y !== undefined)));
  const yOf = (v: number): number => top + PANEL_H - (v / yMax) * PANEL_H;
  const right = W - M.right;
  for (let v = 0; v <= yMax + step / 2; v += step) {
    const y = yOf(v).toFixed(1);
    out.push(`<line x1="${M.left}" y1="${y}" x2="${right}" y2="${y}" stroke="#ddd"/>`);
    out.push(`<text x="${M.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${esc(fmtTick(v))}</text>`);
  }
  out.push(`<rect x="${M.left}" y="${top}" width="${right - M.left}" height="${PANEL_H}" fill="none" stroke="#888"/>`);
  out.push(`<text transform="translate(18 ${top + PANEL_H / 2}) rotate(-90)" text-anchor="middle">${esc(label)}</text>`);
  xs.forEach((x, i) => {
    out.push(`<text x="${xOf(i).toFixed(1)}" y="${top + PANEL_H + 16}" text-anchor="middle">${esc(String(x))}</text>`);
  });
  // Lines join consecutive points only; a failed run leaves a gap.
  let path = '';
  ys.forEach((y, i) => {
    if (y === undefined) return;
    path += `${path === '' || ys[i - 1] === undefined ? 'M' : 'L'}${xOf(i).toFixed(1)},${yOf(y).toFixed(1)} `;
  });
  if (path !== '') out.push(`<path d="${path.trim()}" fill="none" stroke="${color}" stroke-width="2"/>`);
  ys.forEach((y, i) => {
    if (y === undefined) return;
    out.push(`<circle cx="${xOf(i).toFixed(1)}" cy="${yOf(y).toFixed(1)}" r="4" fill="${color}"><title>${esc(`${xs[i]}: ${fmtTick(y)}`)}</title></circle>`);
  });
  return out;
}

/** The chart as an SVG document. */
export function sweepSvg(opts: { readonly title: string; readonly xLabel: string; readonly points: readonly SweepPoint[] }): string {
  const xs = opts.points.map((p) => p.x);
  const inner = W - M.left - M.right;
  const xOf = (i: number): number => M.left + (xs.length === 1 ? inner / 2 : ((i + 0.5) / xs.length) * inner);
  const top2 = M.top + PANEL_H + M.gap;
  const h = top2 + PANEL_H + M.bottom;
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${h}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${esc(opts.title)}</text>`,
    ...panel(
      M.top,
      'requests/s (2xx)',
      '#1f77b4',
      xs,
      opts.points.map((p) => p.reqPerSec),
      xOf,
    ),
    ...panel(
      top2,
      'p99 latency (ms)',
      '#d62728',
      xs,
      opts.points.map((p) => p.p99Ms),
      xOf,
    ),
    `<text x="${M.left + inner / 2}" y="${h - 12}" text-anchor="middle">${esc(opts.xLabel)}</text>`,
    `</svg>`,
    '',
  ].join('\n');
}
