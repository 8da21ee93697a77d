/**
 * The turns of the store's crash test, and the model it is checked against. A turn is a pure
 * function of (seed, turn number, what the shards look like now), so the child process that
 * writes a real store and the test that models it make the same turns from the same state.
 *
 * A logged turn appends entries to a shard (at its end, or cutting into its unapplied part as a
 * new leader's would), changes term and vote, and applies entries (a put or a remove per entry);
 * a checkpoint turn runs the store's checkpoint, with a compaction or a snapshot installed in it
 * now and then. Entries are mostly small, some up to 1.5 MiB (records past a step of the log
 * file's growth).
 */
import { createHash } from 'node:crypto';
import { EntryType, Prng } from '../../../src/shards/raft/index.js';
import type { LogIndex, NodeId, ShardId, Term } from '../../../src/shards/raft/index.js';

export const SHARDS = [1, 2] as ShardId[];
export const VOTERS = [1, 2, 3] as NodeId[];

/** What a turn's plan depends on: one shard as it looks from outside. */
export interface View {
  readonly first: number;
  readonly last: number;
  readonly term: number;
  readonly applied: number;
}

export interface LoggedOp {
  readonly shard: ShardId;
  readonly hard?: { readonly term: number; readonly vote: number };
  readonly append?: { readonly lo: number; readonly term: number; readonly sizes: readonly number[] };
  readonly applyTo?: number;
}

export type Turn =
  | { readonly kind: 'logged'; readonly ops: readonly LoggedOp[] }
  | {
      readonly kind: 'checkpoint';
      readonly compact?: { readonly shard: ShardId; readonly index: number };
      readonly snapshot?: { readonly shard: ShardId; readonly index: number; readonly term: number; readonly keys: number };
    };

const MiB = 1024 * 1024;

function rng(seed: number, t: number): Prng {
  return new Prng(((seed * 1_000_003) ^ (t * 7919)) >>> 0);
}

export function planTurn(seed: number, t: number, views: ReadonlyMap<ShardId, View>): Turn {
  const r = rng(seed, t);
  if (r.chance(0.1)) {
    const v = (s: ShardId) => views.get(s)!;
    let compact: { shard: ShardId; index: number } | undefined;
    let snapshot: { shard: ShardId; index: number; term: number; keys: number } | undefined;
    if (r.chance(0.4)) {
      const shard = r.pick(SHARDS);
      compact = { shard, index: r.int(v(shard).first - 1, v(shard).applied + 1) };
    }
    if (r.chance(0.1)) {
      const shard = r.pick(SHARDS);
      snapshot = { shard, index: v(shard).last + r.int(1, 20), term: v(shard).term, keys: r.int(0, 6) };
    }
    return { kind: 'checkpoint', ...(compact ? { compact } : {}), ...(snapshot ? { snapshot } : {}) };
  }
  const ops: LoggedOp[] = [];
  for (const shard of SHARDS) {
    if (!r.chance(0.7)) continue;
    const v = views.get(shard)!;
    let term = v.term;
    let hard: LoggedOp['hard'];
    if (r.chance(0.12)) {
      term = v.term + 1;
      hard = { term, vote: r.pick(VOTERS) };
    }
    let append: LoggedOp['append'];
    let last = v.last;
    if (r.chance(0.8)) {
      // A new leader's entries may cut into what is not applied yet; never into what is.
      const cut = v.last > v.applied && r.chance(0.3);
      const lo = cut ? r.int(v.applied + 1, v.last + 1) : v.last + 1;
      const sizes: number[] = [];
      for (let n = cut ? r.int(1, 3) : r.int(1, 6); n > 0; n--) sizes.push(r.chance(0.05) ? r.int(MiB / 4, (3 * MiB) / 2) : r.int(0, 300));
      append = { lo, term, sizes };
      last = lo + sizes.length - 1;
    }
    const applyTo = last > v.applied && r.chance(0.5) ? r.int(v.applied + 1, last + 1) : undefined;
    ops.push({ shard, ...(hard ? { hard } : {}), ...(append ? { append } : {}), ...(applyTo !== undefined ? { applyTo } : {}) });
  }
  return { kind: 'logged', ops };
}

const HEADER = 32;

/** The bytes of an entry: a header naming it, then filler (so a torn or misplaced entry shows). */
export function entryData(t: number, shard: ShardId, index: number, term: number, size: number): Uint8Array {
  const head = Buffer.from(`${t}:${shard}:${index}:${term}|`.padEnd(HEADER, '.'), 'latin1');
  const out = new Uint8Array(HEADER + size);
  out.set(head);
  out.fill((t * 31 + index) & 0xff, HEADER);
  return out;
}

/** What applying an entry does to the data: a put of a key named by its index, or a remove. */
export function applyEffect(data: Uint8Array): { key: string; value: string | null } {
  const [t, , index, term] = Buffer.from(data.subarray(0, HEADER)).toString('latin1').split('|')[0]!.split(':').map(Number) as [number, number, number, number];
  return { key: `k${index % 13}`, value: t % 6 === 0 ? null : `${t}:${index}:${term}` };
}

