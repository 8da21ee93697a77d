/**
 * What a node offers its administrators besides the KV: the tenant directory and quotas (auth
 * on), the role bindings of the management ALPN, and the management server itself. Wired here so
 * node.ts stays the map of the start order.
 */
import type * as Iroh from '@number0/iroh/index.js';
import type { HttpAuthOptions } from '../io/http/auth.js';
import { MgmtServer } from '../io/mgmt/index.js';
import type { MgmtLimits } from '../io/mgmt/index.js';
import type { TransportLogger } from '../io/transport/index.js';
import { CloseCode } from '../io/transport/hello.js';
import { closeQuietly } from '../io/transport/link.js';
import { QuotaGuard } from '../router/quotas.js';
import { RoleDirectory } from '../router/roles.js';
import type { Member, Router } from '../router/router.js';
import { TenantDirectory } from '../router/tenants.js';
import type { AdminToken } from './admin-token.js';

export interface AdminSurfaces {
  /** Auth on: the tenant directory for HTTP; undefined with auth off. */
  readonly auth: HttpAuthOptions | undefined;
  readonly roles: RoleDirectory;
  readonly mgmt: MgmtServer;
}

/**
 * The tenant directory and quotas (with auth on: the quota limits live in the tenant records, so
 * quotas exist only then), the role directory, and the management server over them.
 */
export function adminSurfaces(p: {
  readonly admin: AdminToken | undefined;
  readonly router: Router;
  readonly shards: number;
  readonly members: readonly Member[];
  readonly isMember: (endpointId: string) => boolean;
  readonly log: TransportLogger;
  /** The management bounds the config names; the rest keep MGMT_LIMITS_DEFAULT. */
  readonly limits: Pick<MgmtLimits, 'connectionsMax' | 'requestTimeoutMs'>;
}): AdminSurfaces {
  const { router } = p;
  let auth: HttpAuthOptions | undefined;
  if (p.admin !== undefined) {
    const tenants = new TenantDirectory({ kv: router, adminSecretHash: p.admin.secretHash, usage: (t) => router.quotas?.cached(t) });
    router.quotas = new QuotaGuard({ shards: p.shards, quotaOf: (t) => tenants.quotaOf(t), query: (s, q, c) => router.query(s, q, c) });
    auth = { tenants };
  }
  const roles = new RoleDirectory({ kv: router });
  const members = p.members.map((m) => ({ node: m.nodeId, id: m.peerId }));
  const mgmt = new MgmtServer({
    services: {
      status: () => router.status(),
      members: () => members,
      isMember: p.isMember,
      roles,
      ...(auth === undefined ? {} : { tenants: auth.tenants }),
    },
    limits: p.limits,
    logger: p.log,
  });
  return { auth, roles, mgmt };
}

/** Hands a management connection to the server, or closes it while the node is still starting. */
export function acceptMgmt(server: MgmtServer | undefined, conn: Iroh.Connection, peerId: string): void {
  if (server === undefined) closeQuietly(conn, CloseCode.ShuttingDown, 'not ready');
  else server.accept(conn, peerId);
}
