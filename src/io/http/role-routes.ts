/**
 * The role admin API (admin token when auth is on): which Iroh endpoint ids may use the
 * management ALPN, and as what (src/api/roles.ts).
 *
 * - `GET /v1/roles` -> 200 `{"roles":[{"endpointId","role","grantedMs"}]}`.
 * - `GET /v1/roles/<endpoint id>` -> 200 `{"endpointId","role","grantedMs"}`; 404 `RoleNotFound`.
 * - `PUT /v1/roles/<endpoint id>` `{"role":"admin"|"operator"|"reader"}` -> 200 the binding
 *   (replacing any role it had); 400 `BadRequest` for a bad id, role or body; 413 past 1 KiB.
 * - `DELETE /v1/roles/<endpoint id>` -> 200 `{"revoked":true}`; 404 `RoleNotFound`.
 *
 * A change is seen by every node within the role cache's lifetime (about a second).
 */
import { Buffer, isUtf8 } from 'node:buffer';
import { isEndpointId, isRole } from '../../api/index.js';
import type { Result, RoleService } from '../../api/index.js';
import { HttpError, HttpErrorCode, allow } from './errors.js';

/** Longest body of `PUT /v1/roles/<id>`, in bytes. */
export const ROLE_BODY_BYTES_MAX = 1024;
const ROLES_PATH = '/v1/roles';

/** A request of the role admin API, checked. */
export type RoleRequest =
  | { readonly route: 'role-list' }
  | { readonly route: 'role-get'; readonly endpointId: string }
  | { readonly route: 'role-grant'; readonly endpointId: string }
  | { readonly route: 'role-revoke'; readonly endpointId: string };

/** Whether `path` belongs to the role admin API. */
export function isRolePath(path: string): boolean {
  return path === ROLES_PATH || path.startsWith(`${ROLES_PATH}/`);
}

/** The route of a role admin path; NotFound, MethodNotAllowed or BadRequest otherwise. */
export function parseRoleRoute(method: string, path: string): RoleRequest {
  const rest = path.slice(ROLES_PATH.length);
  if (rest === '' || rest === '/') {
    allow(method, 'GET, HEAD');
    return { route: 'role-list' };
  }
  const parts = rest.slice(1).split('/');
  if (parts.length !== 1) throw new HttpError(HttpErrorCode.NotFound, `no route for ${method} ${path}`);
  const endpointId = parts[0] ?? '';
  allow(method, 'GET, HEAD, PUT, DELETE');
  if (!isEndpointId(endpointId))
    throw new HttpError(HttpErrorCode.BadRequest, `an endpoint id is 64 lowercase hex characters, got ${JSON.stringify(parts[0]?.slice(0, 80) ?? '')}`);
  if (method === 'PUT') return { route: 'role-grant', endpointId };
  if (method === 'DELETE') return { route: 'role-revoke', endpointId };
  return { route: 'role-get', endpointId };
}

/**
 * Answers a role admin request through `roles` (undefined: this server has none, NotFound).
 * Throws HttpError for a bad body; the directory's failures come back as a Result.
 */
export async function answerRoles(req: RoleRequest, roles: RoleService | undefined, readBody: () => Promise<Uint8Array>): Promise<Result<unknown>> {
  if (roles === undefined) throw new HttpError(HttpErrorCode.NotFound, 'no roles to manage on this server');
  switch (req.route) {
    case 'role-list': {
      const r = await roles.list();
      return r.ok ? { ok: true, value: { roles: r.value } } : r;
    }
    case 'role-get':
      return roles.get(req.endpointId);
    case 'role-grant':
      return roles.grant(req.endpointId, roleBody(await readBody()));
    case 'role-revoke':
      return roles.revoke(req.endpointId);
  }
}

/** `{"role": "admin" | "operator" | "reader"}`, nothing else; HttpError BadRequest or PayloadTooLarge otherwise. */
function roleBody(bytes: Uint8Array): 'admin' | 'operator' | 'reader' {
  if (bytes.length > ROLE_BODY_BYTES_MAX) throw new HttpError(HttpErrorCode.PayloadTooLarge, `the body is larger than ${ROLE_BODY_BYTES_MAX} bytes`);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let v: unknown;
  try {
    if (!isUtf8(buf)) throw new Error('not UTF-8');
    v = JSON.parse(buf.toString('utf8'));
  } catch {
    v = undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || Object.keys(v).some((k) => k !== 'role')) {
    throw new HttpError(HttpErrorCode.BadRequest, 'the body must be a JSON object {"role": "admin" | "operator" | "reader"}');
  }
  const role = (v as { role?: unknown }).role;
  if (!isRole(role))
    throw new HttpError(HttpErrorCode.BadRequest, `"role" must be admin, operator or reader, got ${JSON.stringify(role ?? null).slice(0, 40)}`);
  return role;
}
