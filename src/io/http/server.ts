/**
 * The client API: HTTP/1.1 on `node:http`, on the main thread. It parses and checks requests,
 * calls a {@link KvService} (the router, in a node) and turns its results into responses. It knows
 * nothing of shards or workers.
 *
 * Routes (tenant: header `x-tenant` or query `tenant`, default `default`; both given and
 * different is a BadRequest):
 *
 * - `PUT /v1/kv/<key>`: the body is the value. `?version=N` or `if-match: N` (or `"N"`) makes it a
 *   compare-and-set: N is the expected current version, 0 = the key must not exist.
 *   200 `{"version"}`; 412 VersionMismatch with the current `version`.
 * - `GET /v1/kv/<key>`: 200 with the raw value (`application/octet-stream`) and headers
 *   `x-version`, `x-create-index`, `x-mod-index`; with `?format=json` or `accept: application/json`,
 *   `{"key","value","version","createIndex","modIndex"}`. 404 KeyNotFound.
 * - `DELETE /v1/kv/<key>`: 200 `{"deleted"}`.
 * - `GET /v1/kv?prefix=&limit=&after=` (or `/v1/kv/`): `{"items":[{"key","value","version"}],"more","next"}`;
 *   `next` (present when `more`) is the last key, to pass back as `after`. limit: 1..10,000, default 100.
 * - `GET /v1/status`, `GET /healthz` (200 or 503), `GET /metrics`.
 *
 * Keys are bytes: the path after `/v1/kv/` (up to `?`), percent-decoded byte by byte, so `%FF` is
 * the byte 0xFF and `a%2Fb` and `a/b` are the same key; `+` is a plus sign in the path. Query values
 * (`prefix`, `after`) decode the same way, except that `+` is a space there (form encoding): a client
 * that builds URLs with `encodeURIComponent` or `URLSearchParams` gets exact bytes either way.
 *
 * Keys and values in JSON bodies are strings when their bytes are valid UTF-8, else
 * `{"base64": "..."}`. A string key goes back into a URL with `encodeURIComponent`; a base64 one by
 * percent-encoding each of its bytes.
 *
 * `consistency` (GET and scan): linearizable (default), lease or stale. HEAD is answered like GET.
 * Every error is `{"error":{"code","message"}}`, with the status from `statusByCode`.
 */
import { Buffer, isUtf8 } from 'node:buffer';
import { STATUS_CODES, createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { isConsistency, isServiceErrorCode } from '../../api/index.js';
import type { Consistency, Failure, KvService } from '../../api/index.js';
import { HttpError, HttpErrorCode } from './errors.js';

/** Pino's logger fits. */
export interface HttpLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface HttpServerOptions {
  /** Address to listen on, e.g. 127.0.0.1 or ::. */
  readonly host: string;
  /** TCP port; 0 picks a free one (read it from `url` or `address`). */
  readonly port: number;
  readonly service: KvService;
  /** Longest request body, in bytes; longer ones get 413 PayloadTooLarge. Default 1 MiB + 1 KiB. */
  readonly maxBodyBytes?: number;
  /** Longest key, scan prefix or `after`, in bytes after percent-decoding. Default 1,024. */
  readonly maxKeyBytes?: number;
  /** Time to receive a whole request (headers and body), in ms; then 408 and the connection closes. Default 30,000. */
  readonly requestTimeoutMs?: number;
  /** Time to receive a request's headers, in ms. Default min(10,000, requestTimeoutMs). */
  readonly headersTimeoutMs?: number;
  /** How long an idle keep-alive connection stays open, in ms. Default 5,000. */
  readonly keepAliveTimeoutMs?: number;
  /** How long close() lets in-flight requests run before it destroys the sockets, in ms. Default 5,000. */
  readonly closeTimeoutMs?: number;
  /**
   * After a reply that leaves a request body unread (413, an early error), the connection is
   * half-closed and what the client still sends is read and dropped for up to this long, in ms,
   * so closing does not reset the connection before the client reads the reply. Default 1,000.
   */
  readonly lingerMs?: number;
  /** Default: JSON lines on stderr. */
  readonly logger?: HttpLogger;
}

/** Option defaults (see {@link HttpServerOptions}). */
const DEFAULTS = {
  maxBodyBytes: 1024 * 1024 + 1024,
  maxKeyBytes: 1024,
  requestTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  closeTimeoutMs: 5_000,
  lingerMs: 1_000,
} as const;
/** Scan limits: default and largest. */
const SCAN_LIMIT_DEFAULT = 100;
const SCAN_LIMIT_MAX = 10_000;
/** Node checks request and header deadlines on this period; a finer one for short timeouts. */
const CONNECTIONS_CHECK_INTERVAL_MAX_MS = 1_000;

const KV_PREFIX = '/v1/kv/';
const KEY_METHODS = 'GET, HEAD, PUT, DELETE';
const READ_METHODS = 'GET, HEAD';
const JSON_TYPE = 'application/json';

/** Per request: what happened to its body, which decides whether the connection can be kept. */
interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The body was read to its end. */
  bodyRead: boolean;
  /** Close the connection after the reply, whatever the body's state (413). */
  closeAfter: boolean;
}

