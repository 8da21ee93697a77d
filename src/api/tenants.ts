/**
 * Tenants and who a request comes from: the contract between the HTTP layer (which reads the
 * bearer token and decides what a principal may do) and the tenant directory behind it (which
 * keeps the records, replicated, and checks tokens against them).
 *
 * A tenant token is `<tenant>.<secret>`: the name, so a node finds the record without a search,
 * and 32 random bytes in base64url (43 characters). Records keep only the SHA-256 of the secret.
 * Names starting with `_` are reserved for the node itself (the `_system` tenant holds the
 * records; `_admin` names the node's admin token): clients cannot name them, nor create them.
 */
import type { Result } from './service.js';

/** Tenant names: 1..64 of [A-Za-z0-9_.-] (what the KV stores), and not starting with `_`. */
const TENANT_NAME = /^[A-Za-z0-9.-][A-Za-z0-9_.-]{0,63}$/;

/** Whether `name` is a tenant a client may name or an admin may create (reserved `_` names are not). */
export function isClientTenantName(name: string): boolean {
  return TENANT_NAME.test(name);
}

/** Limits of one tenant. Absent fields: no limit. */
export interface TenantQuota {
  /**
   * Requests per second on each node (a token bucket holding one second's worth, at least 1): N
   * nodes allow up to N times this. Over it: 429 `RateLimited` with `retry-after`. A positive
   * number (fractions allowed, e.g. 0.5 = one request every two seconds).
   */
  readonly requestsPerSec?: number;
  /**
   * Most bytes of keys + values the tenant may hold, over all shards (a positive safe integer). A
   * write that would take it past this is answered 403 `QuotaExceeded` and never proposed; writes
   * that do not grow the total (deletes, overwrites with a value no longer) always pass. A soft
   * bound: see the README ("Tenants and auth") for how far a burst may overshoot it.
   */
  readonly bytesMax?: number;
  /** Most keys the tenant may hold, over all shards (a positive safe integer); as {@link bytesMax} for new keys. */
  readonly keysMax?: number;
}

/** A tenant's usage, summed over the shards: keys, and their key + value bytes. */
export interface TenantUsage {
  readonly keys: number;
  readonly bytes: number;
}

/** A tenant as the admin API shows it: never its token or the token's hash. */
export interface TenantInfo {
  readonly name: string;
  readonly quota: TenantQuota;
  /** When it was created, ms since the epoch (the creating node's clock). */
  readonly createdMs: number;
  /** 1 at creation, one more at each rotation. */
  readonly generation: number;
  /**
   * Usage as this node's quota check last counted it (only for a tenant with `bytesMax` or
   * `keysMax` that wrote through this node lately), with its age in ms; absent otherwise.
   */
  readonly usage?: TenantUsage & { readonly ageMs: number };
}

/** Who a request comes from, by its bearer token. */
export type Principal =
  /** This node's admin token (`<data>/admin.token`): any route, any tenant through `x-tenant`. */
  | { readonly kind: 'admin' }
  /** A tenant's token: its own key space only. */
  | { readonly kind: 'tenant'; readonly tenant: string; readonly quota: TenantQuota };

/**
 * Why a token was refused (the client is told only that it was). `NoSuchTenant` names the tenant
 * its token claims, which has no record (never created, or deleted).
 */
export type Refusal =
  | { readonly kind: 'refused'; readonly reason: 'Malformed' | 'WrongSecret' }
  | { readonly kind: 'refused'; readonly reason: 'NoSuchTenant'; readonly tenant: string };

/** A tenant and its new token, shown once: only the token's hash is kept. */
export interface IssuedToken {
  readonly tenant: TenantInfo;
  readonly token: string;
}

/**
 * The tenant directory. Operating errors are Failures with a ServiceErrorCode (`TenantExists`,
 * `TenantNotFound`, `InvalidTenant`, and the service's own: `NotLeader`, `Timeout`...).
 */
export interface TenantService {
  /**
   * The principal holding `token` (the text after `Bearer `), or a {@link Refusal} when nobody
   * does: a malformed token, an unknown or deleted tenant, a rotated secret. A record read here
   * may be up to the directory's cache lifetime old (about a second).
   */
  authenticate(token: string): Promise<Result<Principal | Refusal>>;
  /** A new tenant with a fresh token. `TenantExists` when the name is taken; `InvalidTenant` for a bad or reserved name. */
  create(name: string, quota: TenantQuota): Promise<Result<IssuedToken>>;
  /** Every tenant, by name. */
  list(): Promise<Result<TenantInfo[]>>;
  /** Deletes the record (its token stops working); the tenant's keys stay. `TenantNotFound` when absent. */
  delete(name: string): Promise<Result<{ readonly deleted: true }>>;
  /** A new secret for `name`; the old token stops working. `TenantNotFound` when absent. */
  rotate(name: string): Promise<Result<IssuedToken>>;
  /**
   * Replaces the quota of `name` (the token stays); every node applies it within the cache
   * lifetime. `TenantNotFound` when absent, `BadRequest` for a quota out of range.
   */
  setQuota(name: string, quota: TenantQuota): Promise<Result<TenantInfo>>;
}
