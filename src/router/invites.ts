/**
 * Join invites: how a node joins a cluster whose management ALPN is closed to strangers (auth on).
 *
 * An operator asks any member for an invite (`iroh-raft members invite`, `POST
 * /v1/members/invites`, or `members.invite` over `iroh-raft-mgmt/0`). The member draws a random
 * 32-byte secret, records its SHA-256 and an expiry in the meta record, and answers a join string:
 * its own ticket, a dot, and the secret in base64url (src/io/ticket.ts joinString). The new node passes that string to
 * `--join`; its `members.join` carries the secret, and the member admits the caller's endpoint in
 * the same compare-and-set that spends the invite. So an invite admits one endpoint, once, before
 * it expires; the record holds only hashes, so reading the meta group does not give invites away.
 * A retried join of an endpoint already admitted is answered again without an invite, as any
 * retried join is (src/router/meta.ts admit).
 */
import { createHash, randomBytes } from 'node:crypto';
import { INVITES_MAX, ServiceErrorCode } from '../api/index.js';
import type { Failure } from '../api/index.js';
import { admit, memberOf } from './meta.js';
import type { MetaChange } from './meta.js';
import type { ClusterMeta, MetaInvite } from './meta-record.js';

/** Bytes of an invite's secret. */
const SECRET_BYTES = 32;

const fail = (code: ServiceErrorCode, message: string): Failure => ({ ok: false, code, message });

/** A new secret, in base64url. */
export function newInviteSecret(): string {
  return randomBytes(SECRET_BYTES).toString('base64url');
}

/** What the meta record keeps of `secret`: its SHA-256, hex. */
export function inviteHash(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** `invites` without those expired at `now` (ms since the epoch). */
const live = (invites: readonly MetaInvite[] | undefined, now: number): MetaInvite[] => (invites ?? []).filter((i) => i.expires > now);

/** `m` with one more invite, hash `hash`, valid until `expires`; expired ones dropped. Conflict past INVITES_MAX. */
export function addInvite(m: ClusterMeta, hash: string, expires: number, now: number): MetaChange {
  const invites = live(m.invites, now);
  if (invites.length >= INVITES_MAX)
    return fail(ServiceErrorCode.MemberConflict, `${INVITES_MAX} invites are outstanding: use or let some expire before asking for more`);
  return { ...m, invites: [...invites, { hash, expires }] };
}

/**
 * `m` with endpoint `id` admitted by the invite whose secret hashes to `hash`, and that invite
 * spent; unchanged (undefined) for an endpoint that is a member already (a retried join).
 * Forbidden for an invite that is unknown, spent or expired at `now`, and for a removed endpoint.
 */
export function admitByInvite(m: ClusterMeta, id: string, addrs: readonly string[], hash: string, now: number): MetaChange {
  if (memberOf(m, id) !== undefined) return admit(m, id, addrs);
  const invites = live(m.invites, now);
  if (!invites.some((i) => i.hash === hash)) return fail(ServiceErrorCode.Forbidden, 'the invite is unknown, spent or expired: ask a member for a new one');
  return admit({ ...m, invites: invites.filter((i) => i.hash !== hash) }, id, addrs);
}
