/**
 * The contract between the client API (src/io/http) and the router: the service the HTTP layer
 * calls, its arguments and results, the read consistencies, and the union of every error code a
 * client can meet. It imports nothing but src/wire.
 */
export { ByteGate } from './admission.js';
export { FairGate } from './fair-gate.js';
export type { FairGateLimits, FairGateTenant } from './fair-gate.js';
export { CONSISTENCIES, isConsistency } from './consistency.js';
export type { Consistency } from './consistency.js';
export { ServiceErrorCode, isServiceErrorCode } from './errors.js';
export type {
  DeleteArgs,
  DeleteResult,
  Failure,
  GetArgs,
  GetResult,
  Health,
  KvService,
  MetricsText,
  PutArgs,
  Placement,
  PutResult,
  Result,
  ScanArgs,
  ScanItem,
  ScanResult,
  Served,
  Session,
} from './service.js';
export { isClientTenantName } from './tenants.js';
export type { IssuedToken, Principal, Refusal, TenantInfo, TenantQuota, TenantService, TenantUsage } from './tenants.js';
export { ROLES, isEndpointId, isRole } from './roles.js';
export type { Role, RoleBinding, RoleService } from './roles.js';
export type { MemberInfo, MemberService } from './members.js';
export { INVITES_MAX, INVITE_SECRET_CHARS, INVITE_TTL_DEFAULT_MS, INVITE_TTL_MAX_MS, isInviteSecret } from './members.js';
