/**
 * Request parsing for the client API: pure functions from a request's method, target and headers
 * to a typed {@link ApiRequest}, or an {@link HttpError}. No sockets: the server reads the body
 * (a PUT's value) after parsing, within the body limit checked here from its headers.
 *
 * Keys are bytes: the path after `/v1/kv/` (up to `?`), percent-decoded byte by byte, so `%FF` is
 * the byte 0xFF and `a%2Fb` and `a/b` are the same key; `+` is a plus sign in the path. Query
 * values (`prefix`, `after`) decode the same way, except that `+` is a space there (form
 * encoding): a client that builds URLs with `encodeURIComponent` or `URLSearchParams` gets exact
 * bytes either way.
 */
import { Buffer, isUtf8 } from 'node:buffer';
import type { IncomingHttpHeaders } from 'node:http';
import { isClientTenantName, isConsistency } from '../../api/index.js';
import type { Consistency, Session } from '../../api/index.js';
import { CLIENT_ID_HEADER, CLIENT_ID_MAX, CLIENT_ID_MIN, CLIENT_SEQ_HEADER, isClientId } from '../../wire/index.js';
import { HttpError, HttpErrorCode, allow } from './errors.js';
import { isTenantPath, parseTenantRoute } from './tenant-routes.js';
import type { TenantRequest } from './tenant-routes.js';
import { isRolePath, parseRoleRoute } from './role-routes.js';
import type { RoleRequest } from './role-routes.js';
import { isMemberPath, parseMemberRoute } from './member-routes.js';
import type { MemberRequest } from './member-routes.js';

/** Scan limits: default and largest. */
export const SCAN_LIMIT_DEFAULT = 100;
export const SCAN_LIMIT_MAX = 10_000;

export const JSON_TYPE = 'application/json';
const KV_PREFIX = '/v1/kv/';
const KEY_METHODS = 'GET, HEAD, PUT, DELETE';
const READ_METHODS = 'GET, HEAD';

/** What parsing reads of a request: its head, never its body. */
export interface RequestHead {
  /** `GET`, `PUT`...; HEAD is parsed like GET. */
  readonly method: string;
  /** The request target: a path with its query, or the absolute form `http://host/path?query`. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

export interface ParseLimits {
  /** Longest key, scan prefix or `after`, in bytes after percent-decoding. */
  readonly maxKeyBytes: number;
}

/** A request of the client API, checked: each route with its arguments. */
export type ApiRequest =
  /**
   * `PUT /v1/kv/<key>`; the body is the value. `expectedVersion` (0 = must not exist) makes it a
   * compare-and-set. `session`: the client's own (headers `x-client-id`, `x-client-seq`), if given.
   */
  | ({
      readonly route: 'put';
      readonly tenant: string;
      readonly key: Uint8Array;
      readonly expectedVersion: number | undefined;
      readonly session?: Session | undefined;
    } & ShardShown)
  | ({
      readonly route: 'delete';
      readonly tenant: string;
      readonly key: Uint8Array;
      readonly expectedVersion: number | undefined;
      readonly session?: Session | undefined;
    } & ShardShown)
  /** `json`: answer `{"key","value",...}` instead of the raw value. */
  | ({ readonly route: 'get'; readonly tenant: string; readonly key: Uint8Array; readonly consistency: Consistency; readonly json: boolean } & ShardShown)
  /** `startAfter` undefined: from the first key with the prefix. */
  | {
      readonly route: 'scan';
      readonly tenant: string;
      readonly prefix: Uint8Array;
      readonly limit: number;
      readonly startAfter: Uint8Array | undefined;
      readonly consistency: Consistency;
    }
  | { readonly route: 'status' }
  /** `GET /` or `/ui`: the live status page (HTML). */
  | { readonly route: 'page' }
  /** `withKey`: the caller may see the placement key (no tenant token: auth off, or the admin token). */
  | { readonly route: 'placement'; readonly withKey: boolean }
  | { readonly route: 'health' }
  | { readonly route: 'metrics' }
  | TenantRequest
  | RoleRequest
  | MemberRequest;

/**
 * `hideShard`: the answer does not name the key's shard (`x-shard`): asked with a tenant's token,
 * which must not learn where its keys land (it could collect keys of one shard by probing).
 */
interface ShardShown {
  readonly hideShard?: true;
}

/**
 * The route and arguments of a request, checked in this order: the target, the method (405 with
 * `allow`), the key, the query, the tenant, then the route's own parameters. Throws HttpError
 * BadRequest, NotFound, MethodNotAllowed, EmptyKey, KeyTooLarge, InvalidLimit,
 * InvalidConsistency, InvalidSession, InvalidTenant, or Forbidden: with `bound` (the tenant of
 * the request's token) the request is that tenant's, and naming another is Forbidden.
 */
