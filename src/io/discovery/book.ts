/**
 * What this node knows of every other member's direct addresses, and the rules by which an
 * announcement changes it. Pure: no I/O, no clock (the caller passes the time); the discovery
 * service persists {@link AddressBook.stored} after every change.
 *
 * Rules, per member:
 * - A member's own claim (the self part of a message whose connection it authenticated) replaces
 *   what is known when its generation is higher; a lower one is stale and ignored; an equal one
 *   with other addresses is a conflict and ignored (a node never announces two address sets under
 *   one generation). Tickets count as generation 0, below every claim.
 * - A gossip claim about a third member is a hint only: when its generation is higher than what
 *   is known, the caller probes that member at the hinted addresses and learns only the member's
 *   own answer. A hint never changes the book.
 * - A gossip claim about this node with a higher generation than its own (or the same generation
 *   with other addresses) is refuted: this node's generation moves above it, so its next
 *   announcement wins (a node that lost its peers.json would otherwise be outranked by its own
 *   older announcements held by others).
 */
import { strict as assert } from 'node:assert';
import type { AddrClaim, Announcement } from './wire.js';
import { ADDRS_MAX, GOSSIP_MAX } from './wire.js';

/** Where the addresses in use for a member came from. */
export type AddrSource = 'ticket' | 'stored' | 'discovery';

/** What `peers.json` holds: this node's generation and the members' last known claims. */
export interface StoredPeers {
  /** The generation of this node's latest announcement. */
  readonly generation: number;
  readonly members: Readonly<Record<string, AddrClaim>>;
}

/** The outcome of a member's own claim. */
export type Verdict = 'learned' | 'unchanged' | 'stale' | 'conflict';

interface Entry {
  /** Generation of `addrs`: 0 while they come from the ticket; only grows. */
  generation: number;
  /** The member's latest claimed addresses (the ticket's until a claim arrives). */
  addrs: string[];
  source: AddrSource;
  /** The ticket's addresses, still dialed after the claimed ones (an operator's fresh ticket may be right). */
  readonly ticketAddrs: readonly string[];
  /** Epoch ms of the last change from a claim; undefined for ticket or stored addresses. */
  learnedAtMs: number | undefined;
}

/** A member's line in status. */
export interface MemberAddrs {
  readonly id: string;
  readonly addrs: readonly string[];
  readonly source: AddrSource;
  readonly generation: number;
  readonly ticketAddrs: readonly string[];
  readonly learnedAt: string | null;
}

export class AddressBook {
  private readonly entries = new Map<string, Entry>();
  /**
   * This node's generation: at least every generation it has announced, and above every other
   * claim about it it has seen. Only grows.
   */
  private selfGeneration: number;
  /** The addresses announced under selfGeneration; undefined before the first announcement. */
  private selfAddrs: readonly string[] | undefined;

  /**
   * `tickets`: every other member with its ticket addresses; `stored`: what the last run persisted
   * (entries for non-members are dropped). This node's generation starts above both the stored
   * one and `nowMs`, so it grows across restarts even when `peers.json` was lost (as long as the
   * clock is not far behind).
   */
  constructor(
    readonly selfId: string,
    tickets: readonly { readonly id: string; readonly addrs: readonly string[] }[],
    stored: StoredPeers | undefined,
    nowMs: number,
  ) {
    for (const t of tickets) {
      const s = stored?.members[t.id];
      const e: Entry =
        s === undefined
          ? { generation: 0, addrs: [...t.addrs], source: 'ticket', ticketAddrs: [...t.addrs], learnedAtMs: undefined }
          : { generation: s.generation, addrs: [...s.addrs], source: 'stored', ticketAddrs: [...t.addrs], learnedAtMs: undefined };
      this.entries.set(t.id, e);
    }
    this.selfGeneration = Math.max((stored?.generation ?? 0) + 1, Math.floor(nowMs));
  }

  /** This node's current generation. */
  get generation(): number {
    return this.selfGeneration;
  }

  /**
   * The members changed (the cluster's meta group said so): a new member enters with `addrs` as
   * its ticket addresses (claims about it are taken from now on); one no longer listed is
   * forgotten. Returns the ids that entered.
   */
  setMembers(members: readonly { readonly id: string; readonly addrs: readonly string[] }[]): string[] {
    const keep = new Set(members.map((m) => m.id));
    for (const id of [...this.entries.keys()]) if (!keep.has(id)) this.entries.delete(id);
    const added: string[] = [];
    for (const m of members) {
      if (m.id === this.selfId || this.entries.has(m.id)) continue;
      this.entries.set(m.id, { generation: 0, addrs: [...m.addrs], source: 'ticket', ticketAddrs: [...m.addrs], learnedAtMs: undefined });
      added.push(m.id);
    }
    return added;
  }

