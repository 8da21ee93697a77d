/**
 * Roles bound to Iroh endpoint ids: who may do what over the management ALPN
 * (`iroh-raft-mgmt/0`). The caller of a management request is the connection's authenticated
 * endpoint id (the QUIC handshake proves it holds the key), never a field of the request.
 *
 * - `admin`: every operation (tenants, roles, status).
 * - `operator`: status, the members list, the tenants list and tenant quota changes.
 * - `reader`: status and the members list.
 *
 * Members of the cluster are recognised by their membership, not by a role. An endpoint with no
 * role that is not a member is a stranger: every operation answers `Forbidden`.
 */
import type { Result } from './service.js';

/** The roles, from most to least allowed. */
export const ROLES = ['admin', 'operator', 'reader'] as const;
export type Role = (typeof ROLES)[number];

/** Whether `v` names a role. */
export function isRole(v: unknown): v is Role {
  return typeof v === 'string' && (ROLES as readonly string[]).includes(v);
}

/** An endpoint id as the node writes it: 64 lowercase hex characters (an ed25519 public key). */
const ENDPOINT_ID = /^[0-9a-f]{64}$/;

/** Whether `v` is an endpoint id (64 lowercase hex characters). */
export function isEndpointId(v: unknown): v is string {
  return typeof v === 'string' && ENDPOINT_ID.test(v);
}

/** One binding, as listed. */
export interface RoleBinding {
  /** The endpoint id (64 lowercase hex characters). */
  readonly endpointId: string;
  readonly role: Role;
  /** When it was last granted, ms since the epoch (the granting node's clock). */
  readonly grantedMs: number;
}

/**
 * The replicated role bindings. Operating errors are Failures with a ServiceErrorCode:
 * `BadRequest` (not an endpoint id, not a role), `RoleNotFound`, and the service's own
 * (`NotLeader`, `Timeout`...).
 */
export interface RoleService {
  /**
   * The role bound to `endpointId`, undefined when none; read through a cache, so a grant or
   * revoke made on another node is seen here within the cache lifetime (about a second).
   */
  roleOf(endpointId: string): Promise<Result<Role | undefined>>;
  /** Every binding, by endpoint id (read linearizably, not cached). */
  list(): Promise<Result<RoleBinding[]>>;
  /** The binding of one endpoint id, read linearizably; `RoleNotFound` when it has none. */
  get(endpointId: string): Promise<Result<RoleBinding>>;
  /** Binds `role` to `endpointId`, replacing any role it had. */
  grant(endpointId: string, role: Role): Promise<Result<RoleBinding>>;
  /** Removes the binding; `RoleNotFound` when there is none. */
  revoke(endpointId: string): Promise<Result<{ readonly revoked: true }>>;
}
