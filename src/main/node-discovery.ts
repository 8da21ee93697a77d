/**
 * Discovery on one node (src/io/discovery): the address book from the tickets and `peers.json`,
 * the transport told where to dial each member (and again whenever a member's address is
 * learned), the exchanges started, and their metrics. Wired here so node.ts stays the map of the
 * start order.
 */
import type * as Iroh from '@number0/iroh/index.js';
import type { Registry } from 'prom-client';
import { AddressBook, DISC_ALPN_BYTES, Discovery } from '../io/discovery/index.js';
import type { DiscoveryCounters } from '../io/discovery/index.js';
import { normalizeAddr } from '../io/ticket.js';
import type { Transport, TransportLogger } from '../io/transport/index.js';
import { CloseCode } from '../io/transport/hello.js';
import { closeQuietly } from '../io/transport/link.js';
import { counterFrom } from '../workers/metrics.js';
import type { NodeConfig } from './config.js';
import { readPeersFile, writePeersFile } from './peers-file.js';

/**
 * Builds the address book (tickets, overlaid with what `peers.json` stored), points the transport
 * at every member, and starts the exchanges: one now with every member, then every
 * `--discovery-interval-ms`.
 */
export function startDiscovery(
  cfg: Pick<NodeConfig, 'data' | 'listen' | 'discoveryIntervalMs'>,
  p: { transport: Transport; peers: readonly { id: string; addrs: string[] }[]; log: TransportLogger; registry: Registry },
): Discovery {
  const { transport, log } = p;
  const file = readPeersFile(cfg.data);
  if (file.why !== undefined) log.warn({ err: file.why }, 'discovery: ignoring stored peer addresses');
  const book = new AddressBook(transport.id, p.peers, file.stored, Date.now());
  const dialHere = (id: string): void => transport.addPeer({ id, addrs: book.dialAddrs(id) });
  for (const id of book.members()) dialHere(id);
  const listen = `${cfg.listen.host.includes(':') ? `[${cfg.listen.host}]` : cfg.listen.host}:${cfg.listen.port}`;
  const discovery = new Discovery({
    book,
    selfAddrs: () => selfAddrs(transport.addrs(), listen),
    connect: (id, addrs) => transport.connect(id, addrs, DISC_ALPN_BYTES),
    onLearned: dialHere,
    persist: (stored) => writePeersFile(cfg.data, stored),
    intervalMs: cfg.discoveryIntervalMs,
    logger: log,
  });
  registerDiscoveryMetrics(p.registry, discovery.counters);
  discovery.start();
  return discovery;
}

/** Hands a discovery connection to the service, or closes it while the node is still starting. */
export function acceptDiscovery(d: Discovery | undefined, conn: Iroh.Connection, peerId: string): void {
  if (d === undefined) closeQuietly(conn, CloseCode.ShuttingDown, 'not ready');
  else d.accept(conn, peerId);
}

/** The endpoint's addresses in canonical form (at most 16); the listen address when it reports none usable. */
function selfAddrs(reported: readonly string[], listen: string): string[] {
  const out = new Set<string>();
  for (const a of reported) {
    try {
      out.add(normalizeAddr(a));
    } catch {
      // An address a peer could not dial (an IPv6 zone, a name).
    }
  }
  return out.size > 0 ? [...out].slice(0, 16) : [normalizeAddr(listen)];
}

function registerDiscoveryMetrics(registry: Registry, c: DiscoveryCounters): void {
  counterFrom(registry, 'iroh_raft_discovery_exchanges_total', 'Address exchanges (iroh-raft-discovery/0) completed, either side.', () => c.exchanges);
  counterFrom(
    registry,
    'iroh_raft_discovery_exchange_failures_total',
    'Address exchanges this node started that failed: unreachable, timed out, or a bad answer.',
    () => c.exchangeFailures,
  );
  // One family per count rather than labels: the metric conventions keep labels to a few known names.
  const counts: [string, string, keyof DiscoveryCounters][] = [
    ['strangers_refused', 'Discovery connections from endpoints that are not members, closed at once (close code 2).', 'strangers'],
    ['busy_refused', 'Discovery connections closed at once: too many exchanges at once, or the node stopping.', 'busy'],
    ['bad_frames', 'Discovery frames refused (garbage, truncated, oversize length, broken rule, bytes after it); each closes its connection.', 'badFrames'],
    ['claims_learned', "Members' own address claims with a newer generation than known, taken.", 'learned'],
    ['claims_stale', "Members' own address claims with an older generation than known, ignored.", 'stale'],
    ['claims_conflicting', "Members' own address claims with the known generation but other addresses, ignored.", 'conflicts'],
    ['hints_probed', 'Gossip hints about a member checked by dialing it at the hinted addresses.', 'hintsProbed'],
  ];
  for (const [name, help, key] of counts) counterFrom(registry, `iroh_raft_discovery_${name}_total`, help, () => c[key]);
}
