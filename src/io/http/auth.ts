/**
 * Auth on the client API (`--auth on`): who a request comes from is its bearer token, never a
 * header alone.
 *
 * - `GET /healthz` is open (load balancers probe it without credentials), and so is the status
 *   page itself (`/`, `/ui`, `/ui/`): a browser cannot send a bearer token with a page load, and
 *   the page is static HTML with no data in it. Its script asks for the admin token and sends it
 *   with each `GET /v1/status`, which stays admin-only.
 * - Every other request carries `Authorization: Bearer <token>`; none, a malformed one, or one
 *   nobody holds (deleted tenant, rotated secret, another node's admin token) is 401
 *   `Unauthorized` with `www-authenticate: Bearer`, before its body is read.
 * - A tenant's token: the KV routes of its own tenant (naming another in `x-tenant` or
 *   `?tenant=` is 403 `Forbidden`), within its `requestsPerSec` on this node (429 `RateLimited`
 *   with `retry-after`). Any other route (status, metrics, tenant admin, and routes added later
 *   unless listed in {@link TENANT_ROUTES}) is 403 `Forbidden`.
 * - The node's admin token: every route, any tenant through `x-tenant` (operators), no rate limit.
 */
import type { Principal, TenantService } from '../../api/index.js';
import { HttpError, HttpErrorCode } from './errors.js';
import type { HttpLogger } from './log.js';
import { RateLimiter } from './rate-limit.js';
import { parseRequest, splitTarget } from './request.js';
import type { ApiRequest, ParseLimits, RequestHead } from './request.js';
import { serviceError } from './routes.js';

/**
 * Routes a tenant's token may use: its own keys, and where keys live (`/v1/placement`, for the
 * client library's routing). Every other route but the open ones needs the admin token:
 * `/v1/status` (it shows every node and shard), `/metrics`, the tenant admin API.
 */
export const TENANT_ROUTES: ReadonlySet<ApiRequest['route']> = new Set<ApiRequest['route']>(['put', 'get', 'delete', 'scan', 'placement']);
/** Paths answered without credentials: the health probe and the status page's static HTML (its data comes from `/v1/status`). */
const OPEN_PATHS: ReadonlySet<string> = new Set(['/healthz', '/', '/ui', '/ui/']);

export interface HttpAuthOptions {
  /** Checks tokens and keeps the tenants (the replicated directory, in a node). */
  readonly tenants: TenantService;
  /** Per-tenant rate buckets kept at most on this node. Default 10,000. */
  readonly rateBucketsMax?: number;
}

/** The bearer token of an `authorization` header; Unauthorized when it is missing or not `Bearer <token>`. */
export function bearerToken(header: string | undefined): string {
  if (header === undefined || header === '') throw unauthorized('this node requires a bearer token (authorization: Bearer <token>)', 'Bearer');
  const m = /^Bearer +([\x21-\x7e]+) *$/i.exec(header);
  if (m === null) throw unauthorized('the authorization header must be "Bearer <token>"', 'Bearer error="invalid_request"');
  return m[1]!;
}

function unauthorized(message: string, challenge: string): HttpError {
  return new HttpError(HttpErrorCode.Unauthorized, message, {}, { 'www-authenticate': challenge });
}

/** Requests refused by auth so far, by reason (for metrics). */
export interface AuthCounts {
  /** 401: no token, a malformed one, or one nobody holds. */
  unauthorized: number;
  /** 403: a tenant's token naming another tenant or asking for an admin route. */
  forbidden: number;
  /** 429: over the tenant's requestsPerSec on this node. */
  rateLimited: number;
}

export class Authenticator {
  readonly tenants: TenantService;
  readonly counts: AuthCounts = { unauthorized: 0, forbidden: 0, rateLimited: 0 };
  private readonly limiter: RateLimiter;

  constructor(
    opts: HttpAuthOptions,
    private readonly logger: HttpLogger,
  ) {
    this.tenants = opts.tenants;
    this.limiter = new RateLimiter(opts.rateBucketsMax === undefined ? {} : { bucketsMax: opts.rateBucketsMax });
  }

  /**
   * The request, parsed for its principal and allowed: throws HttpError Unauthorized, Forbidden,
   * RateLimited, any of parseRequest's, or the directory's failure (NotLeader, Timeout...) when a
   * record could not be read.
   */
  async admit(head: RequestHead, limits: ParseLimits): Promise<ApiRequest> {
    if (OPEN_PATHS.has(splitTarget(head.url).path)) return parseRequest(head, limits);
    const principal = await this.principal(head);
    if (principal.kind === 'admin') return parseRequest(head, limits);
    let req: ApiRequest;
    try {
      req = parseRequest(head, limits, principal.tenant);
    } catch (e) {
      if (e instanceof HttpError && e.code === HttpErrorCode.Forbidden) this.counts.forbidden++;
      throw e;
    }
    if (!TENANT_ROUTES.has(req.route)) {
      this.counts.forbidden++;
      throw new HttpError(HttpErrorCode.Forbidden, `route ${req.route} needs the admin token`);
    }
    const rate = principal.quota.requestsPerSec;
    if (rate !== undefined) {
      const d = this.limiter.take(principal.tenant, rate);
      if (!d.ok) {
        this.counts.rateLimited++;
        throw new HttpError(
          HttpErrorCode.RateLimited,
          `tenant '${principal.tenant}' is over its ${rate} requests/s on this node`,
          {},
          {
            'retry-after': String(d.retryAfterS),
          },
        );
      }
    }
    return req;
  }

  /** Per-tenant rate buckets held now (at most rateBucketsMax). */
  get rateBuckets(): number {
    return this.limiter.size;
  }

  private async principal(head: RequestHead): Promise<Principal> {
    let token: string;
    try {
      token = bearerToken(head.headers.authorization);
    } catch (e) {
      this.counts.unauthorized++;
      throw e;
    }
    const r = await this.tenants.authenticate(token);
    if (!r.ok) throw serviceError(r, this.logger);
    if (r.value.kind !== 'refused') return r.value;
    // A deleted tenant's token: its rate bucket goes too (only then: a wrong secret for a live
    // tenant must not reset that tenant's bucket).
    if (r.value.reason === 'NoSuchTenant') this.limiter.forget(r.value.tenant);
    this.counts.unauthorized++;
    throw unauthorized('the bearer token is not valid (unknown, deleted or rotated)', 'Bearer error="invalid_token"');
  }
}