const stderrLogger: HttpLogger = {
  warn: (obj, msg) => console.warn(logLine('warn', obj, msg)),
  error: (obj, msg) => console.error(logLine('error', obj, msg)),
};

function logLine(level: string, obj: object, msg: string): string {
  return JSON.stringify({ level, time: Date.now(), msg, ...obj }, (_k, v: unknown) =>
    v instanceof Error ? { name: v.name, message: v.message, stack: v.stack } : v,
  );
}

/** The running HTTP API. Start it with {@link HttpServer.start}; end it with close() or destroy(). */
export class HttpServer {
  /** `http://host:port`, with the real port when 0 was asked for. */
  readonly url: string;
  readonly address: AddressInfo;
  /** Requests received and not yet answered (or their connection closed). */
  private inflightCount = 0;
  /** Set by beginDrain(), close() or destroy(); never cleared. New requests get 503 ShuttingDown. */
  private drainingFlag = false;
  /** Resolves when the server has stopped listening and every connection is closed. */
  private stopped: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  /** Every open connection, so destroy() and close()'s deadline can end them. */
  private readonly sockets = new Set<Socket>();
  /** The response a connection is answering now, so a client error does not write over it. */
  private readonly answering = new WeakMap<Duplex, ServerResponse>();
  private readonly service: KvService;
  private readonly logger: HttpLogger;
  private readonly maxBodyBytes: number;
  private readonly maxKeyBytes: number;
  private readonly closeTimeoutMs: number;
  private readonly lingerMs: number;

  private constructor(
    private readonly server: Server,
    opts: Required<Omit<HttpServerOptions, 'host' | 'port'>>,
    address: AddressInfo,
  ) {
    this.service = opts.service;
    this.logger = opts.logger;
    this.maxBodyBytes = opts.maxBodyBytes;
    this.maxKeyBytes = opts.maxKeyBytes;
    this.closeTimeoutMs = opts.closeTimeoutMs;
    this.lingerMs = opts.lingerMs;
    this.address = address;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.url = `http://${host}:${address.port}`;
  }