export function parseRequest(head: RequestHead, limits: ParseLimits, bound?: string): ApiRequest {
  const { method } = head;
  const { path, query } = splitTarget(head.url);

  if (path === '/v1/kv' || path === KV_PREFIX) {
    if (path === KV_PREFIX && (method === 'PUT' || method === 'DELETE')) throw new HttpError(HttpErrorCode.EmptyKey, 'the key is empty');
    allow(method, path === KV_PREFIX ? KEY_METHODS : READ_METHODS);
    return parseScan(head, parseQuery(query), limits, bound);
  }
  if (path.startsWith(KV_PREFIX)) {
    allow(method, KEY_METHODS);
    const key = decodeKey(path.slice(KV_PREFIX.length), limits);
    if (key.length === 0) throw new HttpError(HttpErrorCode.EmptyKey, 'the key is empty');
    const q = parseQuery(query);
    if (method === 'PUT') {
      const tenant = tenantOf(head, q, bound);
      return { route: 'put', tenant, key, expectedVersion: expectedVersionOf(head, q), session: sessionOf(head), ...hideShard(bound) };
    }
    if (method === 'DELETE') {
      const tenant = tenantOf(head, q, bound);
      const expectedVersion = expectedVersionOf(head, q);
      // Version 0 would mean "delete only if absent": nothing to delete, so it is a mistake.
      if (expectedVersion === 0)
        throw new HttpError(HttpErrorCode.BadRequest, 'a conditional DELETE needs version 1 or more (0 would mean the key must not exist)');
      return { route: 'delete', tenant, key, expectedVersion, session: sessionOf(head), ...hideShard(bound) };
    }
    const tenant = tenantOf(head, q, bound);
    const consistency = consistencyOf(q);
    return { route: 'get', tenant, key, consistency, json: wantsJson(head, q), ...hideShard(bound) };
  }
  if (isTenantPath(path)) return parseTenantRoute(method, path);
  if (isRolePath(path)) return parseRoleRoute(method, path);
  if (isMemberPath(path)) return parseMemberRoute(method, path);
  switch (path) {
    case '/v1/status':
      allow(method, READ_METHODS);
      return { route: 'status' };
    case '/':
    case '/ui':
    case '/ui/':
      allow(method, READ_METHODS);
      return { route: 'page' };
    case '/v1/placement':
      allow(method, READ_METHODS);
      // A tenant's token (bound) must not learn the key: it could aim its keys at one shard.
      return { route: 'placement', withKey: bound === undefined };
    case '/healthz':
      allow(method, READ_METHODS);
      return { route: 'health' };
    case '/metrics':
      allow(method, READ_METHODS);
      return { route: 'metrics' };
    default:
      throw new HttpError(HttpErrorCode.NotFound, `no route for ${method} ${path}`);
  }
}

/** `hideShard` for a request of a tenant's token (`bound`). */
function hideShard(bound: string | undefined): { hideShard?: true } {
  return bound === undefined ? {} : { hideShard: true };
}

function parseScan(head: RequestHead, q: Query, limits: ParseLimits, bound: string | undefined): ApiRequest {
  const tenant = tenantOf(head, q, bound);
  const consistency = consistencyOf(q);
  const limitText = q.get('limit');
  let limit = SCAN_LIMIT_DEFAULT;
  if (limitText !== undefined) {
    const s = limitText.toString('latin1');
    limit = /^[0-9]{1,6}$/.test(s) ? Number(s) : 0;
    if (limit < 1 || limit > SCAN_LIMIT_MAX) throw new HttpError(HttpErrorCode.InvalidLimit, `limit must be an integer in 1..${SCAN_LIMIT_MAX}, got '${s}'`);
  }
  const prefix = checkKeyLength(q.get('prefix') ?? new Uint8Array(0), 'prefix', limits);
  const afterBytes = q.get('after');
  const startAfter = afterBytes === undefined || afterBytes.length === 0 ? undefined : checkKeyLength(afterBytes, 'after', limits);
  return { route: 'scan', tenant, prefix, limit, startAfter, consistency };
}

/** Path and query of a request target; the absolute form (`http://host/path`) is reduced to its path. */
export function splitTarget(url: string): { path: string; query: string } {
  let u = url;
  const hash = u.indexOf('#');
  if (hash >= 0) u = u.slice(0, hash);
  if (!u.startsWith('/')) {
    const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?]*/.exec(u);
    if (m === null) throw new HttpError(HttpErrorCode.BadRequest, 'the request target must be a path');
    u = u.slice(m[0].length);
    if (!u.startsWith('/')) u = `/${u}`;
  }
  const q = u.indexOf('?');
  return q < 0 ? { path: u, query: '' } : { path: u.slice(0, q), query: u.slice(q + 1) };
}

