/**
 * The cluster's key -> shard function, chosen once per cluster and kept as the record
 * `placement/key` of the reserved tenant `_system` (until the cluster has a metadata group of
 * its own), which the unkeyed function places, so it can be read before the choice is known.
 *
 * Every node proposes a choice and the first write wins: each writes its proposal only if the
 * record does not exist (compare-and-set at version 0), then reads the record linearizably and
 * uses what it finds, its own proposal or another's. A node of a new cluster proposes the keyed
 * hash with 16 fresh random bytes; a node whose data directory predates the keyed hash proposes
 * the unkeyed one, so an existing cluster keeps placing keys where they are. Every node of one
 * cluster reads the same record, so no two of them place keys differently.
 *
 * Record value: JSON `{"hash": UNKEYED_HASH}` or `{"hash": KEYED_HASH, "key": "<32 hex digits>"}`.
 */
import { Buffer } from 'node:buffer';
import { ServiceErrorCode } from '../api/index.js';
import type { Failure, KvService, Result } from '../api/index.js';
import { KEYED_HASH, PLACEMENT_KEY_BYTES, UNKEYED_HASH } from '../wire/shard-hash.js';
import type { PlacementChoice } from './placement-hash.js';
import { SYSTEM_TENANT } from './tenants.js';

/** Key of the record in `_system`. */
export const PLACEMENT_RECORD_KEY = 'placement/key';

export interface SettleOptions {
  /** Where the record lives (the router). */
  readonly kv: KvService;
  /** What this node writes when no record exists yet. */
  readonly proposal: PlacementChoice;
  /** Ends the tries (the node stops): settle() then resolves undefined. */
  readonly signal: AbortSignal;
  /** Told each failed try (the shard has no leader yet, a timeout...), numbered from 1. */
  readonly onFailure?: (f: Failure, tries: number) => void;
  /** First pause between tries in ms, doubling up to 1,000. Default 50. */
  readonly retryMs?: number;
}

/**
 * The cluster's choice: this node's proposal written if no record existed, then the record read
 * linearizably; failures are tried again (with growing pauses) until one read succeeds or
 * `signal` aborts (undefined then).
 */
export async function settlePlacement(opts: SettleOptions): Promise<PlacementChoice | undefined> {
  let pauseMs = opts.retryMs ?? 50;
  for (let tries = 1; !opts.signal.aborted; tries++) {
    const r = await settleOnce(opts.kv, opts.proposal);
    if (r.ok) return r.value;
    opts.onFailure?.(r, tries);
    await pause(pauseMs, opts.signal);
    pauseMs = Math.min(1_000, pauseMs * 2);
  }
  return undefined;
}

async function settleOnce(kv: KvService, proposal: PlacementChoice): Promise<Result<PlacementChoice>> {
  const key = Buffer.from(PLACEMENT_RECORD_KEY, 'latin1');
  // Not swapped: a record exists (another node's, or this node's from an earlier try).
  const w = await kv.put({ tenant: SYSTEM_TENANT, key, value: encodePlacement(proposal), expectedVersion: 0 });
  if (!w.ok) return w;
  const r = await kv.get({ tenant: SYSTEM_TENANT, key, consistency: 'linearizable' });
  if (!r.ok) return r;
  // Written just before at version 0 and never deleted: its absence would be a bug of the KV.
  if (!r.value.found) return { ok: false, code: ServiceErrorCode.Internal, message: `_system ${PLACEMENT_RECORD_KEY} is missing after it was written` };
  return decodePlacement(r.value.value);
}

/** The record's bytes. */
export function encodePlacement(c: PlacementChoice): Uint8Array {
  const json = c.hash === KEYED_HASH ? { hash: c.hash, key: Buffer.from(c.key).toString('hex') } : { hash: c.hash };
  return Buffer.from(JSON.stringify(json), 'utf8');
}

/** A record's choice; Internal for bytes this module did not write. */
export function decodePlacement(bytes: Uint8Array): Result<PlacementChoice> {
  const c = placementOfJson(parse(bytes));
  if (c !== undefined) return { ok: true, value: c };
  return { ok: false, code: ServiceErrorCode.Internal, message: `_system ${PLACEMENT_RECORD_KEY} is malformed: no node of this version wrote it` };
}

/** `{hash}` or `{hash, key: hex}` as a choice; undefined for anything else. Shared with cluster.json. */
export function placementOfJson(v: unknown): PlacementChoice | undefined {
  const o = v as { hash?: unknown; key?: unknown } | null | undefined;
  if (typeof o !== 'object' || o === null) return undefined;
  if (o.hash === UNKEYED_HASH) return { hash: UNKEYED_HASH };
  const hex = new RegExp(`^[0-9a-f]{${PLACEMENT_KEY_BYTES * 2}}$`);
  if (o.hash === KEYED_HASH && typeof o.key === 'string' && hex.test(o.key)) return { hash: KEYED_HASH, key: Buffer.from(o.key, 'hex') };
  return undefined;
}

function parse(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    return undefined;
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
