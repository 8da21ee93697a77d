/**
 * Seeded frames for fuzzing the management ALPN (`iroh-raft-mgmt/0`, src/io/mgmt/frame.ts): each
 * case is the bytes written on one stream (which is then finished) and what kind of mistake it
 * holds. The same seed gives the same cases, so a failure replays from its printed seed.
 *
 * Kinds: random garbage; a valid frame cut short; a length prefix past the request limit (with a
 * little body or none); framed msgpack that is not a request (wrong types, extra fields, a deep
 * nest, binary, huge numbers); requests with known and unknown ops and random args; and replays
 * of frames sent before.
 */
import { Buffer } from 'node:buffer';
import { pack } from 'msgpackr';
import { Prng } from '../../src/shards/raft/prng.js';

export type FuzzKind = 'garbage' | 'truncated' | 'oversize' | 'shape' | 'request' | 'replay';

export interface FuzzCase {
  readonly kind: FuzzKind;
  readonly bytes: Buffer;
}

const OPS = [
  'status',
  'members.list',
  'tenants.list',
  'tenants.create',
  'tenants.delete',
  'tenants.rotate',
  'tenants.setQuota',
  'roles.list',
  'roles.grant',
  'roles.revoke',
  'no.such',
  '__proto__',
  'constructor',
  '',
];

/** `length u32 LE, body`. */
export function frame(body: Uint8Array): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32LE(body.length, 0);
  return Buffer.concat([head, body]);
}

export class MgmtFuzz {
  private readonly rng: Prng;
  private readonly sent: Buffer[] = [];

  constructor(
    seed: number,
    private readonly requestBytesMax: number,
  ) {
    this.rng = new Prng(seed);
  }

  /** The next case. */
  next(): FuzzCase {
    const kinds: FuzzKind[] = ['garbage', 'truncated', 'oversize', 'shape', 'request', 'replay'];
    const kind = this.pick(kinds);
    const bytes = this.make(kind);
    if (kind === 'request') this.sent.push(bytes);
    return { kind, bytes };
  }

  private make(kind: FuzzKind): Buffer {
    switch (kind) {
      case 'garbage':
        return this.bytes(this.int(0, 300));
      case 'truncated': {
        const whole = frame(pack(this.request()));
        return whole.subarray(0, this.int(0, whole.length - 1));
      }
      case 'oversize': {
        const head = Buffer.alloc(4);
        head.writeUInt32LE(this.int(this.requestBytesMax + 1, 0xffffffff), 0);
        return Buffer.concat([head, this.bytes(this.int(0, 64))]);
      }
      case 'shape':
        return frame(this.shape());
      case 'request':
        return frame(pack(this.request()));
      case 'replay':
        return this.sent.length === 0 ? frame(pack(this.request())) : this.pick(this.sent);
    }
  }

  /** msgpack bodies that are not requests. */
  private shape(): Uint8Array {
    const n = this.int(0, 9);
    switch (n) {
      case 0:
        return new Uint8Array(0);
      case 1:
        // A nest deeper than any stack: 0x91 is a one-element array.
        return Buffer.alloc(this.int(1_000, 30_000), 0x91);
      case 2:
        return pack(this.value(3));
      case 3:
        return pack({ op: this.value(1) });
      case 4:
        return pack({ op: 'status', args: this.value(2), extra: this.value(1) });
      case 5:
        return pack([this.pick(OPS), this.value(2)]);
      case 6:
        return pack({ op: 'x'.repeat(this.int(65, 300)) });
      case 7:
        // A valid map followed by trailing garbage.
        return Buffer.concat([pack({ op: 'status' }), this.bytes(this.int(1, 20))]);
      case 8:
        // A map header that promises more entries than follow.
        return Buffer.from([0xdf, 0xff, 0xff, 0xff, 0xff, 0xa2, 0x6f, 0x70]);
      default:
        // A 64-bit integer (decoded as a number, past the safe range).
        return pack({ op: this.pick(OPS), args: { name: 2n ** 64n - 1n } });
    }
  }

  private request(): { op: string; args?: unknown } {
    const op = this.pick(OPS);
    const args = this.int(0, 3) === 0 ? undefined : this.args();
    return args === undefined ? { op } : { op, args };
  }

  private args(): unknown {
    switch (this.int(0, 5)) {
      case 0:
        return { name: `fz-${this.int(0, 5)}` };
      case 1:
        return { name: this.pick(['_system', '', 'a b', 'x'.repeat(70), 7]), quota: this.value(1) };
      case 2:
        return { endpointId: this.hex(this.pick([63, 64, 65])), role: this.pick(['admin', 'operator', 'reader', 'root', 1]) };
      case 3:
        return { name: 'fz-q', quota: { keysMax: this.pick([-1, 0, 1.5, 'ten', 1e300]) } };
      default:
        return this.value(2);
    }
  }

  private value(depth: number): unknown {
    const n = this.int(0, depth <= 0 ? 5 : 7);
    switch (n) {
      case 0:
        return null;
      case 1:
        return this.int(0, 2) === 0 ? -this.int(0, 1e9) : this.rng.nextU32() * 2 ** 21;
      case 2:
        return this.bytes(this.int(0, 8)).toString('latin1');
      case 3:
        return this.int(0, 1) === 1;
      case 4:
        return this.bytes(this.int(0, 8));
      case 5:
        return this.rng.nextU32() / 7;
      case 6:
        return Array.from({ length: this.int(0, 4) }, () => this.value(depth - 1));
      default: {
        const o: Record<string, unknown> = {};
        for (let i = this.int(0, 4); i > 0; i--) {
          // An own `__proto__` key, as a decoder could meet it (assigning would set the prototype).
          const key = this.pick(['op', 'args', 'name', 'quota', 'role', 'endpointId', '__proto__', 'k']);
          Object.defineProperty(o, key, { value: this.value(depth - 1), enumerable: true, writable: true, configurable: true });
        }
        return o;
      }
    }
  }

  private hex(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += '0123456789abcdef'[this.int(0, 15)]!;
    return s;
  }

  private bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.rng.nextU32() & 0xff;
    return b;
  }

  /** A uniform integer in [lo, hi]. */
  private int(lo: number, hi: number): number {
    return lo + Math.floor(this.rng.next() * (hi - lo + 1));
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[this.int(0, xs.length - 1)]!;
  }
}