  /**
   * Listens and serves. Rejects with the listen error (e.g. EADDRINUSE), or HttpError
   * `InvalidConfig` for an option out of range.
   */
  static async start(options: HttpServerOptions): Promise<HttpServer> {
    const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs;
    const opts = {
      service: options.service,
      logger: options.logger ?? stderrLogger,
      maxBodyBytes: options.maxBodyBytes ?? DEFAULTS.maxBodyBytes,
      maxKeyBytes: options.maxKeyBytes ?? DEFAULTS.maxKeyBytes,
      requestTimeoutMs,
      headersTimeoutMs: options.headersTimeoutMs ?? Math.min(DEFAULTS.headersTimeoutMs, requestTimeoutMs),
      keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? DEFAULTS.keepAliveTimeoutMs,
      closeTimeoutMs: options.closeTimeoutMs ?? DEFAULTS.closeTimeoutMs,
      lingerMs: options.lingerMs ?? DEFAULTS.lingerMs,
    };
    for (const name of ['maxBodyBytes', 'maxKeyBytes', 'requestTimeoutMs', 'headersTimeoutMs', 'keepAliveTimeoutMs', 'closeTimeoutMs', 'lingerMs'] as const) {
      const v = opts[name];
      if (!Number.isSafeInteger(v) || v < 1) throw new HttpError(HttpErrorCode.InvalidConfig, `${name} must be a positive integer, got ${v}`);
    }
    if (opts.headersTimeoutMs > requestTimeoutMs) {
      throw new HttpError(HttpErrorCode.InvalidConfig, `headersTimeoutMs (${opts.headersTimeoutMs}) must not exceed requestTimeoutMs (${requestTimeoutMs})`);
    }

    const server = createServer({
      requestTimeout: requestTimeoutMs,
      headersTimeout: opts.headersTimeoutMs,
      keepAliveTimeout: opts.keepAliveTimeoutMs,
      connectionsCheckingInterval: Math.max(10, Math.min(CONNECTIONS_CHECK_INTERVAL_MAX_MS, Math.floor(opts.headersTimeoutMs / 4))),
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: 30_000,
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: options.host, port: options.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // No I/O runs between the listen callback and here, so no connection can arrive unobserved.
    const http = new HttpServer(server, opts, server.address() as AddressInfo);
    server.on('error', (err) => opts.logger.error({ err }, 'http server error'));
    server.on('connection', (socket: Socket) => {
      http.sockets.add(socket);
      socket.once('close', () => http.sockets.delete(socket));
    });
    server.on('request', (req, res) => http.onRequest(req, res));
    // With this listener Node does not send `100 Continue` itself: readBody() does, only for a
    // request it is going to read, so a refused upload is never sent.
    server.on('checkContinue', (req, res) => http.onRequest(req, res));
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => http.onClientError(err, socket));
    return http;
  }

  /** True once beginDrain(), close() or destroy() was called. */
  get draining(): boolean {
    return this.drainingFlag;
  }

  /** Requests being answered now. */
  get inflight(): number {
    return this.inflightCount;
  }

  /**
   * Graceful-shutdown step one: keep listening, but answer new requests 503 ShuttingDown (with
   * `retry-after`) and close each connection after its reply; in-flight requests complete.
   */
  beginDrain(): void {
    this.drainingFlag = true;
  }

  /**
   * Stops accepting connections, lets in-flight requests finish (their connections close after the
   * reply; idle ones close now), and after `closeTimeoutMs` destroys what is left. Resolves when
   * every connection is closed. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.closeGracefully();
    return this.closing;
  }

  /** Stops listening and destroys every connection now; in-flight requests get no reply. */
  async destroy(): Promise<void> {
    this.drainingFlag = true;
    const stopped = this.stopListening();
    this.server.closeAllConnections();
    for (const s of this.sockets) s.destroy();
    await stopped;
  }

  private async closeGracefully(): Promise<void> {
    this.drainingFlag = true;
    const stopped = this.stopListening();
    this.server.closeIdleConnections();
    const deadline = setTimeout(() => {
      this.logger.warn({ inflight: this.inflightCount, connections: this.sockets.size }, 'http close timed out; destroying connections');
      for (const s of this.sockets) s.destroy();
    }, this.closeTimeoutMs);
    try {
      await stopped;
    } finally {
      clearTimeout(deadline);
    }
  }

  private stopListening(): Promise<void> {
    this.stopped ??= new Promise<void>((resolve) => this.server.close(() => resolve()));
    return this.stopped;
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.inflightCount++;
    this.answering.set(req.socket, res);
    res.once('close', () => {
      this.inflightCount--;
      if (this.answering.get(req.socket) === res) this.answering.delete(req.socket);
      // Connections that were answering when close() began are idle now: close them too.
      if (this.closing !== undefined && this.inflightCount === 0) this.server.closeIdleConnections();
    });
    const ex: Exchange = { req, res, bodyRead: false, closeAfter: false };
    this.route(ex).catch((err: unknown) => {
      if (err instanceof HttpError) return this.sendError(ex, err);
      this.logger.error({ err, method: req.method, url: req.url }, 'request failed');
      this.sendError(ex, new HttpError(HttpErrorCode.Internal, 'internal error'));
    });
  }

  /**
   * A request Node's parser refused (garbage, headers too large) or that did not arrive in time.
   * Answered with a JSON error unless a reply has already begun, then the connection is closed.
   */
  private onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    if (err.code === 'ECONNRESET' || !socket.writable || this.answering.get(socket)?.headersSent === true) {
      socket.destroy();
      return;
    }
    const e =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new HttpError(HttpErrorCode.RequestTimeout, 'the request did not arrive in time')
        : err.code === 'HPE_HEADER_OVERFLOW'
          ? new HttpError(HttpErrorCode.HeadersTooLarge, 'request headers too large')
          : new HttpError(HttpErrorCode.BadRequest, `malformed HTTP request (${err.code ?? err.message})`);
    const body = JSON.stringify({ error: e });
    const head = [
      `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? ''}`,
      `content-type: ${JSON_TYPE}`,
      `content-length: ${Buffer.byteLength(body)}`,
      'cache-control: no-store',
      'connection: close',
    ].join('\r\n');
    const timer = setTimeout(() => socket.destroy(), this.lingerMs);
    socket.once('close', () => clearTimeout(timer));
    socket.end(`${head}\r\n\r\n${body}`, () => socket.destroy());
  }

