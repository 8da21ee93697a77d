/**
 * The routes of the client API: each checked {@link ApiRequest} is answered by calling the
 * {@link KvService} and turning its result into a {@link Reply}. Operating errors are thrown as
 * HttpError; the server answers them. No sockets here.
 *
 * - `PUT /v1/kv/<key>`: the body is the value. `?version=N` or `if-match: N` (or `"N"`) makes it a
 *   compare-and-set: N is the expected current version, 0 = the key must not exist.
 *   200 `{"version"}`; 412 VersionMismatch with the current `version`.
 * - `GET /v1/kv/<key>`: 200 with the raw value (`application/octet-stream`) and headers
 *   `x-version`, `x-create-index`, `x-mod-index`; with `?format=json` or `accept: application/json`,
 *   `{"key","value","version","createIndex","modIndex"}`. 404 KeyNotFound.
 * - `DELETE /v1/kv/<key>`: 200 `{"deleted"}`. `?version=N` or `if-match: N` (N >= 1) makes it a
 *   compare-and-delete: 412 VersionMismatch with the current `version` (0 = absent) when the key is
 *   not at N, and nothing is deleted.
 * - `GET /v1/kv?prefix=&limit=&after=` (or `/v1/kv/`): `{"items":[{"key","value","version"}],"more","next"}`;
 *   `next` (present when `more`) is the last key, to pass back as `after`. limit: 1..10,000, default 100.
 * - `PUT` and `DELETE` may carry the client's own session, headers `x-client-id` and `x-client-seq`
 *   (src/wire/session.ts): the write is then applied once however often it is sent, through any
 *   node, while the shard keeps the session (SESSION_TTL_MS of log time, 60 s, after its last use).
 * - `GET /v1/placement`: `{"node","shards","replicas","hash","leaders"}`, and `placementKey` for
 *   callers trusted with it (see Placement).
 * - `GET /v1/status`, `GET /healthz` (200 or 503), `GET /metrics`.
 * - `/v1/tenants` and `/v1/roles`: the admin APIs (tenant-routes.ts, role-routes.ts).
 * - `GET /` or `/ui`: the live status page (status-page.ts), which polls `GET /v1/status`.
 *
 * Keys and values in JSON bodies are strings when their bytes are valid UTF-8, else
 * `{"base64": "..."}`. A string key goes back into a URL with `encodeURIComponent`; a base64 one by
 * percent-encoding each of its bytes.
 */
import { Buffer, isUtf8 } from 'node:buffer';
import { isServiceErrorCode } from '../../api/index.js';
import type { Failure, KvService, RoleService, MemberService, Served, TenantService } from '../../api/index.js';
import { HttpError, HttpErrorCode } from './errors.js';
import type { HttpLogger } from './log.js';
import { JSON_TYPE } from './request.js';
import { statusPageReply } from './status-page.js';
import type { ApiRequest } from './request.js';
import { answerTenants } from './tenant-routes.js';
import { answerRoles } from './role-routes.js';
import { answerMembers } from './member-routes.js';

/** A whole response: status, headers (names in lowercase) and body. */
export interface Reply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/** What a route needs besides its request. */
export interface RouteContext {
  readonly service: KvService;
  /** The tenant directory (auth on); undefined: the tenant admin routes answer 404. */
  readonly tenants?: TenantService;
  /** The role bindings of the management ALPN; undefined: the role admin routes answer 404. */
  readonly roles?: RoleService;
  /** The cluster's members; undefined: the members routes answer 404. */
  readonly members?: MemberService;
  /** Told about service failures with a code outside ServiceErrorCode. */
  readonly logger: HttpLogger;
  /** Reads the whole request body (PUT); throws HttpError PayloadTooLarge or BadRequest. */
  readBody(): Promise<Uint8Array>;
}

/** Answers one request. Throws HttpError for operating errors; any other throw is a bug. */
export async function answer(req: ApiRequest, ctx: RouteContext): Promise<Reply> {
  switch (req.route) {
    case 'put':
      return put(req, ctx);
    case 'delete':
      return del(req, ctx);
    case 'get':
      return get(req, ctx);
    case 'scan':
      return scan(req, ctx);
    case 'status':
      return jsonReply(200, await ctx.service.status());
    case 'page':
      return statusPageReply();
    case 'placement':
      return jsonReply(200, ctx.service.placement(req.withKey));
    case 'health': {
      const h = ctx.service.health();
      return jsonReply(h.ok ? 200 : 503, { ok: h.ok, detail: h.detail });
    }
    case 'metrics': {
      const m = await ctx.service.metrics();
      return { status: 200, headers: { 'content-type': m.contentType }, body: Buffer.from(m.body, 'utf8') };
    }
    case 'tenant-create':
    case 'tenant-list':
    case 'tenant-delete':
    case 'tenant-rotate': {
      const r = await answerTenants(req, ctx.tenants, () => ctx.readBody());
      if (!r.ok) throw serviceError(r, ctx.logger);
      return jsonReply(r.value.status, r.value.body);
    }
    case 'role-list':
    case 'role-get':
    case 'role-grant':
    case 'role-revoke': {
      const r = await answerRoles(req, ctx.roles, () => ctx.readBody());
      if (!r.ok) throw serviceError(r, ctx.logger);
      return jsonReply(200, r.value);
    }
    case 'member-list':
    case 'member-remove':
    case 'member-invite': {
      const r = await answerMembers(req, ctx.members, () => ctx.readBody());
      if (!r.ok) throw serviceError(r, ctx.logger);
      return jsonReply(200, r.value);
    }
  }
}

