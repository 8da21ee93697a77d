/**
 * Linearizability checking for key-value histories (see `history.ts`).
 *
 * Keys are independent registers, and linearizability is compositional, so each key is checked on
 * its own. Per key this is the Wing & Gong search with Lowe's refinements (the "WGL" algorithm):
 * call and return events sit in a doubly linked list in time order; an operation can be placed next
 * when its call comes before the first return event still in the list; placing it unlinks both of
 * its events, and a memo of (placed set, register value) already explored cuts the search down to
 * the states that really differ. One register-specific shortcut on top: an operation that never
 * changes the value (a read, a failed cas) and is legal now is placed without trying alternatives,
 * which keeps the search near-linear on valid histories with many concurrent readers.
 *
 * Real time. Operation A precedes operation B, so A must be linearized first, when
 * `A.ret <= B.call`: an operation that returns at the instant another is called finished first.
 * The one exception is a pair of operations that both start and end at the same instant; the rule
 * would make each precede the other, so they are treated as concurrent.
 *
 * Unknown outcomes (`ret === Infinity`). Such an operation may take effect at any point after its
 * call, or never. Its output is unknown, so an unknown `get` constrains nothing and is ignored; an
 * unknown `cas` can only matter by swapping, so it is placed only where it would swap. The search
 * succeeds once every operation with a known outcome is placed; unknown ones left over never
 * happened. Since an unplaced unknown operation only keeps options open, a state whose set of
 * placed unknown operations is a superset of an explored state's (same known operations, same
 * value) is pruned too, and known operations are tried before unknown ones so that the leaner
 * states are met first; and an unknown put is never placed right after another unknown operation
 * (it would overwrite it unseen). Without these, a few dozen timed-out writes would make the search
 * exponential.
 *
 * Budget: `maxStatesPerKey` counts the states placed on the search stack (each one new to the
 * memo). Histories of a few hundred operations per key with ten or so concurrent clients take a
 * few thousand states and a few milliseconds; refuting a history costs more than accepting one,
 * since every ordering before the contradiction has to be ruled out.
 */
import { Prng } from '../../src/shards/raft/prng.js';
import type { CheckResult, Operation } from './history.js';

export interface CheckOptions {
  /**
   * How many search states one key may explore before the check gives up with `ok: 'unknown'`.
   * Default 2,000,000.
   */
  readonly maxStatesPerKey?: number;
}

const DEFAULT_MAX_STATES_PER_KEY = 2_000_000;

/** The longest report a failure message carries before it points at `operations` instead. */
const MAX_LISTED_OPERATIONS = 200;
const MAX_LISTED_PREFIX = 40;

/**
 * Checks a history; returns the failure of the first key (in sorted order) that is not
 * linearizable. A key whose search ran out of budget is only reported if no key fails outright.
 * Throws on malformed input (a finite `ret` without a matching output, `ret < call`, duplicate ids).
 */