  private async route(ex: Exchange): Promise<void> {
    const { req } = ex;
    if (this.drainingFlag) throw new HttpError(HttpErrorCode.ShuttingDown, 'the server is shutting down');
    const method = req.method ?? '';
    const { path, query } = splitTarget(req.url ?? '');

    if (path === '/v1/kv' || path === KV_PREFIX) {
      if (path === KV_PREFIX && (method === 'PUT' || method === 'DELETE')) throw new HttpError(HttpErrorCode.EmptyKey, 'the key is empty');
      allow(method, path === KV_PREFIX ? KEY_METHODS : READ_METHODS);
      return this.scan(ex, parseQuery(query));
    }
    if (path.startsWith(KV_PREFIX)) {
      allow(method, KEY_METHODS);
      const key = this.decodeKey(path.slice(KV_PREFIX.length));
      if (key.length === 0) throw new HttpError(HttpErrorCode.EmptyKey, 'the key is empty');
      const q = parseQuery(query);
      if (method === 'PUT') return this.put(ex, key, q);
      if (method === 'DELETE') return this.delete(ex, key, q);
      return this.get(ex, key, q);
    }
    switch (path) {
      case '/v1/status': {
        allow(method, READ_METHODS);
        const status = await this.service.status();
        return this.sendJson(ex, 200, status);
      }
      case '/healthz': {
        allow(method, READ_METHODS);
        const h = this.service.health();
        return this.sendJson(ex, h.ok ? 200 : 503, { ok: h.ok, detail: h.detail });
      }
      case '/metrics': {
        allow(method, READ_METHODS);
        const m = await this.service.metrics();
        return this.send(ex, 200, { 'content-type': m.contentType }, Buffer.from(m.body, 'utf8'));
      }
      default:
        throw new HttpError(HttpErrorCode.NotFound, `no route for ${req.method ?? ''} ${path}`);
    }
  }