async function put(req: Extract<ApiRequest, { route: 'put' }>, ctx: RouteContext): Promise<Reply> {
  const { tenant, key, expectedVersion, session } = req;
  const value = await ctx.readBody();
  const r = await ctx.service.put({
    tenant,
    key,
    value,
    ...(expectedVersion === undefined ? {} : { expectedVersion }),
    ...(session === undefined ? {} : { session }),
  });
  if (!r.ok) throw serviceError(r, ctx.logger);
  if (!r.value.swapped) {
    const current = r.value.version;
    throw new HttpError(HttpErrorCode.VersionMismatch, `expected version ${expectedVersion ?? '(none)'}, the key is at version ${current}`, {
      version: current,
    });
  }
  return jsonReply(200, { version: r.value.version }, { 'x-version': String(r.value.version), ...servedHeaders(r.value.served, req.hideShard) });
}

/**
 * `x-shard` and `x-node`: the request's shard and the node (raft id, as `node` in `GET /v1/status`)
 * that served it, its leader for writes and linearizable or lease reads. A client that sends the
 * shard's next requests to that node saves a forward. `x-node` only for a tenant's token: knowing
 * each key's shard, a tenant could collect keys of one shard by probing, which the keyed placement
 * hash is there to prevent.
 */
function servedHeaders(served: Served | undefined, hideShard: true | undefined): Record<string, string> {
  if (served === undefined) return {};
  return hideShard === true ? { 'x-node': String(served.node) } : { 'x-shard': String(served.shard), 'x-node': String(served.node) };
}

async function del(req: Extract<ApiRequest, { route: 'delete' }>, ctx: RouteContext): Promise<Reply> {
  const { tenant, key, expectedVersion, session } = req;
  const r = await ctx.service.delete({
    tenant,
    key,
    ...(expectedVersion === undefined ? {} : { expectedVersion }),
    ...(session === undefined ? {} : { session }),
  });
  if (!r.ok) throw serviceError(r, ctx.logger);
  const { deleted, version, served } = r.value;
  if (expectedVersion !== undefined && !deleted) {
    // The key is at another version, or gone (version 0): nothing was deleted.
    throw new HttpError(HttpErrorCode.VersionMismatch, `expected version ${expectedVersion}, the key is at version ${version ?? 0}`, { version: version ?? 0 });
  }
  return jsonReply(200, { deleted }, servedHeaders(served, req.hideShard));
}

async function get(req: Extract<ApiRequest, { route: 'get' }>, ctx: RouteContext): Promise<Reply> {
  const { tenant, key, consistency } = req;
  const r = await ctx.service.get({ tenant, key, consistency });
  if (!r.ok) throw serviceError(r, ctx.logger);
  const v = r.value;
  if (!v.found) throw new HttpError(HttpErrorCode.KeyNotFound, 'no such key', undefined, servedHeaders(v.served, req.hideShard));
  const meta = {
    'x-version': String(v.version),
    'x-create-index': String(v.createIndex),
    'x-mod-index': String(v.modIndex),
    ...servedHeaders(v.served, req.hideShard),
  };
  if (req.json) {
    const body = { key: bytesToJson(key), value: bytesToJson(v.value), version: v.version, createIndex: v.createIndex, modIndex: v.modIndex };
    return jsonReply(200, body, meta);
  }
  return { status: 200, headers: { ...meta, 'content-type': 'application/octet-stream' }, body: asBuffer(v.value) };
}

async function scan(req: Extract<ApiRequest, { route: 'scan' }>, ctx: RouteContext): Promise<Reply> {
  const { tenant, prefix, limit, consistency, startAfter } = req;
  const r = await ctx.service.scan({ tenant, prefix, limit, consistency, ...(startAfter === undefined ? {} : { startAfter }) });
  if (!r.ok) throw serviceError(r, ctx.logger);
  const items = r.value.items.map((it) => ({ key: bytesToJson(it.key), value: bytesToJson(it.value), version: it.version }));
  const last = r.value.items.at(-1);
  const body: Record<string, unknown> = { items, more: r.value.more };
  if (r.value.more && last !== undefined) body.next = bytesToJson(last.key);
  return jsonReply(200, body);
}

/**
 * A service failure as an HttpError with the code's status. A code outside ServiceErrorCode
 * (a plug-in state machine's, a bug) is logged and becomes 500 Internal, naming the code.
 */
export function serviceError(f: Failure, logger: HttpLogger): HttpError {
  if (!isServiceErrorCode(f.code)) {
    logger.error({ code: f.code, message: f.message }, 'unknown service error code');
    return new HttpError(HttpErrorCode.Internal, `internal error (${f.code}: ${f.message})`);
  }
  return new HttpError(f.code, f.message);
}

/** The answer to an HttpError: `{"error":{"code","message",...}}` with its status and headers. */
export function errorReply(e: HttpError): Reply {
  return jsonReply(e.status, { error: e }, e.headers);
}

/** A JSON body (throws for what JSON cannot hold, e.g. a bigint: a bug). */
export function jsonReply(status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): Reply {
  return { status, headers: { ...headers, 'content-type': JSON_TYPE }, body: Buffer.from(JSON.stringify(body), 'utf8') };
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** A key or value for a JSON body: the string when the bytes are valid UTF-8, else `{ base64 }`. */
export function bytesToJson(bytes: Uint8Array): string | { base64: string } {
  const b = asBuffer(bytes);
  return isUtf8(b) ? b.toString('utf8') : { base64: b.toString('base64') };
}
