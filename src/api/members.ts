/**
 * The cluster's members as the admin API sees them (`/v1/members`, `iroh-raft members`): list them
 * with their state, start removing one, and invite a new one. The meta group holds them
 * (src/router/meta-record.ts); invites are described in src/router/invites.ts.
 */
import type { Result } from './service.js';

/** A member: raft id, endpoint id, state (`joining`, `up`, `leaving`, `dead`, `removed`) and last given addresses. */
export interface MemberInfo {
  readonly node: number;
  readonly id: string;
  readonly state?: string;
  readonly addrs?: readonly string[];
}

export interface MemberService {
  /** Every member, removed ones included (their ids are never admitted again). */
  list(): Promise<Result<{ members: MemberInfo[]; moves?: unknown }>>;
  /**
   * Starts removing member `ref` (raft id or endpoint id): a member heard from now leaves (its
   * replicas move away first, then it stops); one not heard from is declared dead (its replicas
   * are rebuilt from the others). NotFound for no such member; MemberConflict for the last one up.
   */
  remove(ref: number | string): Promise<Result<{ node: number; state: string }>>;
  /**
   * A join invite valid for `ttlMs` (1000..{@link INVITE_TTL_MAX_MS}): `join` is the string a new
   * node passes to `--join` (this node's ticket, a dot, the secret), `expires` an ISO time.
   * MemberConflict when {@link INVITES_MAX} are outstanding.
   */
  invite(ttlMs: number): Promise<Result<{ join: string; expires: string }>>;
}

/** Lifetime of an invite when none is asked for: 1 hour, in ms. */
export const INVITE_TTL_DEFAULT_MS = 3_600_000;
/** Longest lifetime an invite may be given: 7 days, in ms. */
export const INVITE_TTL_MAX_MS = 7 * 24 * 3_600_000;
/** Most invites outstanding at once: each is a way in, and they live in the meta record. */
export const INVITES_MAX = 64;
/** Characters of an invite's secret: 32 random bytes in unpadded base64url. */
export const INVITE_SECRET_CHARS = 43;

/** Whether `s` has the shape of an invite's secret. */
export function isInviteSecret(s: unknown): s is string {
  return typeof s === 'string' && s.length === INVITE_SECRET_CHARS && /^[A-Za-z0-9_-]+$/.test(s);
}
