/**
 * Where the client sends a request: the shard's leader when it knows it, else any endpoint.
 *
 * It learns the cluster from `GET /v1/placement` of every endpoint: each endpoint names its own
 * raft node id (`node`), which maps a leader's node id to an endpoint URL; `shards`, `hash` and
 * (for callers trusted with it) `placementKey` say how to compute a key's shard (with the same
 * function as the nodes, src/wire/shard-hash.ts); `leaders` says who leads what. Answers refine it
 * (`x-shard` and `x-node` name the shard and the node that served a write or linearizable read:
 * its leader). An endpoint that failed is avoided for a while and the leaders it stood for are
 * forgotten.
 *
 * A tenant's token does not get the placement key of a keyed cluster, nor `x-shard` in answers: the
 * client cannot compute shards then, and remembers the node that served each key it used (from
 * `x-node`, at most {@link LEARNED_KEYS_MAX} keys), so a key's next requests go to its leader;
 * others go to any endpoint, which forwards them.
 */
import { hashOfPlacement } from '../wire/shard-hash.js';
import type { ShardHash } from '../wire/shard-hash.js';

/** Keys whose leader the client remembers from answers when it cannot compute shards; the oldest go first. */
export const LEARNED_KEYS_MAX = 10_000;

/** One node the client was given. */
export interface Endpoint {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:7070`. */
  readonly url: string;
  /** Its raft node id, once its placement answered. */
  node: number | undefined;
  /** performance.now() before which it is avoided (it refused, reset or timed out). */
  downUntil: number;
}

/** The parts of `GET /v1/placement` the client uses. */
interface PlacementAnswer {
  readonly node: number;
  readonly shards: number;
  readonly hash: string;
  /** The keyed hash's key (32 hex digits), when the caller may know it. */
  readonly placementKey?: string;
  readonly leaders: readonly (number | null)[];
}

function isPlacement(v: unknown): v is PlacementAnswer {
  const p = v as Partial<PlacementAnswer> | null;
  return (
    typeof p === 'object' &&
    p !== null &&
    Number.isSafeInteger(p.node) &&
    Number.isSafeInteger(p.shards) &&
    (p.shards ?? 0) > 0 &&
    typeof p.hash === 'string' &&
    Array.isArray(p.leaders)
  );
}

export interface RoutingOptions {
  /** How long a failed endpoint is avoided, in ms. */
  readonly downMs: number;
  /** Least time between two placement refreshes, in ms. */
  readonly refreshGapMs: number;
  /** Longest wait for one endpoint's placement, in ms. */
  readonly placementTimeoutMs: number;
  /** Headers sent with every request (authorization). */
  readonly headers: Readonly<Record<string, string>>;
}

export class Routing {
  readonly endpoints: Endpoint[];
  /** The cluster's shard count, once an endpoint answered its placement. */
  private shards: number | undefined;
  /** The cluster's key -> shard function, when this client can compute it (known name, and the key if keyed). */
  private fn: ShardHash | undefined;
  /** The last answer named no function yet (a new cluster's first moments): ask again soon. */
  private pending = false;
  /** tenant, 0, key (latin1) -> node id of the key's leader, from answers; used while `fn` is undefined. Oldest first; at most LEARNED_KEYS_MAX. */
  private readonly learnedKeys = new Map<string, number>();
  /** Per shard: the node id of its leader as last heard, or null. */
  private leaders: (number | null)[] = [];
  private readonly byNode = new Map<number, Endpoint>();
  /** Round-robin position for requests without a known leader. */
  private next = 0;
  private refreshing: Promise<void> | undefined;
  /** performance.now() of the last refresh started (-Infinity: never). */
  private refreshedAt = -Infinity;
  /** The function last built, with the `hash` and `placementKey` it was built from. */
  private built: { readonly id: string; readonly fn: ShardHash | undefined } | undefined;
  /** Placement requests in flight, so close() can end them. */
  private readonly aborter = new AbortController();

  constructor(
    urls: readonly string[],
    private readonly opts: RoutingOptions,
  ) {
    this.endpoints = urls.map((url) => ({ url: url.replace(/\/+$/, ''), node: undefined, downUntil: 0 }));
  }

  /** The shard of a key, when the client can compute it (undefined: see keyLeader, else route anywhere). */
  shardOf(tenant: string, key: Uint8Array): number | undefined {
    if (this.shards === undefined) return undefined;
    if (this.fn !== undefined) return this.fn.shardOf(tenant, key, this.shards);
    if (this.pending) this.refreshSoon();
    return undefined;
  }

  /** The node that last served a key as its leader, when the client cannot compute shards. */
  keyLeader(tenant: string, key: Uint8Array): number | undefined {
    return this.fn === undefined ? this.learnedKeys.get(learnedKey(tenant, key)) : undefined;
  }

  /**
   * The endpoint for an attempt: the leader of `shard` (or `keyLeader`, the key's last leader, when
   * the shard is unknown) when `toLeader` and it is known and up, else the next endpoint in turn
   * that is up (every one when all are down), skipping `avoid` (the one that just failed) when
   * another is left.
   */
  pick(shard: number | undefined, toLeader: boolean, avoid?: Endpoint, keyLeader?: number): Endpoint {
    const now = performance.now();
    if (toLeader && (shard !== undefined || keyLeader !== undefined)) {
      const lead = shard === undefined ? keyLeader : this.leaders[shard];
      const ep = lead === null || lead === undefined ? undefined : this.byNode.get(lead);
      if (ep !== undefined && ep !== avoid && ep.downUntil <= now) return ep;
    }
    const n = this.endpoints.length;
    for (const wantUp of [true, false]) {
      for (let i = 0; i < n; i++) {
        const ep = this.endpoints[(this.next + i) % n]!;
        if ((ep.downUntil <= now || !wantUp) && (ep !== avoid || n === 1)) {
          this.next = (this.next + i + 1) % n;
          return ep;
        }
      }
    }
    return this.endpoints[0]!;
  }

  /**
   * An answer of a leader-bound request named its serving node (`x-node`), the leader of the
   * request's shard (`x-shard`, when given); and, when the client cannot compute shards, the
   * leader of the request's key.
   */
  learned(shard: number | undefined, node: number, of?: { readonly tenant: string; readonly key: Uint8Array }): void {
    if (this.shards === undefined || !this.byNode.has(node)) return;
    if (shard !== undefined && shard < this.shards) this.leaders[shard] = node;
    if (of === undefined || this.fn !== undefined) return;
    const k = learnedKey(of.tenant, of.key);
    this.learnedKeys.delete(k);
    if (this.learnedKeys.size >= LEARNED_KEYS_MAX) this.learnedKeys.delete(this.learnedKeys.keys().next().value!);
    this.learnedKeys.set(k, node);
  }

  /** The shard's (or the key's) leader is not who the client thought (NotLeader and the like): ask around again. */
  leaderUnknown(shard: number | undefined, of?: { readonly tenant: string; readonly key: Uint8Array }): void {
    if (shard !== undefined) this.leaders[shard] = null;
    if (of !== undefined) this.learnedKeys.delete(learnedKey(of.tenant, of.key));
    this.refreshSoon();
  }

  /** `ep` refused, reset or went silent: avoid it for downMs, forget the shards it led. */
  failed(ep: Endpoint): void {
    ep.downUntil = performance.now() + this.opts.downMs;
    if (ep.node !== undefined) this.leaders = this.leaders.map((l) => (l === ep.node ? null : l));
    // The keys it led are not forgotten one by one: pick() skips an endpoint that is down.
    this.refreshSoon();
  }

  /** `ep` answered: it is up. */
  answered(ep: Endpoint): void {
    ep.downUntil = 0;
  }

  /** Waits for the first placement (or its failure), at most `ms`; later calls return at once. */
  async ready(ms: number): Promise<void> {
    if (this.refreshedAt === -Infinity) this.refreshSoon();
    if (this.shards !== undefined || this.refreshing === undefined) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.refreshing, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
  }

  /** Starts a refresh unless one runs or one started less than refreshGapMs ago. */
  refreshSoon(): void {
    const now = performance.now();
    if (this.refreshing !== undefined || now - this.refreshedAt < this.opts.refreshGapMs || this.aborter.signal.aborted) return;
    this.refreshedAt = now;
    this.refreshing = this.refresh().finally(() => (this.refreshing = undefined));
  }

  /** Ends placement requests in flight; no refresh starts after. */
  close(): void {
    this.aborter.abort();
  }

  /**
   * Asks every endpoint for its placement at once. Each answer names its endpoint's node id;
   * leaders merge: a node's word on the shards it leads itself wins, then the first other answer
   * that names a leader.
   */
  private async refresh(): Promise<void> {
    const answers = await Promise.all(this.endpoints.map((ep) => this.placementOf(ep)));
    const merged: (number | null)[] = [];
    let shards: number | undefined;
    let fn: ShardHash | undefined;
    let pending = false;
    for (const [i, a] of answers.entries()) {
      if (a === undefined) continue;
      const ep = this.endpoints[i]!;
      if (ep.node !== undefined && ep.node !== a.node) this.byNode.delete(ep.node);
      ep.node = a.node;
      this.byNode.set(a.node, ep);
      shards ??= a.shards;
      if (a.shards !== shards) continue;
      // A function this client does not know, or a keyed one without its key: route by what
      // answers teach, else anywhere; the nodes forward.
      fn ??= this.functionOf(a);
      pending ||= a.hash === 'pending';
      for (let s = 0; s < shards; s++) {
        const l = a.leaders[s];
        const lead = typeof l === 'number' && Number.isSafeInteger(l) ? l : null;
        if (lead !== null && (merged[s] === undefined || merged[s] === null || lead === a.node)) merged[s] = lead;
      }
    }
    if (shards === undefined) return;
    if (shards !== this.shards) this.learnedKeys.clear();
    this.shards = shards;
    this.fn = fn;
    this.pending = fn === undefined && pending;
    if (fn !== undefined) this.learnedKeys.clear();
    this.leaders = Array.from({ length: shards }, (_, s) => merged[s] ?? null);
  }

  /** The function an answer names, when this client computes it (built once per name and key). */
  private functionOf(a: PlacementAnswer): ShardHash | undefined {
    const id = `${a.hash} ${typeof a.placementKey === 'string' ? a.placementKey : ''}`;
    if (this.built?.id !== id) this.built = { id, fn: hashOfPlacement(a.hash, typeof a.placementKey === 'string' ? a.placementKey : undefined) };
    return this.built.fn;
  }

  private async placementOf(ep: Endpoint): Promise<PlacementAnswer | undefined> {
    try {
      const signal = AbortSignal.any([this.aborter.signal, AbortSignal.timeout(this.opts.placementTimeoutMs)]);
      const res = await fetch(`${ep.url}/v1/placement`, { headers: this.opts.headers, signal });
      const body: unknown = await res.json();
      if (!res.ok || !isPlacement(body)) return undefined;
      this.answered(ep);
      return body;
    } catch {
      // Down, or not an iroh-raft node: requests still go there in turn, and fail on their own.
      return undefined;
    }
  }
}

/** The learned-shard map's key of a tenant's key: tenant, 0, the key's bytes as latin1 (the bytes the nodes hash). */
function learnedKey(tenant: string, key: Uint8Array): string {
  let s = `${tenant}\u0000`;
  for (let i = 0; i < key.length; i++) s += String.fromCharCode(key[i]!);
  return s;
}