  private async put(ex: Exchange, key: Uint8Array, q: Query): Promise<void> {
    const tenant = tenantOf(ex.req, q);
    const expectedVersion = expectedVersionOf(ex.req, q);
    const value = await this.readBody(ex);
    const r = await this.service.put({ tenant, key, value, ...(expectedVersion === undefined ? {} : { expectedVersion }) });
    if (!r.ok) return this.sendError(ex, this.serviceError(r));
    if (!r.value.swapped) {
      const current = r.value.version;
      throw new HttpError(HttpErrorCode.VersionMismatch, `expected version ${expectedVersion ?? '(none)'}, the key is at version ${current}`, {
        version: current,
      });
    }
    this.sendJson(ex, 200, { version: r.value.version }, { 'x-version': String(r.value.version) });
  }

  private async delete(ex: Exchange, key: Uint8Array, q: Query): Promise<void> {
    const r = await this.service.delete({ tenant: tenantOf(ex.req, q), key });
    if (!r.ok) return this.sendError(ex, this.serviceError(r));
    this.sendJson(ex, 200, { deleted: r.value.deleted });
  }

  private async get(ex: Exchange, key: Uint8Array, q: Query): Promise<void> {
    const tenant = tenantOf(ex.req, q);
    const consistency = consistencyOf(q);
    const json = wantsJson(ex.req, q);
    const r = await this.service.get({ tenant, key, consistency });
    if (!r.ok) return this.sendError(ex, this.serviceError(r));
    const v = r.value;
    if (!v.found) throw new HttpError(HttpErrorCode.KeyNotFound, 'no such key');
    const meta = { 'x-version': String(v.version), 'x-create-index': String(v.createIndex), 'x-mod-index': String(v.modIndex) };
    if (json) {
      const body = { key: bytesToJson(key), value: bytesToJson(v.value), version: v.version, createIndex: v.createIndex, modIndex: v.modIndex };
      return this.sendJson(ex, 200, body, meta);
    }
    this.send(ex, 200, { ...meta, 'content-type': 'application/octet-stream' }, asBuffer(v.value));
  }

  private async scan(ex: Exchange, q: Query): Promise<void> {
    const tenant = tenantOf(ex.req, q);
    const consistency = consistencyOf(q);
    const limitText = q.get('limit');
    let limit = SCAN_LIMIT_DEFAULT;
    if (limitText !== undefined) {
      const s = limitText.toString('latin1');
      limit = /^[0-9]{1,6}$/.test(s) ? Number(s) : 0;
      if (limit < 1 || limit > SCAN_LIMIT_MAX) throw new HttpError(HttpErrorCode.InvalidLimit, `limit must be an integer in 1..${SCAN_LIMIT_MAX}, got '${s}'`);
    }
    const prefix = this.checkKeyLength(q.get('prefix') ?? new Uint8Array(0), 'prefix');
    const afterBytes = q.get('after');
    const startAfter = afterBytes === undefined || afterBytes.length === 0 ? undefined : this.checkKeyLength(afterBytes, 'after');
    const r = await this.service.scan({ tenant, prefix, limit, consistency, ...(startAfter === undefined ? {} : { startAfter }) });
    if (!r.ok) return this.sendError(ex, this.serviceError(r));
    const items = r.value.items.map((it) => ({ key: bytesToJson(it.key), value: bytesToJson(it.value), version: it.version }));
    const last = r.value.items.at(-1);
    const body: Record<string, unknown> = { items, more: r.value.more };
    if (r.value.more && last !== undefined) body.next = bytesToJson(last.key);
    this.sendJson(ex, 200, body);
  }

