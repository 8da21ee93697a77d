/**
 * Seeded frames for fuzzing the management ALPN (`iroh-raft-mgmt/0`, src/io/mgmt/frame.ts): each
 * case is the bytes written on one stream (which is then finished) and what kind of mistake it
 * holds. The same seed gives the same cases, so a failure replays from its printed seed.
 *
 * Kinds: random garbage; a valid frame cut short; a length prefix past the request limit (with a
 * little body or none); framed msgpack that is not a request (wrong types, extra fields, a deep
 * nest, binary, huge numbers); requests with known and unknown ops and random args; and replays
 * of frames sent before.
 *
 * The membership ops get plausible args as well as junk (addresses on 127.0.0.1 and broken ones,
 * raft ids, endpoint ids), but never ones that could move a real node of the test's cluster, so a
 * run that is allowed everything still leaves the cluster whole: `members.remove` names the
 * caller itself ({@link MgmtFuzzOptions.self}) or a ref that names nobody (a raft id from
 * {@link FUZZ_RAFT_ID_MIN} up, a random endpoint id, a malformed one), and `members.rejoin` names
 * only raft ids from {@link FUZZ_RAFT_ID_MIN} up or malformed ones (a member may rejoin as itself:
 * with its own raft id that would declare the real node dead). `members.join` admits the caller
 * only, whatever its args say, so it needs no such care; its invites are never ones a member
 * issued (forged secrets of the right shape, and wrong shapes).
 */
import { Buffer } from 'node:buffer';
import { pack } from 'msgpackr';
import { Prng } from '../../src/shards/raft/prng.js';

export type FuzzKind = 'garbage' | 'truncated' | 'oversize' | 'shape' | 'request' | 'replay';

export interface FuzzCase {
  readonly kind: FuzzKind;
  readonly bytes: Buffer;
  /** The op of a whole request or of the one replayed (undefined for every other kind). */
  readonly op?: string;
}

export interface MgmtFuzzOptions {
  /** The caller's own endpoint id: the only member a generated `members.remove` names. */
  readonly self?: string;
}

/** The lowest raft id a generated request names: above any member of a test cluster. */
export const FUZZ_RAFT_ID_MIN = 10_000;

/** The membership ops (members.self only reads): a third of the requests pick among them (and the rest among all), so each is reached often. */
const MEMBER_OPS = ['members.join', 'members.rejoin', 'members.remove', 'members.invite', 'members.self'];

