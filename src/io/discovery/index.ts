/**
 * Discovery (ALPN `iroh-raft-discovery/0`): members exchange their current direct addresses, so a
 * node restarted at another address is found again without new tickets. The message (wire.ts),
 * the rules of what is believed (book.ts) and the exchanges (service.ts).
 */
export { DISC_ALPN, DISC_ALPN_BYTES, DISC_BODY_BYTES_MAX, DiscoveryWireError, decodeAnnouncement, encodeAnnouncement, encodeFrame } from './wire.js';
export type { AddrClaim, Announcement } from './wire.js';
export { AddressBook } from './book.js';
export type { AddrSource, MemberAddrs, StoredPeers, Verdict } from './book.js';
export { Discovery } from './service.js';
export type { DiscoveryCounters, DiscoveryOptions } from './service.js';