/** The key of a `/v1/kv/<key>` path (`+` is a plus sign there, not a space). */
function decodeKey(text: string, limits: ParseLimits): Uint8Array {
  const bytes = percentDecode(text, false);
  if (bytes === undefined) throw new HttpError(HttpErrorCode.BadRequest, 'malformed percent-encoding in the key');
  return checkKeyLength(bytes, 'key', limits);
}

function checkKeyLength(bytes: Uint8Array, what: string, limits: ParseLimits): Uint8Array {
  if (bytes.length > limits.maxKeyBytes) {
    throw new HttpError(HttpErrorCode.KeyTooLarge, `the ${what} is ${bytes.length} bytes, more than ${limits.maxKeyBytes}`);
  }
  return bytes;
}

/** Query parameters, names as text, values as percent-decoded bytes. */
export type Query = ReadonlyMap<string, Buffer>;

/** Parameters this API reads; each may appear once. Others are ignored. */
const KNOWN_PARAMS = new Set(['tenant', 'consistency', 'format', 'version', 'prefix', 'limit', 'after']);

/** The parameters of a query string (`+` is a space); BadRequest for a broken escape or a repeated parameter. */
export function parseQuery(query: string): Query {
  const out = new Map<string, Buffer>();
  if (query === '') return out;
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const rawName = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? '' : part.slice(eq + 1);
    const name = percentDecode(rawName, true);
    const value = percentDecode(rawValue, true);
    if (name === undefined || value === undefined) throw new HttpError(HttpErrorCode.BadRequest, 'malformed percent-encoding in the query');
    const key = Buffer.from(name.buffer, name.byteOffset, name.byteLength).toString('latin1');
    if (!KNOWN_PARAMS.has(key)) continue;
    if (out.has(key)) throw new HttpError(HttpErrorCode.BadRequest, `query parameter '${key}' is given more than once`);
    out.set(key, Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  }
  return out;
}

/** A query value that must be text. */
function textParam(q: Query, name: string): string | undefined {
  const v = q.get(name);
  if (v === undefined) return undefined;
  if (!isUtf8(v)) throw new HttpError(HttpErrorCode.BadRequest, `query parameter '${name}' is not UTF-8`);
  return v.toString('utf8');
}

/**
 * Header `x-tenant` or query `tenant`, default `default` (or `bound`, the token's tenant); both
 * given and different is a BadRequest; a bad or reserved (`_`) name InvalidTenant; naming another
 * tenant than `bound` Forbidden.
 */
function tenantOf(head: RequestHead, q: Query, bound: string | undefined): string {
  const fromHeader = head.headers['x-tenant'];
  const header = Array.isArray(fromHeader) ? fromHeader.join(', ') : fromHeader;
  const fromQuery = textParam(q, 'tenant');
  if (header !== undefined && fromQuery !== undefined && header !== fromQuery) {
    throw new HttpError(HttpErrorCode.BadRequest, `tenant '${header}' (x-tenant) and '${fromQuery}' (query) differ`);
  }
  const named = header ?? fromQuery;
  if (named !== undefined && !isClientTenantName(named)) {
    throw new HttpError(
      HttpErrorCode.InvalidTenant,
      `a tenant is 1..64 of [A-Za-z0-9_.-], not starting with '_' (reserved), got ${JSON.stringify(named.slice(0, 80))}`,
    );
  }
  if (bound === undefined) return named ?? 'default';
  if (named !== undefined && named !== bound)
    throw new HttpError(HttpErrorCode.Forbidden, `this token is tenant '${bound}''s; it cannot act on tenant '${named}'`);
  return bound;
}

function consistencyOf(q: Query): Consistency {
  const c = textParam(q, 'consistency');
  if (c === undefined) return 'linearizable';
  if (isConsistency(c)) return c;
  throw new HttpError(HttpErrorCode.InvalidConsistency, `consistency must be linearizable, lease or stale, got '${c}'`);
}

/** `?format=json|raw`, else whether `accept` lists application/json (with a q above 0). */
function wantsJson(head: RequestHead, q: Query): boolean {
  const format = textParam(q, 'format');
  if (format === 'json') return true;
  if (format === 'raw') return false;
  if (format !== undefined) throw new HttpError(HttpErrorCode.BadRequest, `format must be json or raw, got '${format}'`);
  // `*/*` keeps the raw value.
  for (const range of (head.headers.accept ?? '').split(',')) {
    const [type = '', ...params] = range.split(';').map((p) => p.trim().toLowerCase());
    if (type !== JSON_TYPE) continue;
    const q = params.find((p) => p.startsWith('q='));
    if (q === undefined || Number(q.slice(2)) > 0) return true;
  }
  return false;
}