const OPS = [
  'status',
  'members.list',
  ...MEMBER_OPS,
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
  /** Whole requests sent so far, for replays. */
  private readonly sent: { bytes: Buffer; op: string }[] = [];

  constructor(
    seed: number,
    private readonly requestBytesMax: number,
    private readonly opts: MgmtFuzzOptions = {},
  ) {
    this.rng = new Prng(seed);
  }

  /** The next case. */
  next(): FuzzCase {
    const kinds: FuzzKind[] = ['garbage', 'truncated', 'oversize', 'shape', 'request', 'replay'];
    const kind = this.pick(kinds);
    if (kind === 'request' || kind === 'replay') {
      const sent = kind === 'replay' && this.sent.length > 0 ? this.replayed() : this.whole();
      if (kind === 'request') this.sent.push(sent);
      return { kind, ...sent };
    }
    return { kind, bytes: this.make(kind) };
  }

  /** A request sent before; half the time one of a membership op, when there is one. */
  private replayed(): { bytes: Buffer; op: string } {
    const members = this.sent.filter((x) => MEMBER_OPS.includes(x.op));
    return this.pick(members.length > 0 && this.int(0, 1) === 0 ? members : this.sent);
  }

  private whole(): { bytes: Buffer; op: string } {
    const req = this.request();
    return { bytes: frame(pack(req)), op: req.op };
  }

  private make(kind: Exclude<FuzzKind, 'request' | 'replay'>): Buffer {
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
    const op = this.pick(this.int(0, 2) === 0 ? MEMBER_OPS : OPS);
    const args = this.int(0, 3) === 0 ? undefined : op.startsWith('members.') && this.int(0, 3) > 0 ? this.memberArgs(op) : this.args();
    return args === undefined ? { op } : { op, args };
  }

  /** Args in the shape of membership op `op` (now and then another's), plausible or not. */
  private memberArgs(op: string): unknown {
    const own = MEMBER_OPS.indexOf(op);
    switch (own >= 0 && this.int(0, 3) > 0 ? own : this.int(0, 5)) {
      case 0: {
        const a: Record<string, unknown> = { addrs: this.addrs() };
        if (this.int(0, 2) === 0) a.invite = this.invite();
        // Now and then a field naming another endpoint, as if a join could admit someone else.
        if (this.int(0, 2) === 0) a[this.pick(['endpointId', 'id', 'peer'])] = this.hex(64);
        return a;
      }
      case 1:
        return { addrs: this.addrs(), old: this.raftId() };
      case 2:
        return { node: this.memberRef() };
      case 3:
        return { ttlMs: this.pick([1_000, 60_000, 999, 0, -1, 1.5, 2 ** 53, 31 * 24 * 3_600_000, '60000', null]) };
      case 4:
        // members.self takes none.
        return this.pick([{}, null, { node: this.memberRef() }]);
      default:
        // Every field at once, or one the ops do not know.
        return this.int(0, 1) === 0 ? { addrs: this.addrs(), old: this.raftId(), node: this.memberRef() } : { addrs: this.addrs(), endpointId: this.hex(64) };
    }
  }

  /** An invite's secret: of the right shape but never issued (so refused), or of a wrong one. */
  private invite(): unknown {
    const b64 = (n: number): string =>
      Array.from({ length: n }, () => 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'[this.int(0, 63)]!).join('');
    return this.int(0, 1) === 0 ? b64(43) : this.pick([b64(42), b64(44), `${b64(42)}=`, `${b64(42)}+`, '', 43, null]);
  }

  /** Mostly 1-3 plausible addresses on 127.0.0.1; else a broken list or entry. */
  private addrs(): unknown {
    const good = (): string => `127.0.0.1:${this.int(1, 65535)}`;
    switch (this.int(0, 8)) {
      case 0:
      case 1:
      case 2:
      case 3:
      case 4:
        return Array.from({ length: this.int(1, 3) }, good);
      case 5:
        return [good(), this.pick(['', 'x', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:65536', '999.0.0.1:1', 'host:80', '[::1]:', ':80', 'x'.repeat(65)])];
      case 6:
        return this.pick([[], Array.from({ length: 17 }, good), 'nope', 7, null, [7], [['127.0.0.1:1']]]);
      case 7:
        return [good(), good(), good(), good()].map((a) => (this.int(0, 1) === 0 ? a : a.replace('127.0.0.1', '[::1]')));
      default:
        return this.value(1);
    }
  }

  /** A raft id no member of a test cluster has, or not a raft id at all. */
  private raftId(): unknown {
    return this.int(0, 1) === 0
      ? FUZZ_RAFT_ID_MIN + this.int(0, 1_000_000)
      : this.pick([0, -1, 1.5, 2 ** 53, 2 ** 64, -(2 ** 31), '1', '', null, [1], { node: 1 }]);
  }

  /** The caller itself, or a ref that names no member (see the module's comment). */
  private memberRef(): unknown {
    switch (this.int(0, 3)) {
      case 0:
        return this.opts.self ?? this.hex(64);
      case 1:
        return this.raftId();
      case 2:
        return this.hex(this.pick([0, 8, 63, 64, 64, 65]));
      default:
        return this.pick(['x', 'ABC', (this.opts.self ?? this.hex(64)).toUpperCase(), ` ${this.opts.self ?? ''}`, ' '.repeat(64)]);
    }
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
