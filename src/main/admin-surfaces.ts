/**
 * What a node offers its administrators besides the KV: the tenant directory and quotas (auth
 * on), the role bindings of the management ALPN, and the management server itself. Wired here so
 * node.ts stays the map of the start order.
 */
import type * as Iroh from '@number0/iroh/index.js';
import { Counter } from 'prom-client';
import type { Registry } from 'prom-client';
import { counterFrom, gaugeFrom } from '../workers/metrics.js';
import type { HttpAuthOptions } from '../io/http/auth.js';
import { MgmtServer } from '../io/mgmt/index.js';
import type { TransportLogger } from '../io/transport/index.js';
import { CloseCode } from '../io/transport/hello.js';
import { closeQuietly } from '../io/transport/link.js';
import { QuotaGuard } from '../router/quotas.js';
import { RoleDirectory } from '../router/roles.js';
import type { Router } from '../router/router.js';
import type { MemberService } from '../api/index.js';
import type { NodeId } from '../shards/raft/index.js';
import type { ClusterLife } from './cluster-life.js';
import { admitJoin, admitRejoin, createInvite, startRemoval } from './cluster-join.js';
import { TenantDirectory } from '../router/tenants.js';
import type { AdminToken } from './admin-token.js';
import type { NodeConfig } from './config.js';

export interface AdminSurfaces {
  /** Auth on: the tenant directory for HTTP; undefined with auth off. */
  readonly auth: HttpAuthOptions | undefined;
  readonly roles: RoleDirectory;
  readonly mgmt: MgmtServer;
  /** The members admin API (`/v1/members`). */
  readonly members: MemberService;
}

/**
 * The tenant directory and quotas (with auth on: the quota limits live in the tenant records, so
 * quotas exist only then), the role directory, and the management server over them.
 */
export function adminSurfaces(
  cfg: Pick<NodeConfig, 'shards' | 'mgmtConnectionsMax' | 'mgmtRequestTimeoutMs'>,
  p: {
    readonly admin: AdminToken | undefined;
    readonly router: Router;
    readonly self: NodeId;
    /** Cluster life here: the meta record that joins and removals change. */
    readonly life: ClusterLife;
    readonly isMember: (endpointId: string) => boolean;
    /** This node's ticket: the first half of the join strings its invites give. */
    readonly ticket: () => string;
    readonly log: TransportLogger;
    /** Where the management server's metrics go. */
    readonly registry: Registry;
  },
): AdminSurfaces {
  const { router } = p;
  let auth: HttpAuthOptions | undefined;
  if (p.admin !== undefined) {
    const tenants = new TenantDirectory({ kv: router, adminSecretHash: p.admin.secretHash, usage: (t) => router.quotas?.cached(t) });
    router.quotas = new QuotaGuard({
      shards: cfg.shards,
      quotaOf: (t) => tenants.quotaOf(t),
      query: (s, q, c) => router.query(s, q, c),
      shardOf: (t, k) => router.hash.shardOf(t, k, cfg.shards),
    });
    auth = { tenants };
  }
  const roles = new RoleDirectory({ kv: router });
  const members: MemberService = {
    list: () => Promise.resolve({ ok: true, value: { members: membersOf(router, p.life), moves: p.life.status().moves } }),
    // This node's members list shows the change at once; the others', at their next round.
    remove: (ref) =>
      startRemoval(
        p.life.meta,
        ref,
        () => new Set<number>([p.self, ...router.peersUp()]),
        (v) => p.life.learn(v),
      ),
    invite: (ttlMs) => createInvite(p.life.meta, p.ticket(), ttlMs),
  };
  const mgmt = new MgmtServer({
    services: {
      status: () => router.status(),
      members: () => membersOf(router, p.life),
      isMember: p.isMember,
      // Auth off (a loopback cluster): any endpoint may ask to join; on, only one granted a role or holding an invite.
      joinOpen: p.admin === undefined,
      join: (id, addrs, invite) => admitJoin(p.life.meta, id, addrs, invite),
      invite: (ttlMs) => members.invite(ttlMs),
      rejoin: (id, addrs, old) => admitRejoin(p.life.meta, id, addrs, old),
      // From the record as last read here: a stranger's question costs the cluster no raft round.
      selfEntries: (id) => (p.life.current()?.meta.members ?? []).filter((m) => m.id === id).map((m) => ({ node: m.node, state: m.state })),
      removeMember: (ref) => members.remove(ref),
      roles,
      ...(auth === undefined ? {} : { tenants: auth.tenants }),
    },
    // The bounds the config names; the rest keep MGMT_LIMITS_DEFAULT.
    limits: { connectionsMax: cfg.mgmtConnectionsMax, requestTimeoutMs: cfg.mgmtRequestTimeoutMs },
    logger: p.log,
  });
  registerMgmtMetrics(p.registry, mgmt);
  return { auth, roles, mgmt, members };
}

/** The members with their state and addresses as the meta group last said, else as the router knows them. */
export function membersOf(router: Router, life: ClusterLife): { node: number; id: string; state?: string; addrs?: readonly string[] }[] {
  const m = life.current()?.meta.members;
  if (m !== undefined) return m.map((x) => ({ node: x.node, id: x.id, state: x.state, addrs: x.addrs }));
  return router.currentMembers().map((x) => ({ node: x.nodeId, id: x.peerId }));
}

/** The management server's counts: requests, refusals by code, connections open and refused. */
function registerMgmtMetrics(registry: Registry, mgmt: MgmtServer): void {
  const c = mgmt.counters;
  counterFrom(registry, 'iroh_raft_mgmt_requests_total', 'Management requests (iroh-raft-mgmt/0 streams) taken by this node.', () => c.requests);
  new Counter({
    name: 'iroh_raft_mgmt_errors_total',
    help: 'Management requests answered with an error, by code (Forbidden: no role allowing the op; Overloaded, PayloadTooLarge, Timeout: a bound).',
    labelNames: ['code'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [code, n] of Object.entries(c.errors)) this.inc({ code }, n);
    },
  });
  gaugeFrom(registry, 'iroh_raft_mgmt_connections', 'Management connections open now (at most --mgmt-connections-max).', () => mgmt.openConnections);
  counterFrom(
    registry,
    'iroh_raft_mgmt_connections_refused_total',
    'Management connections closed at once: over --mgmt-connections-max, or the node stopping.',
    () => c.connectionsRefused,
  );
}

/** Hands a management connection to the server, or closes it while the node is still starting. */
export function acceptMgmt(server: MgmtServer | undefined, conn: Iroh.Connection, peerId: string): void {
  if (server === undefined) closeQuietly(conn, CloseCode.ShuttingDown, 'not ready');
  else server.accept(conn, peerId);
}
