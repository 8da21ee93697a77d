/**
 * The members admin API (admin token when auth is on):
 *
 * - `GET /v1/members` -> 200 `{"members":[{"node","id","state","addrs"}],"moves":[...]}`.
 * - `DELETE /v1/members/<raft id | endpoint id>` -> 200 `{"node","state"}`: the member starts
 *   leaving (`leaving`; its replicas move away, then it is `removed` and stops), or, when it is
 *   not heard from, is declared `dead` (its replicas are rebuilt from the others). 404 `NotFound`
 *   for no such member, 400 `BadRequest` for a reference that is neither, 409 `MemberConflict`
 *   for the last member up.
 * - `POST /v1/members/invites` with an optional body `{"ttlMs": N}` (1000..7 days, default 1 hour)
 *   -> 200 `{"join","expires"}`: a join invite (src/router/invites.ts); `join` is what a new node
 *   passes to `--join`. 400 `BadRequest` for a bad body, 409 `MemberConflict` when 64 invites are
 *   outstanding.
 */
import { Buffer, isUtf8 } from 'node:buffer';
import { INVITE_TTL_DEFAULT_MS, INVITE_TTL_MAX_MS, isEndpointId } from '../../api/index.js';
import type { MemberService, Result } from '../../api/index.js';
import { HttpError, HttpErrorCode, allow } from './errors.js';

const MEMBERS_PATH = '/v1/members';

export type MemberRequest =
  { readonly route: 'member-list' } | { readonly route: 'member-remove'; readonly ref: number | string } | { readonly route: 'member-invite' };

/** Largest body of an invite request, in bytes. */
const INVITE_BODY_BYTES_MAX = 256;

/** Whether `path` belongs to the members admin API. */
export function isMemberPath(path: string): boolean {
  return path === MEMBERS_PATH || path.startsWith(`${MEMBERS_PATH}/`);
}

/** The route of a members path; NotFound, MethodNotAllowed or BadRequest otherwise. */
export function parseMemberRoute(method: string, path: string): MemberRequest {
  const rest = path.slice(MEMBERS_PATH.length);
  if (rest === '' || rest === '/') {
    allow(method, 'GET, HEAD');
    return { route: 'member-list' };
  }
  const parts = rest.slice(1).split('/');
  if (parts.length !== 1) throw new HttpError(HttpErrorCode.NotFound, `no route for ${method} ${path}`);
  if (parts[0] === 'invites') {
    allow(method, 'POST');
    return { route: 'member-invite' };
  }
  allow(method, 'DELETE');
  const ref = parts[0] ?? '';
  if (/^[1-9][0-9]{0,9}$/.test(ref)) return { route: 'member-remove', ref: Number(ref) };
  if (isEndpointId(ref)) return { route: 'member-remove', ref };
  throw new HttpError(HttpErrorCode.BadRequest, `a member is a raft id or a 64 hex character endpoint id, got ${JSON.stringify(String(ref).slice(0, 80))}`);
}

/** Answers a members request through `members` (undefined: NotFound). */
export async function answerMembers(req: MemberRequest, members: MemberService | undefined, readBody: () => Promise<Uint8Array>): Promise<Result<unknown>> {
  if (members === undefined) throw new HttpError(HttpErrorCode.NotFound, 'no members to manage on this server');
  switch (req.route) {
    case 'member-list':
      return members.list();
    case 'member-remove':
      return members.remove(req.ref);
    case 'member-invite':
      return members.invite(inviteTtl(await readBody()));
  }
}

/** The `ttlMs` of an invite body (empty: the default); HttpError BadRequest or PayloadTooLarge otherwise. */
function inviteTtl(bytes: Uint8Array): number {
  if (bytes.length === 0) return INVITE_TTL_DEFAULT_MS;
  if (bytes.length > INVITE_BODY_BYTES_MAX) throw new HttpError(HttpErrorCode.PayloadTooLarge, `the body is larger than ${INVITE_BODY_BYTES_MAX} bytes`);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let v: unknown;
  try {
    v = isUtf8(buf) ? JSON.parse(buf.toString('utf8')) : undefined;
  } catch {
    v = undefined;
  }
  const bad = (): never => {
    throw new HttpError(HttpErrorCode.BadRequest, `the body must be empty or a JSON object {"ttlMs": whole milliseconds from 1000 to ${INVITE_TTL_MAX_MS}}`);
  };
  if (typeof v !== 'object' || v === null || Array.isArray(v) || Object.keys(v).some((k) => k !== 'ttlMs')) return bad();
  const ttl = (v as { ttlMs?: unknown }).ttlMs ?? INVITE_TTL_DEFAULT_MS;
  if (typeof ttl !== 'number' || !Number.isSafeInteger(ttl) || ttl < 1000 || ttl > INVITE_TTL_MAX_MS) return bad();
  return ttl;
}
