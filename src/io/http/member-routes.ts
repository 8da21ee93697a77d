/**
 * The members admin API (admin token when auth is on):
 *
 * - `GET /v1/members` -> 200 `{"members":[{"node","id","state","addrs"}],"moves":[...]}`.
 * - `DELETE /v1/members/<raft id | endpoint id>` -> 200 `{"node","state"}`: the member starts
 *   leaving (`leaving`; its replicas move away, then it is `removed` and stops), or, when it is
 *   not heard from, is declared `dead` (its replicas are rebuilt from the others). 404 `NotFound`
 *   for no such member, 400 `BadRequest` for a reference that is neither, 409 `MemberConflict`
 *   for the last member up.
 */
import { isEndpointId } from '../../api/index.js';
import type { MemberService, Result } from '../../api/index.js';
import { HttpError, HttpErrorCode, allow } from './errors.js';

const MEMBERS_PATH = '/v1/members';

export type MemberRequest = { readonly route: 'member-list' } | { readonly route: 'member-remove'; readonly ref: number | string };

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
  allow(method, 'DELETE');
  const ref = parts[0] ?? '';
  if (/^[1-9][0-9]{0,9}$/.test(ref)) return { route: 'member-remove', ref: Number(ref) };
  if (isEndpointId(ref)) return { route: 'member-remove', ref };
  throw new HttpError(HttpErrorCode.BadRequest, `a member is a raft id or a 64 hex character endpoint id, got ${JSON.stringify(String(ref).slice(0, 80))}`);
}

/** Answers a members request through `members` (undefined: NotFound). */
export function answerMembers(req: MemberRequest, members: MemberService | undefined): Promise<Result<unknown>> {
  if (members === undefined) throw new HttpError(HttpErrorCode.NotFound, 'no members to manage on this server');
  return req.route === 'member-list' ? members.list() : members.remove(req.ref);
}