  /** Reads the whole body, up to maxBodyBytes, into one exactly sized array. */
  private async readBody(ex: Exchange): Promise<Uint8Array> {
    const { req, res } = ex;
    const tooLarge = (): HttpError => {
      ex.closeAfter = true;
      return new HttpError(HttpErrorCode.PayloadTooLarge, `the body is larger than ${this.maxBodyBytes} bytes`);
    };
    // Node's parser has checked that content-length is digits.
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > this.maxBodyBytes) throw tooLarge();
    if (req.headers.expect?.toLowerCase() === '100-continue') res.writeContinue();
    const chunks: Buffer[] = [];
    let size = 0;
    await new Promise<void>((resolve, reject) => {
      const done = (err?: HttpError): void => {
        req.off('data', onData);
        req.off('end', onEnd);
        req.off('close', onClose);
        req.off('error', onClose);
        if (err === undefined) resolve();
        else reject(err);
      };
      const onData = (chunk: Buffer): void => {
        size += chunk.length;
        if (size > this.maxBodyBytes) {
          // Stop here: nothing more is buffered; the linger after the reply drops the rest.
          req.pause();
          done(tooLarge());
        } else chunks.push(chunk);
      };
      const onEnd = (): void => done();
      // The client went away, or Node timed the request out (it has answered 408 already).
      const onClose = (): void => done(new HttpError(HttpErrorCode.BadRequest, 'the request body was cut short'));
      req.on('data', onData);
      req.on('end', onEnd);
      req.on('close', onClose);
      req.on('error', onClose);
    });
    ex.bodyRead = true;
    const body = new Uint8Array(size);
    let at = 0;
    for (const c of chunks) {
      body.set(c, at);
      at += c.length;
    }
    return body;
  }

  /** The key of a `/v1/kv/<key>` path (`+` is a plus sign there, not a space). */
  private decodeKey(text: string): Uint8Array {
    const bytes = percentDecode(text, false);
    if (bytes === undefined) throw new HttpError(HttpErrorCode.BadRequest, 'malformed percent-encoding in the key');
    return this.checkKeyLength(bytes, 'key');
  }

  private checkKeyLength(bytes: Uint8Array, what: string): Uint8Array {
    if (bytes.length > this.maxKeyBytes) {
      throw new HttpError(HttpErrorCode.KeyTooLarge, `the ${what} is ${bytes.length} bytes, more than ${this.maxKeyBytes}`);
    }
    return bytes;
  }

  /** A service failure as an HttpError; a code outside ServiceErrorCode is logged and becomes Internal. */
  private serviceError(r: Failure): HttpError {
    if (!isServiceErrorCode(r.code)) {
      this.logger.error({ code: r.code, message: r.message }, 'unknown service error code');
      return new HttpError(HttpErrorCode.Internal, `internal error (${r.code}: ${r.message})`);
    }
    return new HttpError(r.code, r.message);
  }

  private sendError(ex: Exchange, e: HttpError): void {
    this.sendJson(ex, e.status, { error: e }, e.headers);
  }

  private sendJson(ex: Exchange, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
    this.send(ex, status, { ...headers, 'content-type': JSON_TYPE }, Buffer.from(JSON.stringify(body), 'utf8'));
  }

  /** Writes the whole response, unless one was written already or the connection is gone. */
  private send(ex: Exchange, status: number, headers: Readonly<Record<string, string>>, body: Buffer): void {
    const { req, res } = ex;
    if (res.headersSent || res.writableEnded || res.destroyed || req.socket.destroyed || !req.socket.writable) return;
    // A body left unread (an early error) cannot be skipped safely: close after the reply.
    const unreadBody = !ex.bodyRead && !req.complete && hasBody(req);
    res.statusCode = status;
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    res.setHeader('cache-control', 'no-store');
    res.setHeader('content-length', body.length);
    if (this.drainingFlag || ex.closeAfter || unreadBody) {
      res.setHeader('connection', 'close');
      if (unreadBody || ex.closeAfter) this.lingerAfterReply(req);
    }
    res.end(body);
  }

  /**
   * Closing a socket with unread input makes the kernel send a reset, which can destroy the reply
   * before the client reads it. So instead of Node's destroy-after-reply, half-close and drop what
   * the client still sends until it closes or lingerMs passes. Nothing is buffered.
   */
  private lingerAfterReply(req: IncomingMessage): void {
    const socket = req.socket;
    const lingerMs = this.lingerMs;
    // Node calls destroySoon() after the last byte of a `connection: close` reply.
    socket.destroySoon = function lingeringDestroySoon(this: Socket): void {
      req.removeAllListeners('data');
      req.resume();
      this.resume();
      this.end();
      const timer = setTimeout(() => this.destroy(), lingerMs);
      this.once('close', () => clearTimeout(timer));
    };
  }
}