const VERSION_RE = /^(0|[1-9][0-9]{0,15})$/;

/** The compare-and-set version from `?version=N` or `if-match: N` / `"N"`; both given must agree. */
function expectedVersionOf(head: RequestHead, q: Query): number | undefined {
  const parse = (text: string, where: string): number => {
    const n = VERSION_RE.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(n)) throw new HttpError(HttpErrorCode.BadRequest, `${where} must be a version number (0 = must not exist), got '${text}'`);
    return n;
  };
  const fromQuery = q.get('version');
  const a = fromQuery === undefined ? undefined : parse(fromQuery.toString('latin1'), 'version');
  const ifMatch = head.headers['if-match']?.trim();
  const b = ifMatch === undefined ? undefined : parse(ifMatch.replace(/^"(.*)"$/, '$1'), 'if-match');
  if (a !== undefined && b !== undefined && a !== b) throw new HttpError(HttpErrorCode.BadRequest, `version ${a} and if-match ${b} differ`);
  return a ?? b;
}

const SESSION_NUMBER_RE = /^[1-9][0-9]{0,15}$/;

/**
 * The client's own session of a write, from `x-client-id` and `x-client-seq` (decimal): both or
 * neither; the id in CLIENT_ID_MIN..CLIENT_ID_MAX (2^52..2^53-1: lower ids are the nodes' own, see
 * src/wire/session.ts), the sequence a positive safe integer. InvalidSession otherwise.
 */
export function sessionOf(head: RequestHead): Session | undefined {
  const id = head.headers[CLIENT_ID_HEADER];
  const seq = head.headers[CLIENT_SEQ_HEADER];
  if (id === undefined && seq === undefined) return undefined;
  if (id === undefined || seq === undefined) {
    throw new HttpError(HttpErrorCode.InvalidSession, `${CLIENT_ID_HEADER} and ${CLIENT_SEQ_HEADER} go together: give both or neither`);
  }
  const number = (text: string | string[]): number => {
    const t = Array.isArray(text) ? text.join(', ') : text.trim();
    return SESSION_NUMBER_RE.test(t) ? Number(t) : NaN;
  };
  const clientId = number(id);
  if (!isClientId(clientId)) {
    throw new HttpError(HttpErrorCode.InvalidSession, `${CLIENT_ID_HEADER} must be an integer in ${CLIENT_ID_MIN}..${CLIENT_ID_MAX}, got '${String(id)}'`);
  }
  const s = number(seq);
  if (!Number.isSafeInteger(s)) {
    throw new HttpError(HttpErrorCode.InvalidSession, `${CLIENT_SEQ_HEADER} must be an integer in 1..${Number.MAX_SAFE_INTEGER}, got '${String(seq)}'`);
  }
  return { clientId, seq: s };
}

// ------------------------------------------------------------------------------------ body

/** The body length the headers announce (Node's parser has checked that it is digits); undefined when chunked or absent. */
export function declaredBodyBytes(headers: IncomingHttpHeaders): number | undefined {
  const declared = headers['content-length'];
  return declared === undefined ? undefined : Number(declared);
}

/** Whether the request has a body to read (chunked, or a content-length above 0). */
export function hasBody(headers: IncomingHttpHeaders): boolean {
  const len = headers['content-length'];
  return headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

/** The answer to a body longer than `maxBodyBytes`. */
export function payloadTooLarge(maxBodyBytes: number): HttpError {
  return new HttpError(HttpErrorCode.PayloadTooLarge, `the body is larger than ${maxBodyBytes} bytes`);
}

// ------------------------------------------------------------------------------------ bytes

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * Percent-decodes to bytes. Other characters are taken as bytes: Node reads the request line as
 * latin1, so raw non-ASCII bytes come back as they were sent. Undefined for a `%` not followed by
 * two hex digits.
 */
export function percentDecode(text: string, plusIsSpace: boolean): Uint8Array | undefined {
  const out = new Uint8Array(text.length);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x25) {
      const hi = hexValue(text.charCodeAt(i + 1));
      const lo = hexValue(text.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) return undefined;
      out[n++] = hi * 16 + lo;
      i += 2;
    } else if (c === 0x2b && plusIsSpace) out[n++] = 0x20;
    else if (c > 0xff) return undefined;
    else out[n++] = c;
  }
  return out.slice(0, n);
}
