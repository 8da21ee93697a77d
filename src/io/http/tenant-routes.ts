/**
 * The tenant admin API (admin token only; with auth off there are no tenants to manage: 404):
 *
 * - `POST /v1/tenants` `{"name","quota":{"requestsPerSec"?,"bytesMax"?,"keysMax"?}}` -> 201 `{"tenant","token"}`;
 *   409 `TenantExists`; 400 `BadRequest` (not a JSON object, unknown or mistyped fields),
 *   `InvalidTenant` (a bad or reserved name); 413 `PayloadTooLarge` past 4 KiB.
 * - `GET /v1/tenants` -> 200 `{"tenants":[{"name","quota","createdMs","generation","usage"?}]}` (no
 *   hashes; `usage` `{keys,bytes,ageMs}` when this node counted it lately for a quota check).
 * - `DELETE /v1/tenants/<name>` -> 200 `{"deleted":true}`; 404 `TenantNotFound`. The tenant's
 *   keys stay (delete them first, with its token, if they must go).
 * - `POST /v1/tenants/<name>/rotate` -> 200 `{"tenant","token"}`; the old token stops working.
 *
 * The token is shown once, in the answer that made it; only its hash is kept.
 */
import { Buffer, isUtf8 } from 'node:buffer';
import type { Result, TenantQuota, TenantService } from '../../api/index.js';
import { HttpError, HttpErrorCode, allow } from './errors.js';

/** Longest body of `POST /v1/tenants`, in bytes. */
export const TENANT_BODY_BYTES_MAX = 4096;
const TENANTS_PATH = '/v1/tenants';

/** A request of the tenant admin API, checked. */
export type TenantRequest =
  | { readonly route: 'tenant-create' }
  | { readonly route: 'tenant-list' }
  | { readonly route: 'tenant-delete'; readonly name: string }
  | { readonly route: 'tenant-rotate'; readonly name: string };

/** Whether `path` belongs to the tenant admin API. */
export function isTenantPath(path: string): boolean {
  return path === TENANTS_PATH || path.startsWith(`${TENANTS_PATH}/`);
}

/** The route of a tenant admin path; NotFound, MethodNotAllowed or BadRequest otherwise. */
export function parseTenantRoute(method: string, path: string): TenantRequest {
  const rest = path.slice(TENANTS_PATH.length);
  if (rest === '' || rest === '/') {
    allow(method, 'GET, HEAD, POST');
    return method === 'POST' ? { route: 'tenant-create' } : { route: 'tenant-list' };
  }
  const parts = rest.slice(1).split('/');
  const name = decodeName(parts[0] ?? '');
  if (parts.length === 1) {
    allow(method, 'DELETE');
    return { route: 'tenant-delete', name };
  }
  if (parts.length === 2 && parts[1] === 'rotate') {
    allow(method, 'POST');
    return { route: 'tenant-rotate', name };
  }
  throw new HttpError(HttpErrorCode.NotFound, `no route for ${method} ${path}`);
}

function decodeName(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new HttpError(HttpErrorCode.BadRequest, 'malformed percent-encoding in the tenant name');
  }
}

/** A JSON answer: status and body. */
export interface TenantAnswer {
  readonly status: number;
  readonly body: unknown;
}

/**
 * Answers a tenant admin request through `tenants` (undefined: auth is off, NotFound). Throws
 * HttpError for a bad body; the directory's failures come back as a Result.
 */
export async function answerTenants(
  req: TenantRequest,
  tenants: TenantService | undefined,
  readBody: () => Promise<Uint8Array>,
): Promise<Result<TenantAnswer>> {
  if (tenants === undefined) throw new HttpError(HttpErrorCode.NotFound, 'no tenants to manage: this node runs with --auth off');
  switch (req.route) {
    case 'tenant-create': {
      const { name, quota } = createBody(await readBody());
      const r = await tenants.create(name, quota);
      return r.ok ? { ok: true, value: { status: 201, body: r.value } } : r;
    }
    case 'tenant-list': {
      const r = await tenants.list();
      return r.ok ? { ok: true, value: { status: 200, body: { tenants: r.value } } } : r;
    }
    case 'tenant-delete': {
      const r = await tenants.delete(req.name);
      return r.ok ? { ok: true, value: { status: 200, body: r.value } } : r;
    }
    case 'tenant-rotate': {
      const r = await tenants.rotate(req.name);
      return r.ok ? { ok: true, value: { status: 200, body: r.value } } : r;
    }
  }
}

/**
 * `{"name": string, "quota"?: {"requestsPerSec"?: number, "bytesMax"?: integer, "keysMax"?: integer}}`,
 * nothing else; HttpError BadRequest otherwise (requestsPerSec a positive number; bytesMax and
 * keysMax positive safe integers).
 */
export function createBody(bytes: Uint8Array): { name: string; quota: TenantQuota } {
  if (bytes.length > TENANT_BODY_BYTES_MAX) throw new HttpError(HttpErrorCode.PayloadTooLarge, `the body is larger than ${TENANT_BODY_BYTES_MAX} bytes`);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let v: unknown;
  try {
    if (!isUtf8(buf)) throw new Error('not UTF-8');
    v = JSON.parse(buf.toString('utf8'));
  } catch {
    throw bad('the body must be a JSON object {"name","quota"}');
  }
  if (!isObject(v)) throw bad('the body must be a JSON object {"name","quota"}');
  onlyFields(v, ['name', 'quota'], 'the body');
  if (typeof v.name !== 'string') throw new HttpError(HttpErrorCode.InvalidTenant, '"name" must be a string');
  if (v.quota === undefined) return { name: v.name, quota: {} };
  if (!isObject(v.quota)) throw bad('"quota" must be an object');
  onlyFields(v.quota, ['requestsPerSec', 'bytesMax', 'keysMax'], '"quota"');
  const { requestsPerSec: rps, bytesMax, keysMax } = v.quota;
  if (rps !== undefined && (typeof rps !== 'number' || !Number.isFinite(rps) || rps <= 0)) {
    throw bad(`"quota.requestsPerSec" must be a positive number, got ${JSON.stringify(rps)}`);
  }
  for (const [field, n] of [
    ['bytesMax', bytesMax],
    ['keysMax', keysMax],
  ] as const) {
    if (n !== undefined && !(typeof n === 'number' && Number.isSafeInteger(n) && n > 0)) {
      throw bad(`"quota.${field}" must be a positive safe integer, got ${JSON.stringify(n)}`);
    }
  }
  const quota: { requestsPerSec?: number; bytesMax?: number; keysMax?: number } = {};
  if (rps !== undefined) quota.requestsPerSec = rps;
  if (bytesMax !== undefined) quota.bytesMax = bytesMax as number;
  if (keysMax !== undefined) quota.keysMax = keysMax as number;
  return { name: v.name, quota };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function onlyFields(v: Record<string, unknown>, known: readonly string[], what: string): void {
  const extra = Object.keys(v).filter((k) => !known.includes(k));
  if (extra.length > 0) throw bad(`${what} has unknown fields ${JSON.stringify(extra.slice(0, 5))} (known: ${known.join(', ')})`);
}

function bad(message: string): HttpError {
  return new HttpError(HttpErrorCode.BadRequest, message);
}
