/**
 * The replicated state machine of the simulator: a string map driven by commands that carry the
 * client operation id, so the proposing replica can tell its own entry when it applies it.
 */
import type { KvOutput } from './history.js';

export type Command =
  | { readonly i: number; readonly o: 'put'; readonly k: string; readonly v: string }
  | { readonly i: number; readonly o: 'cas'; readonly k: string; readonly e: string | null; readonly v: string }
  /** A liveness probe: commits like any command, changes nothing. */
  | { readonly i: number; readonly o: 'mark' };

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** Entry data is shared by reference between replicas, so each payload is parsed once. */
const decoded = new WeakMap<Uint8Array, Command>();

export function encodeCommand(c: Command): Uint8Array {
  const data = encoder.encode(JSON.stringify(c));
  decoded.set(data, c);
  return data;
}

export function decodeCommand(data: Uint8Array): Command {
  const hit = decoded.get(data);
  if (hit !== undefined) return hit;
  const c = JSON.parse(decoder.decode(data)) as Command;
  decoded.set(data, c);
  return c;
}

export class KvMachine {
  private constructor(
    /** Index of the last entry applied (or covered by the snapshot it was restored from). */
    public applied: number,
    private readonly map: Map<string, string>,
  ) {}

  static fromSnapshot(index: number, data: Uint8Array): KvMachine {
    const map = new Map<string, string>();
    if (data.length > 0) {
      for (const [k, v] of JSON.parse(decoder.decode(data)) as [string, string][]) map.set(k, v);
    }
    return new KvMachine(index, map);
  }

  get(key: string): string | null {
    return this.map.get(key) ?? null;
  }

  /** Applies one command; the output is what the proposing client is told. */
  apply(c: Command): KvOutput {
    switch (c.o) {
      case 'put':
        this.map.set(c.k, c.v);
        return { kind: 'ok' };
      case 'cas': {
        const swapped = (this.map.get(c.k) ?? null) === c.e;
        if (swapped) this.map.set(c.k, c.v);
        return { kind: 'cas', swapped };
      }
      case 'mark':
        return { kind: 'ok' };
    }
  }

  /** Sorted, so equal states give equal bytes (snapshots of one index are compared across replicas). */
  snapshot(): Uint8Array {
    const pairs = [...this.map.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return encoder.encode(JSON.stringify(pairs));
  }
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
