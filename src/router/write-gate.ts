/**
 * The router's gate for client writes in flight: bytes (writeBytesMax), and a count while tenants
 * share the node (writesSharedMax), with each tenant's waiting writes in a line of its own
 * (FairGate in src/api). Kept here so the router only acquires and releases.
 */
import { FairGate } from '../api/index.js';

/** Defaults of the limits below; see RouterOptions for their meaning. */
export const WRITE_BYTES_MAX_DEFAULT = 2 << 20;
/**
 * While tenants share: the bound that kept a steady tenant's p99 within 2x of its solo p99 beside a
 * flood, at the price of about a third of the flood's throughput (README "Fair sharing").
 */
export const WRITES_SHARED_MAX_DEFAULT = 8;
export const REQUESTS_MAX_DEFAULT = 4096;

/**
 * The gate for these limits: one tenant alone is held only to requestsMax (the router's lanes)
 * and writeBytesMax; two or more to writesSharedMax writes in flight (at most requestsMax).
 */
export function writeGate(o: { readonly requestsMax?: number; readonly writeBytesMax?: number; readonly writesSharedMax?: number }): FairGate {
  const requestsMax = o.requestsMax ?? REQUESTS_MAX_DEFAULT;
  return new FairGate({
    capacityBytes: o.writeBytesMax ?? WRITE_BYTES_MAX_DEFAULT,
    capacityRequests: requestsMax,
    sharedRequests: Math.min(o.writesSharedMax ?? WRITES_SHARED_MAX_DEFAULT, requestsMax),
  });
}

/** The message of the Overloaded answer to a write that waited `waitMs` without room: what was in flight, under which limits. */
export function waitedMessage(g: FairGate, waitMs: number): string {
  return `waited ${waitMs} ms behind ${g.holding} writes of ${g.held} bytes in flight (writesSharedMax ${g.sharedRequests}, writeBytesMax ${g.capacityBytes}); not proposed`;
}