/** The data of a snapshot the plan installs. */
export function snapshotPairs(index: number, keys: number): { key: string; value: string }[] {
  const out: { key: string; value: string }[] = [];
  for (let i = 0; i < keys; i++) out.push({ key: `k${(index + i) % 13}`, value: `snap:${index}:${i}` });
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

export const entryOf = (t: number, shard: ShardId, index: number, term: number, size: number) => ({
  index: index as LogIndex,
  term: term as Term,
  type: EntryType.Normal,
  data: entryData(t, shard, index, term, size),
});

// ------------------------------------------------------------------ the model

export interface ShardModel {
  first: number;
  /** Term of entry first - 1 (the compaction point). */
  compactedTerm: number;
  /** Entries first..last as (term, data). */
  log: { term: number; data: Uint8Array }[];
  term: number;
  vote: number;
  applied: number;
  data: Map<string, string>;
  /** What the last checkpoint made durable of the applied state. */
  ckpt: { applied: number; data: Map<string, string> };
}

export type Model = Map<ShardId, ShardModel>;

export function initialModel(): Model {
  // A founding member's shard: a snapshot at index 1 of term 1 (see Store.create).
  return new Map(
    SHARDS.map((s) => [s, { first: 2, compactedTerm: 1, log: [], term: 1, vote: 0, applied: 1, data: new Map(), ckpt: { applied: 1, data: new Map() } }]),
  );
}

const lastOf = (m: ShardModel) => m.first + m.log.length - 1;

export function viewOf(m: ShardModel): View {
  return { first: m.first, last: lastOf(m), term: m.term, applied: m.applied };
}

export const viewsOf = (model: Model): Map<ShardId, View> => new Map([...model].map(([s, m]) => [s, viewOf(m)]));

function copy(model: Model): Model {
  return new Map([...model].map(([s, m]) => [s, { ...m, log: [...m.log], data: new Map(m.data), ckpt: m.ckpt }]));
}

/** The model after turn `t` (a new model; `model` is left as it was). */
export function step(model: Model, seed: number, t: number): Model {
  const turn = planTurn(seed, t, viewsOf(model));
  const next = copy(model);
  if (turn.kind === 'checkpoint') {
    for (const m of next.values()) m.ckpt = { applied: m.applied, data: new Map(m.data) };
    if (turn.compact) {
      const m = next.get(turn.compact.shard)!;
      const drop = turn.compact.index - (m.first - 1);
      if (drop > 0) {
        m.compactedTerm = m.log[drop - 1]!.term;
        m.log = m.log.slice(drop);
        m.first = turn.compact.index + 1;
      }
    }
    if (turn.snapshot) {
      const m = next.get(turn.snapshot.shard)!;
      const { index, term, keys } = turn.snapshot;
      m.first = index + 1;
      m.compactedTerm = term;
      m.log = [];
      m.applied = index;
      m.data = new Map(snapshotPairs(index, keys).map((p) => [p.key, p.value]));
      m.ckpt = { applied: index, data: new Map(m.data) };
    }
    return next;
  }
  for (const op of turn.ops) {
    const m = next.get(op.shard)!;
    if (op.append) {
      m.log.length = op.append.lo - m.first;
      op.append.sizes.forEach((size, i) => m.log.push({ term: op.append!.term, data: entryData(t, op.shard, op.append!.lo + i, op.append!.term, size) }));
    }
    if (op.hard) {
      m.term = op.hard.term;
      m.vote = op.hard.vote;
    }
    if (op.applyTo !== undefined) {
      for (let i = m.applied + 1; i <= op.applyTo; i++) {
        const { key, value } = applyEffect(m.log[i - m.first]!.data);
        if (value === null) m.data.delete(key);
        else m.data.set(key, value);
      }
      m.applied = op.applyTo;
    }
  }
  return next;
}

/** What a process restart leaves of `model`: the applied state of its last checkpoint. */
export function restarted(model: Model): Model {
  const next = copy(model);
  for (const m of next.values()) {
    m.applied = m.ckpt.applied;
    m.data = new Map(m.ckpt.data);
  }
  return next;
}

/** A comparable rendering of a shard's state (each entry's bytes by length and SHA-1). */
export function fingerprint(s: {
  first: number;
  last: number;
  compactedTerm: number;
  entries: readonly { term: number; data: Uint8Array }[];
  term: number;
  vote: number;
  applied: number;
  data: ReadonlyMap<string, string>;
}): string {
  const entries = s.entries.map((e) => `${e.term}/${e.data.length}/${createHash('sha1').update(e.data).digest('hex').slice(0, 12)}`).join(',');
  const data = [...s.data]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return `first ${s.first} last ${s.last} compacted term ${s.compactedTerm} hard ${s.term}/${s.vote} applied ${s.applied} data {${data}} log [${entries}]`;
}

export function modelFingerprint(model: Model): string {
  return [...model].map(([s, m]) => `shard ${s}: ${fingerprint({ ...m, last: lastOf(m), entries: m.log })}`).join('\n');
}
