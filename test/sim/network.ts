/**
 * The simulated network between nodes: per-message delay (hence reordering), loss, duplication,
 * and partitions. A partition blocks directed links; a symmetric split blocks both directions,
 * a one-way partition only one. Links are checked when a message arrives, so cutting a link also
 * loses what was on the wire.
 */
import type { Prng } from '../../src/shards/raft/prng.js';
import type { SimParams } from './params.js';

export interface Partition {
  readonly id: number;
  readonly links: readonly (readonly [number, number])[];
  readonly text: string;
}

export class Network {
  /** blocked[from][to]: number of active partitions cutting that link. */
  private readonly blocked: number[][];
  private readonly active = new Map<number, Partition>();
  private nextId = 1;
  dropP: number;
  dupP: number;
  delaySpikeP: number;

  constructor(
    private readonly p: Prng,
    private readonly params: SimParams,
  ) {
    const n = params.nodes + 1;
    this.blocked = Array.from({ length: n }, () => new Array<number>(n).fill(0));
    this.dropP = params.dropP;
    this.dupP = params.dupP;
    this.delaySpikeP = params.delaySpikeP;
  }

  canDeliver(from: number, to: number): boolean {
    return this.blocked[from]![to] === 0;
  }

  /** Delays of the copies of one message to deliver; empty when it is lost. */
  copies(): number[] {
    if (this.dropP > 0 && this.p.chance(this.dropP)) return [];
    const out = [this.delay()];
    if (this.dupP > 0 && this.p.chance(this.dupP)) out.push(this.delay());
    return out;
  }

  private delay(): number {
    const { delayMinMs, delayMaxMs } = this.params;
    let d = delayMinMs + this.p.next() * (delayMaxMs - delayMinMs);
    if (this.delaySpikeP > 0 && this.p.chance(this.delaySpikeP)) d *= 5 + this.p.next() * 20;
    return d;
  }

  /** Draws and installs a random partition; `isolate` names a node to cut off from all others. */
  partition(isolate?: number): Partition {
    const n = this.params.nodes;
    const ids = Array.from({ length: n }, (_, i) => i + 1);
    const links: [number, number][] = [];
    let text: string;
    const kind = isolate !== undefined ? -1 : this.p.int(0, 3);
    if (kind === -1) {
      const a = isolate!;
      for (const b of ids) if (b !== a) links.push([a, b], [b, a]);
      text = `isolate ${a}`;
    } else if (kind === 0) {
      const side: number[] = [];
      const rest = ids.slice();
      const size = this.p.int(1, Math.floor(n / 2) + 1);
      while (side.length < size) side.push(rest.splice(this.p.int(0, rest.length), 1)[0]!);
      for (const a of side) for (const b of rest) links.push([a, b], [b, a]);
      text = `split {${side.join(',')}} | {${rest.join(',')}}`;
    } else if (kind === 1) {
      const a = this.p.pick(ids);
      const b = this.p.pick(ids.filter((x) => x !== a));
      links.push([a, b]);
      text = `one-way ${a} -x-> ${b}`;
    } else {
      // A node that can send but not hear (or hear but not send): the classic disruptive peer.
      const a = this.p.pick(ids);
      const out = this.p.chance(0.5);
      for (const b of ids) if (b !== a) links.push(out ? [a, b] : [b, a]);
      text = out ? `one-way ${a} -x-> all` : `one-way all -x-> ${a}`;
    }
    const part: Partition = { id: this.nextId++, links, text };
    for (const [a, b] of links) this.blocked[a]![b]!++;
    this.active.set(part.id, part);
    return part;
  }

  /** Cuts the link between `a` and `b` in both directions (one failing link; the rest stay up). */
  cutLink(a: number, b: number): Partition {
    const part: Partition = {
      id: this.nextId++,
      links: [
        [a, b],
        [b, a],
      ],
      text: `cut ${a} <-x-> ${b}`,
    };
    for (const [x, y] of part.links) this.blocked[x]![y]!++;
    this.active.set(part.id, part);
    return part;
  }

  heal(id: number): Partition | undefined {
    const part = this.active.get(id);
    if (part === undefined) return undefined;
    this.active.delete(id);
    for (const [a, b] of part.links) this.blocked[a]![b]!--;
    return part;
  }

  healAll(): void {
    for (const id of [...this.active.keys()]) this.heal(id);
  }
}
