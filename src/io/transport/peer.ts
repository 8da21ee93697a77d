/** What the transport keeps per peer: where to dial it, its queue of records, its links. */

import type * as Iroh from '@number0/iroh/index.js';
import { DIAL_FRESH } from './backoff.js';
import type { DialState } from './backoff.js';
import type { TransportLogger } from './errors.js';
import { CloseCode } from './hello.js';
import { PeerQueue } from './lanes.js';
import type { LaneLimits } from './lanes.js';
import type { Link } from './link.js';
import { zeroCounters } from './options.js';

export class Peer {
  readonly counters = zeroCounters();
  /** Addresses to dial, canonical; replaced by addPeer, learned from an inbound connection when empty. */
  addrs: string[] = [];
  /** Added by addPeer: kept connected (dialed at once, redialed after a break), not only on demand. */
  wanted = false;
  endpointId: Iroh.EndpointId | undefined;
  /** Records waiting for the writer, in two lanes (lanes.ts). */
  readonly queue: PeerQueue;
  /** The link new frames go to; undefined while none is up. */
  active: Link | undefined;
  /** Every open link (the active one and draining ones). */
  readonly links = new Set<Link>();
  dialing = false;
  retryTimer: NodeJS.Timeout | undefined;
  /** Backoff and breaker (see backoff.ts); replaced whole by its rules, reset when a connection comes up. */
  dial: DialState = DIAL_FRESH;

  constructor(
    readonly id: string,
    limits: LaneLimits,
  ) {
    this.queue = new PeerQueue(limits);
  }

  /** A fresh start for dialing (new addresses, or a connection came up): no backoff, breaker closed. */
  resetDialing(): void {
    this.dial = DIAL_FRESH;
    this.cancelRetry();
  }

  cancelRetry(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /**
   * One connection per peer. Both sides may dial (whoever has something to send and no connection),
   * so two nodes can dial each other at the same moment. The hello settles it deterministically:
   * - a connection from another incarnation of the peer (it restarted) replaces the old one at once;
   * - two connections between the same incarnations: both sides keep the one dialed by the lower
   *   endpoint id (as strings) and drain the other. Draining is graceful: no new frames go on it,
   *   each side finishes its send half, reads the peer's to the end, and the connection is closed
   *   once both halves are done (or after `closeTimeoutMs`), so no frame in flight is lost.
   * A lower-id-only dialing rule would avoid the race, but then a higher id could not reach a peer
   * that does not know its address, or that has nothing to send; the id rule only breaks ties.
   *
   * Here `l` is a fresh link (hellos exchanged) and `localId` this node's endpoint id; the peer's
   * dialing starts afresh, since a connection came up. True when `l` replaced a connection of an
   * earlier incarnation: the peer restarted, and whatever else was open with it is dead.
   */
  adopt(l: Link, localId: string, log: TransportLogger): boolean {
    let restarted = false;
    this.links.add(l);
    const cur = this.active;
    if (cur === undefined) {
      this.active = l;
    } else if (cur.peerIncarnation !== l.peerIncarnation) {
      this.active = l;
      log.info({ peer: this.id }, 'peer restarted: replacing its old connection');
      cur.close(CloseCode.Superseded, 'peer restarted');
      restarted = true;
    } else {
      // Same incarnations: keep the connection dialed by the lower id; between two of the same
      // direction (the dialer gave up on the older one), the newer.
      const keepNew = cur.dialedByMe === l.dialedByMe || l.dialedByMe === localId < this.id;
      const loser = keepNew ? cur : l;
      this.active = keepNew ? l : cur;
      log.debug?.({ peer: this.id, kept: this.active.dialedByMe ? 'outbound' : 'inbound' }, 'duplicate connection: draining one');
      loser.drain();
    }
    this.resetDialing();
    return restarted;
  }
}
