/**
 * The cluster's members as the admin API sees them (`/v1/members`, `iroh-raft members`): list them
 * with their state, and start removing one. The meta group holds them (src/router/meta-record.ts).
 */
import type { Result } from './service.js';

/** A member: raft id, endpoint id, state (`up`, `leaving`, `dead`, `removed`) and last given addresses. */
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
}