  /** Ids of the other members. */
  members(): string[] {
    return [...this.entries.keys()];
  }

  /** Whether `id` is another member. */
  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** The addresses to dial `id` at: its claimed ones first, then its ticket's. */
  dialAddrs(id: string): string[] {
    const e = this.entries.get(id);
    if (e === undefined) return [];
    return [...new Set([...e.addrs, ...e.ticketAddrs])];
  }

  /**
   * This node's announcement with `addrs` as its own (canonical, 1..ADDRS_MAX of them) and every
   * member claimed at generation >= 1 as gossip. New addresses get a new generation; `changed`
   * says the generation moved (the caller persists).
   */
  announce(addrs: readonly string[]): { announcement: Announcement; changed: boolean } {
    let changed = false;
    if (this.selfAddrs !== undefined && !sameSet(this.selfAddrs, addrs) && this.selfGeneration < Number.MAX_SAFE_INTEGER) {
      this.selfGeneration++;
      changed = true;
    }
    this.selfAddrs = [...addrs];
    const gossip: (AddrClaim & { id: string })[] = [];
    for (const [id, e] of this.entries) {
      if (e.generation >= 1 && gossip.length < GOSSIP_MAX) gossip.push({ id, generation: e.generation, addrs: e.addrs.slice(0, ADDRS_MAX) });
    }
    return { announcement: { self: { generation: this.selfGeneration, addrs: addrs.slice(0, ADDRS_MAX) }, gossip }, changed };
  }

  /** `from`'s own claim (from a connection that authenticated `from`, a member). */
  applyOwn(from: string, claim: AddrClaim, nowMs: number): Verdict {
    const e = this.entries.get(from);
    assert(e !== undefined, `applyOwn for ${from}, not a member (the caller checks)`);
    if (claim.generation < e.generation) return 'stale';
    if (claim.generation === e.generation) return sameSet(claim.addrs, e.addrs) ? 'unchanged' : 'conflict';
    const was = e.generation;
    e.generation = claim.generation;
    e.addrs = [...claim.addrs];
    e.source = 'discovery';
    e.learnedAtMs = nowMs;
    assert(e.generation > was);
    assert(e.addrs.length >= 1);
    return 'learned';
  }

  /**
   * `from`'s gossip: the members worth probing (a higher generation than known, at the hinted
   * addresses), whether this node's own generation moved to refute a claim about it, and how many
   * entries named no member (ignored).
   */
  applyGossip(
    from: string,
    gossip: Announcement['gossip'],
  ): { hints: { id: string; generation: number; addrs: string[] }[]; refuted: boolean; unknown: number } {
    const hints: { id: string; generation: number; addrs: string[] }[] = [];
    let refuted = false;
    let unknown = 0;
    for (const g of gossip) {
      if (g.id === this.selfId) {
        const differs = this.selfAddrs === undefined || !sameSet(g.addrs, this.selfAddrs);
        // A claim at the top of the range cannot be outranked; it is left to lose to time (or an operator).
        const outranked = g.generation > this.selfGeneration || (g.generation === this.selfGeneration && differs);
        if (outranked && g.generation < Number.MAX_SAFE_INTEGER) {
          this.selfGeneration = g.generation + 1;
          refuted = true;
          assert(this.selfGeneration > g.generation);
        }
        continue;
      }
      if (g.id === from) continue; // Its own claim is in the self part.
      const e = this.entries.get(g.id);
      if (e === undefined) {
        unknown++;
        continue;
      }
      if (g.generation > e.generation) hints.push({ id: g.id, generation: g.generation, addrs: [...g.addrs] });
    }
    return { hints, refuted, unknown };
  }

  /** What to persist in `peers.json`. */
  stored(): StoredPeers {
    const members: Record<string, AddrClaim> = {};
    for (const [id, e] of this.entries) if (e.generation >= 1) members[id] = { generation: e.generation, addrs: [...e.addrs] };
    return { generation: this.selfGeneration, members };
  }

  /** Every other member's addresses in use and where they came from, for status. */
  view(): MemberAddrs[] {
    return [...this.entries].map(([id, e]) => ({
      id,
      addrs: [...e.addrs],
      source: e.source,
      generation: e.generation,
      ticketAddrs: [...e.ticketAddrs],
      learnedAt: e.learnedAtMs === undefined ? null : new Date(e.learnedAtMs).toISOString(),
    }));
  }
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}
