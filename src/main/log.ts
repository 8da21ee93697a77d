/**
 * The node's logger: pino, writing JSON lines (for log shippers: the default when stdout is not a
 * terminal) or readable lines for people (`--log-format pretty`: the default on a terminal, and
 * what `iroh-raft dev` asks of its nodes):
 *
 *     12:03:04.123 INFO  node started  node=1 http=http://127.0.0.1:7070 shards=16
 *
 * Local time to the millisecond, the level as a word, the message, then the other fields as
 * `key=value` (strings with spaces or quotes, and objects, as JSON). An error's stack follows on
 * lines of its own, indented. Colors only when asked (a terminal, or FORCE_COLOR), never with
 * NO_COLOR. The pretty form is made from pino's own JSON line, so both forms carry the same fields.
 */
import { pino } from 'pino';
import type { DestinationStream, Logger } from 'pino';

/** How log lines are written. */
export type LogFormat = 'json' | 'pretty';
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'pretty'];

/** The default format: pretty when stdout is a terminal, JSON otherwise. */
export function defaultLogFormat(stdout: { readonly isTTY?: boolean } = process.stdout): LogFormat {
  return stdout.isTTY === true ? 'pretty' : 'json';
}

/** Whether pretty lines get ANSI colors: on a terminal or with FORCE_COLOR (not 0), never with NO_COLOR. */
export function wantsColor(stdout: { readonly isTTY?: boolean } = process.stdout, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  const force = env.FORCE_COLOR ?? '';
  if (force !== '' && force !== '0' && force !== 'false') return true;
  return stdout.isTTY === true;
}

/** pino's levels, by number, as printed (five columns, so messages line up). */
const LEVELS: Readonly<Record<number, { word: string; color: string }>> = {
  10: { word: 'TRACE', color: '90' },
  20: { word: 'DEBUG', color: '36' },
  30: { word: 'INFO ', color: '32' },
  40: { word: 'WARN ', color: '33' },
  50: { word: 'ERROR', color: '31' },
  60: { word: 'FATAL', color: '35;1' },
};
/** Fields that the line's head shows, or that only repeat what every line of a process has. */
const HEAD_FIELDS = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

const paint = (color: boolean, code: string, s: string): string => (color ? `\u001b[${code}m${s}\u001b[0m` : s);
const two = (n: number): string => String(n).padStart(2, '0');

/** `HH:MM:SS.mmm` of `ms` (epoch milliseconds), local time. */
export function clockTime(ms: number): string {
  const d = new Date(ms);
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

function fieldValue(v: unknown): string {
  if (typeof v === 'string') return v.length > 0 && !/[\s"=\\]/.test(v) ? v : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return JSON.stringify(v);
}

/**
 * One of pino's JSON lines as a readable line (ending in a newline). A line that is not a JSON
 * object is passed through as it is.
 */
export function prettyLine(json: string, color: boolean): string {
  let rec: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(json);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return json.endsWith('\n') ? json : `${json}\n`;
    rec = parsed as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const level = LEVELS[rec.level as number] ?? { word: String(rec.level).toUpperCase().padEnd(5).slice(0, 5), color: '0' };
  const time = typeof rec.time === 'number' ? clockTime(rec.time) : '--:--:--.---';
  let stack = '';
  const fields: string[] = [];
  for (const [k, v] of Object.entries(rec)) {
    if (HEAD_FIELDS.has(k)) continue;
    if (k === 'err' && typeof v === 'object' && v !== null) {
      const e = v as { type?: unknown; message?: unknown; stack?: unknown; code?: unknown };
      const name = typeof e.type === 'string' ? e.type : 'Error';
      fields.push(`${paint(color, '2', 'err=')}${fieldValue(`${name}: ${typeof e.message === 'string' ? e.message : JSON.stringify(e.message)}`)}`);
      if (e.code !== undefined) fields.push(`${paint(color, '2', 'code=')}${fieldValue(e.code)}`);
      if (typeof e.stack === 'string') {
        // The stack's first line repeats the message; the frames follow, indented.
        const frames = e.stack.split('\n').slice(1);
        if (frames.length > 0) stack = frames.map((f) => `    ${f.trim()}\n`).join('');
      }
      continue;
    }
    fields.push(`${paint(color, '2', `${k}=`)}${fieldValue(v)}`);
  }
  const msg = typeof rec.msg === 'string' ? rec.msg : '';
  const head = `${paint(color, '2', time)} ${paint(color, level.color, level.word)} ${msg}`;
  return `${fields.length > 0 ? `${head}  ${fields.join(' ')}` : head}\n${stack === '' ? '' : paint(color, '2', stack)}`;
}

/** A pino destination that writes each JSON line to `out` as a pretty line. */
export function prettyDestination(out: { write(s: string): unknown }, color: boolean): DestinationStream {
  return { write: (line: string) => void out.write(prettyLine(line.endsWith('\n') ? line.slice(0, -1) : line, color)) };
}

export interface LoggerOptions {
  readonly level: string;
  readonly format: LogFormat;
  /** Default: {@link wantsColor} of process.stdout. */
  readonly color?: boolean;
}

/** The node's logger on stdout. JSON lines carry `pid`; pretty lines leave it out. */
export function createLogger(o: LoggerOptions): Logger {
  if (o.format === 'json') return pino({ level: o.level, base: { pid: process.pid } });
  return pino({ level: o.level, base: { pid: process.pid } }, prettyDestination(process.stdout, o.color ?? wantsColor()));
}
