/**
 * What happened, for the failure report: a ring of the last events (or everything, for a verbose
 * replay). Lines are formatted only when a report asks for them.
 */
import type { Message } from '../../src/shards/raft/types.js';
import { messageTypeName } from '../../src/shards/raft/types.js';

interface Line {
  readonly time: number;
  readonly node: number;
  readonly group: number;
  readonly text: string;
  readonly msg: Message | undefined;
}

export class Trace {
  private readonly lines: (Line | undefined)[];
  private next = 0;
  private count = 0;

  /** `capacity` Infinity keeps every line. */
  constructor(readonly capacity: number) {
    this.lines = Number.isFinite(capacity) ? new Array<Line | undefined>(capacity) : [];
  }

  add(time: number, node: number, group: number, text: string, msg?: Message): void {
    const line: Line = { time, node, group, text, msg };
    if (Number.isFinite(this.capacity)) {
      this.lines[this.next] = line;
      this.next = (this.next + 1) % this.capacity;
    } else {
      this.lines.push(line);
    }
    this.count++;
  }

  /** Oldest first. */
  format(): string[] {
    const out: string[] = [];
    const n = Math.min(this.count, Number.isFinite(this.capacity) ? this.capacity : this.count);
    const start = Number.isFinite(this.capacity) ? (this.count > this.capacity ? this.next : 0) : 0;
    for (let k = 0; k < n; k++) {
      const l = this.lines[(start + k) % this.lines.length];
      if (l === undefined) continue;
      const where = `${l.node > 0 ? `n${l.node}` : '--'}${l.group >= 0 ? ` g${l.group}` : ''}`;
      out.push(`${l.time.toFixed(3).padStart(10)}ms ${where.padEnd(7)} ${l.text}${l.msg ? ` ${formatMessage(l.msg)}` : ''}`);
    }
    return out;
  }
}

export function formatMessage(m: Message): string {
  let s = `${messageTypeName(m.type)} ${m.from}->${m.to} t${m.term}`;
  if (m.index !== 0 || m.logTerm !== 0) s += ` i${m.index} lt${m.logTerm}`;
  if (m.entries.length > 0) s += ` ents[${m.entries[0]!.index}..${m.entries[m.entries.length - 1]!.index}]`;
  if (m.commit !== 0) s += ` c${m.commit}`;
  if (m.reject) s += ` reject hint${m.rejectHint}`;
  if (m.context !== 0) s += ` ctx${m.context}`;
  if (m.snapshot) s += ` snap@${m.snapshot.metadata.index}/t${m.snapshot.metadata.term}`;
  return s;
}