export function checkHistory(ops: readonly Operation[], opts: CheckOptions = {}): CheckResult {
  const maxStates = opts.maxStatesPerKey ?? DEFAULT_MAX_STATES_PER_KEY;
  const byKey = new Map<string, Operation[]>();
  const seen = new Set<number>();
  for (const op of ops) {
    validate(op);
    if (seen.has(op.id)) throw new Error(`checkHistory: duplicate operation id ${op.id}`);
    seen.add(op.id);
    const list = byKey.get(op.input.key);
    if (list) list.push(op);
    else byKey.set(op.input.key, [op]);
  }
  // Code-unit order, not locale order: the same history must report the same key everywhere.
  const keys = [...byKey.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let firstUnknown: CheckResult | undefined;
  for (const key of keys) {
    const result = checkKey(key, byKey.get(key) ?? [], maxStates);
    if (result.ok === false) return result;
    if (result.ok === 'unknown' && firstUnknown === undefined) firstUnknown = result;
  }
  return firstUnknown ?? { ok: true };
}

function validate(op: Operation): void {
  const where = `checkHistory: operation #${op.id}`;
  if (!Number.isFinite(op.call)) throw new Error(`${where}: call time must be finite`);
  if (Number.isNaN(op.ret) || op.ret < op.call) throw new Error(`${where}: ret must be >= call`);
  if (op.ret === Infinity) return;
  const out = op.output;
  if (out === undefined) throw new Error(`${where}: completed operation without output`);
  const expected = op.input.op === 'put' ? 'ok' : op.input.op === 'get' ? 'value' : 'cas';
  if (out.kind !== expected) throw new Error(`${where}: ${op.input.op} with a '${out.kind}' output`);
}

// Register transitions, with values interned to small integers (0 is "absent").
const PUT = 0;
const GET = 1;
const CAS_SWAP = 2;
const CAS_KEEP = 3;

// Search modes: trying known operations, then unknown ones, then backtracking.
const SCAN_FINITE = 0;
const SCAN_UNKNOWN = 1;
const EXHAUSTED = 2;

// Event ranks at equal times; see the real-time rule in the header.
const RANK_RETURN = 0;
const RANK_INSTANT_CALL = 1;
const RANK_INSTANT_RETURN = 2;
const RANK_CALL = 3;

interface Event {
  readonly time: number;
  readonly rank: number;
  readonly id: number;
  /** Main-list entry (finite operations) or -1 - unknown index (unknown calls). */
  readonly entry: number;
}

interface Best {
  placed: number;
  prefix: number[];
  state: number;
  blocker: number;
}

function checkKey(key: string, keyOps: readonly Operation[], maxStates: number): CheckResult {
  const finite: Operation[] = [];
  const unknown: Operation[] = [];
  for (const op of keyOps) {
    if (op.ret !== Infinity) finite.push(op);
    else if (op.input.op !== 'get') unknown.push(op);
  }
  const nf = finite.length;
  const nu = unknown.length;
  if (nf === 0) return { ok: true };

  const valueIds = new Map<string, number>();
  const valueNames: (string | null)[] = [null];
  const intern = (v: string | null): number => {
    if (v === null) return 0;
    let id = valueIds.get(v);
    if (id === undefined) {
      id = valueNames.length;
      valueIds.set(v, id);
      valueNames.push(v);
    }
    return id;
  };

  // Operations are numbered finite first (0..nf-1), then unknown (nf..nf+nu-1).
  const all = [...finite, ...unknown];
  const kind = new Int32Array(nf + nu);
  const argA = new Int32Array(nf + nu);
  const argB = new Int32Array(nf + nu);
  const readOnly = new Uint8Array(nf + nu);
  all.forEach((op, i) => {
    const input = op.input;
    const out = op.output;
    if (input.op === 'put') {
      kind[i] = PUT;
      argA[i] = intern(input.value);
    } else if (input.op === 'get') {
      kind[i] = GET;
      argA[i] = intern(out?.kind === 'value' ? out.value : null);
    } else {
      const swapped = i >= nf || (out?.kind === 'cas' && out.swapped);
      kind[i] = swapped ? CAS_SWAP : CAS_KEEP;
      argA[i] = intern(input.expected);
      argB[i] = intern(input.value);
    }
    readOnly[i] = kind[i] === GET || kind[i] === CAS_KEEP || (kind[i] === CAS_SWAP && argA[i] === argB[i]) ? 1 : 0;
  });

  // Main list: finite operation i has call entry 2i and return entry 2i+1; then head and tail.
  const head = 2 * nf;
  const tail = 2 * nf + 1;
  const events: Event[] = [];
  finite.forEach((op, i) => {
    const instant = op.call === op.ret;
    events.push({ time: op.call, rank: instant ? RANK_INSTANT_CALL : RANK_CALL, id: op.id, entry: 2 * i });
    events.push({ time: op.ret, rank: instant ? RANK_INSTANT_RETURN : RANK_RETURN, id: op.id, entry: 2 * i + 1 });
  });
  unknown.forEach((op, j) => {
    events.push({ time: op.call, rank: RANK_CALL, id: op.id, entry: -1 - j });
  });
  events.sort((a, b) => a.time - b.time || a.rank - b.rank || a.id - b.id);

  const next = new Int32Array(2 * nf + 2);
  const prev = new Int32Array(2 * nf + 2);
  const pos = new Int32Array(2 * nf + 2);
  // Unknown list: unknown j is node j, in call order; then head and tail.
  const uHead = nu;
  const uTail = nu + 1;
  const uNext = new Int32Array(nu + 2);
  const uPrev = new Int32Array(nu + 2);
  const uPos = new Int32Array(nu + 2);
  let last = head;
  let uLast = uHead;
  events.forEach((ev, p) => {
    if (ev.entry >= 0) {
      next[last] = ev.entry;
      prev[ev.entry] = last;
      pos[ev.entry] = p;
      last = ev.entry;
    } else {
      const j = -1 - ev.entry;
      uNext[uLast] = j;
      uPrev[j] = uLast;
      uPos[j] = p;
      uLast = j;
    }
  });
  next[last] = tail;
  prev[tail] = last;
  pos[tail] = events.length;
  uNext[uLast] = uTail;
  uPrev[uTail] = uLast;
  uPos[uTail] = events.length;

  // Zobrist hashing keeps the memo key up to date in O(1) per placement. Unknown operations are
  // left out of the hash so that states differing only in them share a bucket (for the pruning).
  const rng = new Prng(0x6c696e);
  const zob1 = new Int32Array(nf);
  const zob2 = new Int32Array(nf);
  for (let i = 0; i < nf; i++) {
    zob1[i] = rng.nextU32() | 0;
    zob2[i] = rng.nextU32() | 0;
  }
  const wf = (nf + 31) >>> 5;
  const wu = (nu + 31) >>> 5;
  const placedF = new Uint32Array(wf);
  const placedU = new Uint32Array(wu);
  const memo = new Memo(wf, wu);

  const stackOp = new Int32Array(nf + nu);
  const stackState = new Int32Array(nf + nu);
  const stackBlocker = new Int32Array(nf + nu);
  const stackForced = new Uint8Array(nf + nu);
  let depth = 0;
  let state = 0;
  let h1 = 0;
  let h2 = 0;
  let placedFinite = 0;
  let explored = 0;
  const best: Best = { placed: -1, prefix: [], state: 0, blocker: -1 };

  memo.insert(mixKey(h1, h2, state), state, placedF, placedU);

  let mode = SCAN_FINITE;
  // Set on arriving at a state by a placement, cleared once its forced step has been looked for.
  let fresh = true;
  let entry = next[head]!;
  let blocker = -1;
  let u = uHead;

  for (;;) {
    if (mode === SCAN_FINITE) {
      let forced = false;
      if (fresh) {
        fresh = false;
        // A candidate that never changes the value (a read, a failed cas) and is legal now can be
        // moved to the front of any linearization that exists from here: nothing it precedes is
        // placed yet, and taking it out of its old position changes no value. So it needs no
        // alternatives. (A put of the current value does not qualify: where the linearization
        // had it, it may well have changed the value.)
        let e = next[head]!;
        for (; (e & 1) === 0; e = next[e]!) {
          const i = e >>> 1;
          if (!forced && readOnly[i] === 1 && step(kind[i]!, argA[i]!, argB[i]!, state) >= 0) {
            forced = true;
            entry = e;
          }
        }
        blocker = e;
      }
      if ((entry & 1) === 0) {
        const i = entry >>> 1;
        const ns = step(kind[i]!, argA[i]!, argB[i]!, state);
        if (ns >= 0) {
          placedF[i >>> 5]! |= 1 << (i & 31);
          const n1 = h1 ^ zob1[i]!;
          const n2 = h2 ^ zob2[i]!;
          if (memo.insert(mixKey(n1, n2, ns), ns, placedF, placedU)) {
            if (++explored > maxStates) return budgetExceeded(key, keyOps.length, maxStates);
            stackOp[depth] = i;
            stackState[depth] = state;
            stackForced[depth] = forced ? 1 : 0;
            depth++;
            state = ns;
            h1 = n1;
            h2 = n2;
            // Unlink call then return; relinking in the reverse order restores the list exactly.
            next[prev[entry]!] = next[entry]!;
            prev[next[entry]!] = prev[entry]!;
            const r = entry + 1;
            next[prev[r]!] = next[r]!;
            prev[next[r]!] = prev[r]!;
            if (++placedFinite === nf) return { ok: true };
            entry = next[head]!;
            fresh = true;
            continue;
          }
          placedF[i >>> 5]! &= ~(1 << (i & 31));
        }
        // A forced step already explored means this state is no better.
        if (forced) mode = EXHAUSTED;
        else entry = next[entry]!;
        continue;
      }
      // The first return still in the list: nothing called after it may be placed yet.
      blocker = entry;
      mode = SCAN_UNKNOWN;
      u = uNext[uHead]!;
      continue;
    }

    if (mode === SCAN_UNKNOWN) {
      if (uPos[u]! >= pos[blocker]!) {
        mode = EXHAUSTED;
        continue;
      }
      const g = nf + u;
      // A put right after another unknown operation overwrites it unseen: the same put made
      // directly from the earlier state reaches this value with fewer operations used up.
      const ns = kind[g] === PUT && depth > 0 && stackOp[depth - 1]! >= nf ? -1 : step(kind[g]!, argA[g]!, argB[g]!, state);
      if (ns >= 0) {
        placedU[u >>> 5]! |= 1 << (u & 31);
        if (memo.insert(mixKey(h1, h2, ns), ns, placedF, placedU)) {
          if (++explored > maxStates) return budgetExceeded(key, keyOps.length, maxStates);
          stackOp[depth] = g;
          stackState[depth] = state;
          stackForced[depth] = 0;
          stackBlocker[depth] = blocker;
          depth++;
          state = ns;
          uNext[uPrev[u]!] = uNext[u]!;
          uPrev[uNext[u]!] = uPrev[u]!;
          mode = SCAN_FINITE;
          entry = next[head]!;
          fresh = true;
          continue;
        }
        placedU[u >>> 5]! &= ~(1 << (u & 31));
      }
      u = uNext[u]!;
      continue;
    }

    // Every candidate of this state has been explored: note how far it got, then backtrack. (After
    // a forced step the child placed more, so `blocker` being stale here does not matter.)
    if (placedFinite > best.placed) {
      best.placed = placedFinite;
      best.prefix = Array.from(stackOp.subarray(0, depth));
      best.state = state;
      best.blocker = blocker >>> 1;
    }
    if (depth === 0) return notLinearizable(key, keyOps, all, nf, best, valueNames);
    depth--;
    const g = stackOp[depth]!;
    state = stackState[depth]!;
    if (g < nf) {
      const c = 2 * g;
      const r = c + 1;
      prev[next[r]!] = r;
      next[prev[r]!] = r;
      prev[next[c]!] = c;
      next[prev[c]!] = c;
      placedF[g >>> 5]! &= ~(1 << (g & 31));
      h1 ^= zob1[g]!;
      h2 ^= zob2[g]!;
      placedFinite--;
      if (stackForced[depth] === 1) {
        mode = EXHAUSTED;
      } else {
        mode = SCAN_FINITE;
        entry = next[c]!;
      }
    } else {
      u = g - nf;
      uPrev[uNext[u]!] = u;
      uNext[uPrev[u]!] = u;
      placedU[u >>> 5]! &= ~(1 << (u & 31));
      blocker = stackBlocker[depth]!;
      mode = SCAN_UNKNOWN;
      u = uNext[u]!;
    }
  }
}

/** The register value after the operation, or -1 if it cannot happen in state `s`. */
function step(k: number, a: number, b: number, s: number): number {
  switch (k) {
    case PUT:
      return a;
    case GET:
      return s === a ? s : -1;
    case CAS_SWAP:
      return s === a ? b : -1;
    default:
      return s !== a ? s : -1;
  }
}

/** A map key from the two 32-bit hashes and the value: 53 bits, so collisions stay rare. */
function mixKey(h1: number, h2: number, s: number): number {
  const a = (h1 ^ Math.imul(s + 1, 0x9e3779b1)) >>> 0;
  const b = (h2 ^ Math.imul(s + 1, 0x85ebca77)) >>> 0;
  return a * 0x200000 + (b >>> 11);
}

/**
 * The explored states, in flat typed arrays so that millions of them fit without one object each.
 * Entries with the same hash are chained; each records the finite set, the unknown set and the value.
 */
class Memo {
  private readonly stride: number;
  private words: Uint32Array;
  private states: Int32Array;
  private chain: Int32Array;
  private size = 0;
  private readonly heads = new Map<number, number>();

  constructor(
    private readonly wf: number,
    private readonly wu: number,
  ) {
    this.stride = wf + wu;
    this.words = new Uint32Array(1024 * this.stride);
    this.states = new Int32Array(1024);
    this.chain = new Int32Array(1024);
  }

  /**
   * Records the state unless an explored one makes it redundant: same finite set and value, and a
   * subset of its unknown operations placed. Returns whether it was recorded (so is worth exploring).
   */
  insert(hash: number, state: number, f: Uint32Array, u: Uint32Array): boolean {
    const { wf, wu, stride, words } = this;
    let before = -1;
    let at = this.heads.get(hash) ?? -1;
    while (at >= 0) {
      const following = this.chain[at]!;
      let redundant = false;
      if (this.states[at] === state && sameWords(words, at * stride, f, wf)) {
        const base = at * stride + wf;
        let storedWithin = true;
        let currentWithin = true;
        for (let w = 0; w < wu; w++) {
          const stored = words[base + w]!;
          const current = u[w]!;
          if ((stored & ~current) !== 0) storedWithin = false;
          if ((current & ~stored) !== 0) currentWithin = false;
        }
        if (storedWithin) return false;
        // The new state makes the stored one redundant; drop it to keep chains short.
        redundant = currentWithin;
      }
      if (redundant) {
        if (before < 0) this.heads.set(hash, following);
        else this.chain[before] = following;
      } else {
        before = at;
      }
      at = following;
    }

    if (this.size === this.states.length) this.grow();
    const slot = this.size++;
    const base = slot * stride;
    this.words.set(f, base);
    this.words.set(u, base + wf);
    this.states[slot] = state;
    this.chain[slot] = this.heads.get(hash) ?? -1;
    this.heads.set(hash, slot);
    return true;
  }

  private grow(): void {
    const cap = this.states.length * 2;
    const words = new Uint32Array(cap * this.stride);
    words.set(this.words);
    this.words = words;
    const states = new Int32Array(cap);
    states.set(this.states);
    this.states = states;
    const chain = new Int32Array(cap);
    chain.set(this.chain);
    this.chain = chain;
  }
}

function sameWords(words: Uint32Array, base: number, f: Uint32Array, n: number): boolean {
  for (let w = 0; w < n; w++) if (words[base + w] !== f[w]) return false;
  return true;
}

function budgetExceeded(key: string, count: number, maxStates: number): CheckResult {
  return {
    ok: 'unknown',
    key,
    message:
      `key ${JSON.stringify(key)}: gave up after exploring ${maxStates} states (maxStatesPerKey) ` +
      `over its ${count} operations; neither shown linearizable nor refuted`,
  };
}

function notLinearizable(
  key: string,
  keyOps: readonly Operation[],
  all: readonly Operation[],
  nf: number,
  best: Best,
  valueNames: readonly (string | null)[],
): CheckResult {
  const operations = [...keyOps].sort((a, b) => a.call - b.call || a.id - b.id);
  const label = (g: number): string => {
    const op = all[g];
    return op === undefined ? '?' : `#${op.id}${g >= nf ? '?' : ''}`;
  };
  const shown = best.prefix.slice(-MAX_LISTED_PREFIX).map(label).join(' ');
  const prefix = best.prefix.length > MAX_LISTED_PREFIX ? `… ${shown}` : shown;
  const blocker = all[best.blocker];
  const lines = [
    `key ${JSON.stringify(key)} is not linearizable.`,
    `At most ${best.placed} of its ${nf} completed operations can be linearized in an order that ` +
      `respects real time and register semantics: [${prefix}] (? marks operations of unknown outcome), ` +
      `leaving the register ${showValue(valueNames[best.state] ?? null)}.`,
    blocker === undefined ? 'No operation could be placed next.' : `After that, ${describe(blocker)} cannot be placed before it returns.`,
    `Operations of key ${JSON.stringify(key)} by call time:`,
    ...operations.slice(0, MAX_LISTED_OPERATIONS).map((op) => `  ${describe(op)}`),
  ];
  if (operations.length > MAX_LISTED_OPERATIONS) {
    lines.push(`  … ${operations.length - MAX_LISTED_OPERATIONS} more (see operations)`);
  }
  return { ok: false, key, operations, message: lines.join('\n') };
}

function showValue(v: string | null): string {
  return v === null ? 'absent' : JSON.stringify(v);
}

function describe(op: Operation): string {
  const when = `[${op.call}, ${op.ret === Infinity ? '?' : op.ret}]`;
  const input = op.input;
  const out = op.output;
  const unknown = op.ret === Infinity;
  let what: string;
  if (input.op === 'put') {
    what = `put ${showValue(input.value)}${unknown ? ' (outcome unknown)' : ''}`;
  } else if (input.op === 'get') {
    what = unknown || out?.kind !== 'value' ? 'get → ? (outcome unknown)' : `get → ${showValue(out.value)}`;
  } else {
    const result = unknown || out?.kind !== 'cas' ? 'outcome unknown' : out.swapped ? 'swapped' : 'not swapped';
    what = `cas ${showValue(input.expected)} → ${showValue(input.value)} (${result})`;
  }
  return `#${op.id} client ${op.client} ${when} ${what}`;
}
