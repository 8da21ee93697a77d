/**
 * A strict parser of the Prometheus text exposition format (version 0.0.4), for tests of
 * /metrics. It throws, naming the line, on anything a scraper could read differently: a malformed
 * line, a second HELP or TYPE for one family, a TYPE after the family's samples, a sample outside
 * its family's block (a family's samples must be contiguous, right after its HELP and TYPE), an
 * unknown type, a bad escape, a bad value, a sample seen twice.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  /** The sample's own name (`x_bucket` for a bucket of histogram `x`). */
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  help: string | undefined;
  type: MetricType | undefined;
  readonly samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES: readonly string[] = ['counter', 'gauge', 'histogram', 'summary', 'untyped'];

/** The families of `text`, in order of appearance. */
export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  /** The family whose block we are in: samples may only belong to it. */
  let current: Family | undefined;
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  lines.forEach((line, i) => {
    const where = `line ${i + 1}: ${JSON.stringify(line)}`;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (!m) return; // a plain comment
      const [, kw, name, rest = ''] = m as unknown as [string, 'HELP' | 'TYPE', string, string | undefined];
      if (!NAME.test(name)) throw new Error(`${where}: bad metric name`);
      let f = families.get(name);
      if (f === undefined) {
        f = { name, help: undefined, type: undefined, samples: [] };
        families.set(name, f);
      } else if (f !== current) throw new Error(`${where}: ${kw} of ${name} outside its block`);
      if (f.samples.length > 0) throw new Error(`${where}: ${kw} after samples of ${name}`);
      current = f;
      if (kw === 'HELP') {
        if (f.help !== undefined) throw new Error(`${where}: second HELP for ${name}`);
        f.help = unescape(rest, false, where);
      } else {
        if (f.type !== undefined) throw new Error(`${where}: second TYPE for ${name}`);
        if (!TYPES.includes(rest)) throw new Error(`${where}: unknown type ${rest}`);
        f.type = rest as MetricType;
      }
      return;
    }
    const s = parseSample(line, where);
    if (current === undefined || !belongs(s.name, current)) throw new Error(`${where}: sample ${s.name} is outside the block of its family`);
    const key = `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`;
    if (seen.has(key)) throw new Error(`${where}: sample given twice`);
    seen.add(key);
    current.samples.push(s);
  });
  return families;
}

function belongs(sample: string, f: Family): boolean {
  if (sample === f.name) return f.type !== 'histogram';
  if (f.type === 'histogram') return [`${f.name}_bucket`, `${f.name}_sum`, `${f.name}_count`].includes(sample);
  if (f.type === 'summary') return [`${f.name}_sum`, `${f.name}_count`].includes(sample);
  return false;
}

function parseSample(line: string, where: string): Sample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)(?: (-?\d+))?$/.exec(line);
  if (!m) throw new Error(`${where}: malformed sample`);
  const [, name, body, valueText] = m as unknown as [string, string, string | undefined, string];
  return { name, labels: body === undefined ? {} : parseLabels(body.slice(1, -1), where), value: parseValue(valueText, where) };
}

function parseLabels(body: string, where: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let at = 0;
  while (at < body.length) {
    const eq = body.indexOf('=', at);
    const name = body.slice(at, eq);
    if (eq < 0 || !LABEL_NAME.test(name)) throw new Error(`${where}: bad label name at ${at}`);
    if (name in labels) throw new Error(`${where}: label ${name} given twice`);
    if (body[eq + 1] !== '"') throw new Error(`${where}: label ${name} has no quoted value`);
    let end = eq + 2;
    while (end < body.length && body[end] !== '"') end += body[end] === '\\' ? 2 : 1;
    if (end >= body.length) throw new Error(`${where}: unterminated value of label ${name}`);
    labels[name] = unescape(body.slice(eq + 2, end), true, where);
    at = end + 1;
    if (at < body.length) {
      if (body[at] !== ',') throw new Error(`${where}: expected ',' after label ${name}`);
      at++;
    }
  }
  return labels;
}

/** Label values may escape `\\`, `\"` and `\n`; HELP text `\\` and `\n`. */
function unescape(s: string, quotes: boolean, where: string): string {
  return s.replace(/\\(.)/g, (_all, c: string) => {
    if (c === '\\') return '\\';
    if (c === 'n') return '\n';
    if (c === '"' && quotes) return '"';
    throw new Error(`${where}: bad escape \\${c}`);
  });
}

function parseValue(t: string, where: string): number {
  if (t === '+Inf') return Infinity;
  if (t === '-Inf') return -Infinity;
  if (t === 'NaN') return NaN;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) throw new Error(`${where}: bad value ${t}`);
  return Number(t);
}

/** Parses an `le` label: a number or `+Inf`. */
export function parseLe(le: string | undefined): number {
  if (le === undefined) throw new Error('bucket without le');
  return parseValue(le, `le="${le}"`);
}