function allow(method: string, methods: string): void {
  if (!methods.split(', ').includes(method)) {
    throw new HttpError(HttpErrorCode.MethodNotAllowed, `method ${method} is not allowed here (allowed: ${methods})`, {}, { allow: methods });
  }
}

/** Path and query of a request target; the absolute form (`http://host/path`) is reduced to its path. */
function splitTarget(url: string): { path: string; query: string } {
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

/** Query parameters, names as text, values as percent-decoded bytes. */
type Query = ReadonlyMap<string, Buffer>;

/** Parameters this API reads; each may appear once. Others are ignored. */
const KNOWN_PARAMS = new Set(['tenant', 'consistency', 'format', 'version', 'prefix', 'limit', 'after']);

function parseQuery(query: string): Query {
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

function tenantOf(req: IncomingMessage, q: Query): string {
  const fromHeader = req.headers['x-tenant'];
  const header = Array.isArray(fromHeader) ? fromHeader.join(', ') : fromHeader;
  const fromQuery = textParam(q, 'tenant');
  if (header !== undefined && fromQuery !== undefined && header !== fromQuery) {
    throw new HttpError(HttpErrorCode.BadRequest, `tenant '${header}' (x-tenant) and '${fromQuery}' (query) differ`);
  }
  return header ?? fromQuery ?? 'default';
}

function consistencyOf(q: Query): Consistency {
  const c = textParam(q, 'consistency');
  if (c === undefined) return 'linearizable';
  if (isConsistency(c)) return c;
  throw new HttpError(HttpErrorCode.InvalidConsistency, `consistency must be linearizable, lease or stale, got '${c}'`);
}

function wantsJson(req: IncomingMessage, q: Query): boolean {
  const format = textParam(q, 'format');
  if (format === 'json') return true;
  if (format === 'raw') return false;
  if (format !== undefined) throw new HttpError(HttpErrorCode.BadRequest, `format must be json or raw, got '${format}'`);
  // JSON when the client lists application/json (with a q above 0); `*/*` keeps the raw value.
  for (const range of (req.headers.accept ?? '').split(',')) {
    const [type = '', ...params] = range.split(';').map((p) => p.trim().toLowerCase());
    if (type !== JSON_TYPE) continue;
    const q = params.find((p) => p.startsWith('q='));
    if (q === undefined || Number(q.slice(2)) > 0) return true;
  }
  return false;
}

const VERSION_RE = /^(0|[1-9][0-9]{0,15})$/;

/** The compare-and-set version from `?version=N` or `if-match: N` / `"N"`; both given must agree. */
function expectedVersionOf(req: IncomingMessage, q: Query): number | undefined {
  const parse = (text: string, where: string): number => {
    const n = VERSION_RE.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(n)) throw new HttpError(HttpErrorCode.BadRequest, `${where} must be a version number (0 = must not exist), got '${text}'`);
    return n;
  };
  const fromQuery = q.get('version');
  const a = fromQuery === undefined ? undefined : parse(fromQuery.toString('latin1'), 'version');
  const ifMatch = req.headers['if-match']?.trim();
  const b = ifMatch === undefined ? undefined : parse(ifMatch.replace(/^"(.*)"$/, '$1'), 'if-match');
  if (a !== undefined && b !== undefined && a !== b) throw new HttpError(HttpErrorCode.BadRequest, `version ${a} and if-match ${b} differ`);
  return a ?? b;
}

function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

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

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** A key or value for a JSON body: the string when the bytes are valid UTF-8, else `{ base64 }`. */
export function bytesToJson(bytes: Uint8Array): string | { base64: string } {
  const b = asBuffer(bytes);
  return isUtf8(b) ? b.toString('utf8') : { base64: b.toString('base64') };
}
