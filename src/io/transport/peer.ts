/** What the transport keeps per peer: where to dial it, its queue of records, its links. */

import type * as Iroh from '@number0/iroh/index.js';
import { recordBytes } from '../../wire/index.js';
import type { FrameRecord } from '../../wire/index.js';
import { DIAL_FRESH } from './backoff.js';
import type { DialState } from './backoff.js';
import type { Link } from './link.js';
import { zeroCounters } from './options.js';

export class Peer {
  readonly counters = zeroCounters();
  /** Addresses to dial, canonical; replaced by addPeer, learned from an inbound connection when empty. */
  addrs: string[] = [];
  /** Added by addPeer: kept connected (dialed at once, redialed after a break), not only on demand. */
  wanted = false;
  endpointId: Iroh.EndpointId | undefined;
  /** Records waiting for the writer, oldest first; their wire size sums to `queuedBytes`. */
  queue: FrameRecord[] = [];
  queuedBytes = 0;
  /** The link new frames go to; undefined while none is up. */
  active: Link | undefined;
  /** Every open link (the active one and draining ones). */
  readonly links = new Set<Link>();
  dialing = false;
  retryTimer: NodeJS.Timeout | undefined;
  /** Backoff and breaker (see backoff.ts); replaced whole by its rules, reset when a connection comes up. */
  dial: DialState = DIAL_FRESH;

  constructor(readonly id: string) {}

  /** A fresh start for dialing (new addresses, or a connection came up): no backoff, breaker closed. */
  resetDialing(): void {
    this.dial = DIAL_FRESH;
    this.cancelRetry();
  }

  cancelRetry(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** Takes the oldest records that fit in one frame of `maxFrameBytes` (at least one). */
  takeBatch(maxFrameBytes: number): FrameRecord[] {
    if (this.queuedBytes <= maxFrameBytes) {
      const all = this.queue;
      this.queue = [];
      this.queuedBytes = 0;
      return all;
    }
    let bytes = 0;
    let n = 0;
    while (n < this.queue.length) {
      const w = recordBytes(this.queue[n]!.payload.length);
      if (n > 0 && bytes + w > maxFrameBytes) break;
      bytes += w;
      n++;
    }
    this.queuedBytes -= bytes;
    return this.queue.splice(0, n);
  }
}
