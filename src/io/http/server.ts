/**
 * The client API's server: HTTP/1.1 on `node:http`, on the main thread. It owns the sockets and
 * the limits (body, headers, timeouts), reads bodies, writes replies, and drains and closes. What
 * a request means is parsed in request.ts and answered in routes.ts, through a
 * {@link KvService} (the router, in a node); it knows nothing of shards or workers.
 *
 * Tenant: with auth off, header `x-tenant` or query `tenant`, default `default`; both given and
 * different is a BadRequest. With auth (the `auth` option) the bearer token decides (auth.ts). `consistency` (GET and scan): linearizable (default), lease or stale. HEAD is
 * answered like GET. Every error is `{"error":{"code","message"}}`, with the status from
 * `statusByCode`.
 */
import { Buffer } from 'node:buffer';
import { STATUS_CODES, createServer } from 'node:http';
import type { IncomingMessage, Server, ServerOptions, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ByteGate } from '../../api/index.js';
import type { KvService, RoleService, MemberService } from '../../api/index.js';
import { Authenticator } from './auth.js';
import type { AuthCounts, HttpAuthOptions } from './auth.js';
import { HttpError, HttpErrorCode } from './errors.js';
import { hostAllowed, hostRule } from './hosts.js';
import type { HostRule } from './hosts.js';
import { stderrLogger } from './log.js';
import type { HttpLogger } from './log.js';
import { LoadWindow } from './load-window.js';
import type { LoadReading } from './load-window.js';
import { JSON_TYPE, declaredBodyBytes, hasBody, parseRequest, payloadTooLarge } from './request.js';
import { answer, errorReply } from './routes.js';
import type { Reply } from './routes.js';
import { pooledBytes } from '../../wire/index.js';

export interface HttpServerOptions {
  /** Address to listen on, e.g. 127.0.0.1 or ::. */
  readonly host: string;
  /** TCP port; 0 picks a free one (read it from `url` or `address`). */
  readonly port: number;
  readonly service: KvService;
  /** Longest request body, in bytes; longer ones get 413 PayloadTooLarge. Default 1 MiB + 1 KiB. */
  readonly maxBodyBytes?: number;
  /**
   * Bytes of request bodies read and held at once, across all connections (a body counts from
   * the moment it may be read until its reply is written). A request whose body does not fit
   * waits, with nothing read from its connection, first come first served, and is answered 503
   * `Overloaded` (its body unread) when `bodyWaitMs` passes first. One body is always let in when
   * none is held. Default 8 MiB.
   */
  readonly bodiesBytesMax?: number;
  /**
   * Open connections at most. One more is answered 503 `Overloaded` (with `retry-after`) and
   * closed at once, before any request is read from it, so idle or slow clients cannot hold every
   * socket and file descriptor. Default 4,096.
   */
  readonly connectionsMax?: number;
  /** How long a request waits for room under bodiesBytesMax, in ms. Default 5,000. */
  readonly bodyWaitMs?: number;
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
  /**
   * HTTPS instead of HTTP: the PEM certificate chain and private key. With `ca`, clients must
   * present a certificate signed by it (mutual TLS); a handshake without one fails, before any
   * request is read. Default: plain HTTP.
   */
  readonly tls?: HttpTlsOptions;
  /**
   * The host names this server answers (the `Host` header without its port, compared without
   * case; `*.example.com` matches its subdomains; `*` matches any). A request naming another host
   * is answered 421 `HostNotAllowed`. Default: on a loopback address `localhost`, `127.0.0.1` and
   * `::1`; elsewhere any host.
   */
  readonly allowedHosts?: readonly string[];
  /**
   * Bearer-token auth (see auth.ts): tenants from their tokens, the tenant admin API, per-tenant
   * rate limits. Default: off (the tenant is `x-tenant` or `?tenant=`, as named).
   */
  readonly auth?: HttpAuthOptions;
  /**
   * The role bindings of the management ALPN, served at `/v1/roles` (role-routes.ts; admin token
   * when auth is on). Default: none (404).
   */
  readonly roles?: RoleService;
  /** The cluster's members, served at `/v1/members` (member-routes.ts; admin token with auth on). Default: none (404). */
  readonly members?: MemberService;
  /** Default: JSON lines on stderr. */
  readonly logger?: HttpLogger;
  /**
   * Told of each request whose reply was written whole: its route (`ApiRequest['route']`, or
   * `unrouted` when it was answered before a route was known: 404, 405, a bad target, shutting
   * down), its HTTP status, and the seconds from its arrival to the end of its reply. For the
   * latency histogram; it must be cheap. Default: nothing.
   */
  readonly onAnswered?: (route: string, status: number, seconds: number) => void;
}

/** PEM texts for HTTPS (see {@link HttpServerOptions.tls}). */
export interface HttpTlsOptions {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  /** CA certificates that sign client certificates; given, every client must present one. */
  readonly ca?: string | Buffer;
}

/** Option defaults (see {@link HttpServerOptions}). */
const DEFAULTS = {
  maxBodyBytes: 1024 * 1024 + 1024,
  bodiesBytesMax: 8 << 20,
  connectionsMax: 4096,
  bodyWaitMs: 5_000,
  maxKeyBytes: 1024,
  requestTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  closeTimeoutMs: 5_000,
  lingerMs: 1_000,
} as const;
/** The routes whose requests count as client load (status, health, metrics and the page do not). */
const KV_ROUTES: ReadonlySet<string> = new Set(['put', 'get', 'delete', 'scan']);
/** Node checks request and header deadlines on this period; a finer one for short timeouts. */
const CONNECTIONS_CHECK_INTERVAL_MAX_MS = 1_000;

/** Per request: what happened to its body, which decides whether the connection can be kept. */
interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The body was read to its end. */
  bodyRead: boolean;
  /** Close the connection after the reply, whatever the body's state (413). */
  closeAfter: boolean;
  /** The parsed request's route; `unrouted` until parsing succeeds. */
  route: string;
  /** A client API request (a `/v1/kv` route): its duration counts in the load window. */
  kv: boolean;
  /**
   * Set when Node's parser refused the body after the head was whole and the request was being
   * served: a body read fails with it (the route then answers BadRequest); a route that reads no
   * body answers what it did. Never cleared.
   */
  bodyError?: HttpError;
  /** Fails the body read under way, if any (set by readBody while it waits for data). */
  failBodyRead?: ((e: HttpError) => void) | undefined;
  /** The response closed (answered, or the connection went away); set by onRequest's close listener. */
  closed: boolean;
}

/** The running HTTP API. Start it with {@link HttpServer.start}; end it with close() or destroy(). */
export class HttpServer {
  /** `http://host:port` (`https://` with TLS), with the real port when 0 was asked for. */
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
  /** The exchange a connection is answering now, so a client error does not write over its reply. */
  private readonly answering = new WeakMap<Duplex, Exchange>();
  /** Connections to close after the reply in progress: what followed its request did not parse. */
  private readonly closeAfterReply = new WeakSet<Duplex>();
  private readonly service: KvService;
  private readonly logger: HttpLogger;
  private readonly maxBodyBytes: number;
  /** Room for request bodies (bodiesBytesMax); readBody() waits here before it reads a byte. */
  private readonly bodies: ByteGate;
  private readonly bodyWaitMs: number;
  private readonly connectionsMax: number;
  private readonly maxKeyBytes: number;
  private readonly closeTimeoutMs: number;
  private readonly lingerMs: number;
  /** Hosts answered (null: any). */
  private readonly hosts: HostRule | null;
  private readonly tls: boolean;
  private readonly onAnswered: NonNullable<HttpServerOptions['onAnswered']>;
  /** Auth on: tokens, tenants and rates; undefined when off. */
  private readonly auth: Authenticator | undefined;
  /** The role bindings served at /v1/roles; undefined: none. */
  private readonly roles: RoleService | undefined;
  /** Client API requests of the last seconds, for {@link clientLoad}. */
  private readonly loadWindow = new LoadWindow({ now: performance.now() });

  private constructor(
    private readonly server: Server,
    opts: Required<Omit<HttpServerOptions, 'host' | 'port' | 'tls' | 'allowedHosts' | 'auth' | 'roles' | 'members'>> & {
      readonly hosts: HostRule | null;
      readonly tls: boolean;
    },
    address: AddressInfo,
    auth: HttpAuthOptions | undefined,
    roles: RoleService | undefined,
    private readonly members: MemberService | undefined,
  ) {
    this.roles = roles;
    this.auth = auth === undefined ? undefined : new Authenticator(auth, opts.logger);
    this.service = opts.service;
    this.logger = opts.logger;
    this.maxBodyBytes = opts.maxBodyBytes;
    this.bodies = new ByteGate(opts.bodiesBytesMax);
    this.bodyWaitMs = opts.bodyWaitMs;
    this.connectionsMax = opts.connectionsMax;
    this.maxKeyBytes = opts.maxKeyBytes;
    this.closeTimeoutMs = opts.closeTimeoutMs;
    this.lingerMs = opts.lingerMs;
    this.hosts = opts.hosts;
    this.tls = opts.tls;
    this.onAnswered = opts.onAnswered;
    this.address = address;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.url = `${opts.tls ? 'https' : 'http'}://${host}:${address.port}`;
  }

  /**
   * Listens and serves. Rejects with the listen error (e.g. EADDRINUSE), or HttpError
   * `InvalidConfig` for an option out of range.
   */
  static async start(options: HttpServerOptions): Promise<HttpServer> {
    const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs;
    const opts = {
      service: options.service,
      onAnswered: options.onAnswered ?? ((): void => {}),
      logger: options.logger ?? stderrLogger,
      maxBodyBytes: options.maxBodyBytes ?? DEFAULTS.maxBodyBytes,
      bodiesBytesMax: options.bodiesBytesMax ?? DEFAULTS.bodiesBytesMax,
      connectionsMax: options.connectionsMax ?? DEFAULTS.connectionsMax,
      bodyWaitMs: options.bodyWaitMs ?? DEFAULTS.bodyWaitMs,
      maxKeyBytes: options.maxKeyBytes ?? DEFAULTS.maxKeyBytes,
      requestTimeoutMs,
      headersTimeoutMs: options.headersTimeoutMs ?? Math.min(DEFAULTS.headersTimeoutMs, requestTimeoutMs),
      keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? DEFAULTS.keepAliveTimeoutMs,
      closeTimeoutMs: options.closeTimeoutMs ?? DEFAULTS.closeTimeoutMs,
      lingerMs: options.lingerMs ?? DEFAULTS.lingerMs,
      hosts: allowedHostsRule(options),
      tls: options.tls !== undefined,
    };
    checkLimits(opts);

    const server = createHttpOrHttps(
      {
        requestTimeout: requestTimeoutMs,
        headersTimeout: opts.headersTimeoutMs,
        keepAliveTimeout: opts.keepAliveTimeoutMs,
        connectionsCheckingInterval: Math.max(10, Math.min(CONNECTIONS_CHECK_INTERVAL_MAX_MS, Math.floor(opts.headersTimeoutMs / 4))),
        noDelay: true,
        keepAlive: true,
        keepAliveInitialDelay: 30_000,
      },
      options.tls,
    );
    // A client may half-close its connection once it has sent its request (`nc -N`, some HTTP/1.0
    // tools). By default Node then drops the request in flight without an answer, though its route
    // runs on (a DELETE applied, a PUT written, the client told nothing). With this Node keeps the
    // socket writable, answers, and closes after that answer. (Node's own flag, read by its
    // server at the client's end; over TLS the socket ends with the client's anyway.)
    (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: options.host, port: options.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // No I/O runs between the listen callback and here, so no connection can arrive unobserved.
    const http = new HttpServer(server, opts, server.address() as AddressInfo, options.auth, options.roles, options.members);
    server.on('error', (err) => opts.logger.error({ err }, 'http server error'));
    server.on('connection', (socket: Socket) => {
      if (http.sockets.size >= opts.connectionsMax) {
        http.refuseConnection(socket);
        return;
      }
      http.sockets.add(socket);
      socket.once('close', () => http.sockets.delete(socket));
    });
    server.on('request', (req, res) => http.onRequest(req, res));
    // With this listener Node does not send `100 Continue` itself: readBody() does, only for a
    // request it is going to read, so a refused upload is never sent.
    server.on('checkContinue', (req, res) => http.onRequest(req, res));
    // Without this listener Node answers another expectation 417 with an empty body of its own.
    server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => http.refuseExpectation(req, res));
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => http.onClientError(err, socket));
    // A failed handshake (no client certificate, plain HTTP to the HTTPS port): Node closes the
    // socket; it is only counted here.
    server.on('tlsClientError', () => http.tlsHandshakeFailures++);
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
    const arrivedMs = performance.now();
    this.inflightCount++;
    const ex: Exchange = { req, res, bodyRead: false, closeAfter: false, route: 'unrouted', kv: false, closed: false };
    this.answering.set(req.socket, ex);
    res.once('close', () => {
      ex.closed = true;
      if (res.writableFinished) this.onAnswered(ex.route, res.statusCode, (performance.now() - arrivedMs) / 1000);
      this.inflightCount--;
      if (ex.kv) {
        const now = performance.now();
        this.loadWindow.record(now - arrivedMs, now);
      }
      if (this.answering.get(req.socket) === ex) this.answering.delete(req.socket);
      // Connections that were answering when close() began are idle now: close them too.
      if (this.closing !== undefined && this.inflightCount === 0) this.server.closeIdleConnections();
    });
    this.serve(ex).catch((err: unknown) => {
      if (err instanceof HttpError) return this.send(ex, errorReply(err));
      this.logger.error({ err, method: req.method, url: req.url }, 'request failed');
      this.send(ex, errorReply(new HttpError(HttpErrorCode.Internal, 'internal error')));
    });
  }

  /** A request whose `expect` is not `100-continue`: 417 ExpectationFailed, its body unread, the connection closed. */
  private refuseExpectation(req: IncomingMessage, res: ServerResponse): void {
    const ex: Exchange = { req, res, bodyRead: false, closeAfter: true, route: 'unrouted', kv: false, closed: false };
    // As onRequest does: a parse error in the unread body must not be answered a second time.
    this.answering.set(req.socket, ex);
    this.send(
      ex,
      errorReply(new HttpError(HttpErrorCode.ExpectationFailed, `expect: ${JSON.stringify(req.headers.expect ?? '')} is not served (only 100-continue)`)),
    );
  }

  /** Connections refused at connectionsMax so far. */
  connectionsRefused = 0;
  /** TLS handshakes that failed so far (HTTPS only). */
  tlsHandshakeFailures = 0;
  /** Requests answered 421 HostNotAllowed so far. */
  hostsRefused = 0;

  /**
   * A connection beyond connectionsMax: 503 Overloaded, closed without reading a request. Over
   * TLS it is closed without an answer: an answer would need a handshake, the work the limit saves.
   */
  private refuseConnection(socket: Socket): void {
    this.connectionsRefused++;
    if (this.tls) socket.destroy();
    else this.writeRawError(socket, new HttpError(HttpErrorCode.Overloaded, `too many connections (connectionsMax ${this.connectionsMax})`));
  }

  /**
   * A request Node's parser refused (garbage, headers too large) or that did not arrive in time.
   * Answered with a JSON error unless a reply has already begun, then the connection is closed.
   */
  private onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const current = this.answering.get(socket);
    if (err.code === 'ECONNRESET' || !socket.writable || current?.res.headersSent === true) {
      socket.destroy();
      return;
    }
    // Bytes after a request that arrived whole (data after `connection: close`, pipelined
    // garbage) are not that request's fault: it is still answered, and the connection closes
    // after its reply. Answering the garbage instead would tell the client a write that may be
    // applied was refused.
    if (current !== undefined && current.req.complete) {
      this.closeAfterReply.add(socket);
      return;
    }
    // A broken body under a request being served (its head was whole): its route may have acted
    // already (a DELETE reads no body), so a 400 here could tell the client that nothing happened
    // when something did. The request answers for itself: a body read fails with BadRequest, a
    // route that reads no body answers what it did; the connection closes after that reply.
    // Only the parser's own errors: a timeout is answered 408 as before, and a body cut short by
    // the client's end (HPE_INVALID_EOF_STATE) closes the connection, which fails the read.
    if (current !== undefined && err.code?.startsWith('HPE_') === true && err.code !== 'HPE_INVALID_EOF_STATE') {
      current.closeAfter = true;
      current.bodyError = new HttpError(HttpErrorCode.BadRequest, `malformed request body (${err.code ?? err.message})`);
      current.failBodyRead?.(current.bodyError);
      return;
    }
    const e =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new HttpError(HttpErrorCode.RequestTimeout, 'the request did not arrive in time')
        : err.code === 'HPE_HEADER_OVERFLOW'
          ? new HttpError(HttpErrorCode.HeadersTooLarge, 'request headers too large')
          : new HttpError(HttpErrorCode.BadRequest, `malformed HTTP request (${err.code ?? err.message})`);
    this.writeRawError(socket, e);
  }

  /** Writes `e` as a whole response straight to the socket, then closes it (no request object exists). */
  private writeRawError(socket: Duplex, e: HttpError): void {
    const body = JSON.stringify({ error: e });
    const head = [
      `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? ''}`,
      `content-type: ${JSON_TYPE}`,
      `content-length: ${Buffer.byteLength(body)}`,
      'cache-control: no-store',
      ...Object.entries(e.headers).map(([k, v]) => `${k}: ${v}`),
      'connection: close',
    ].join('\r\n');
    const timer = setTimeout(() => socket.destroy(), this.lingerMs);
    socket.once('close', () => clearTimeout(timer));
    socket.end(`${head}\r\n\r\n${body}`, () => socket.destroy());
  }

  /** Parses, answers through the service, and writes the reply; an HttpError thrown on the way is answered by onRequest. */
  private async serve(ex: Exchange): Promise<void> {
    const { req } = ex;
    if (this.drainingFlag) throw new HttpError(HttpErrorCode.ShuttingDown, 'the server is shutting down');
    if (!hostAllowed(this.hosts, req.headers.host)) {
      this.hostsRefused++;
      throw new HttpError(
        HttpErrorCode.HostNotAllowed,
        `this node does not answer for host ${JSON.stringify(req.headers.host ?? '')} (see --http-allowed-hosts)`,
      );
    }
    const head = { method: req.method ?? '', url: req.url ?? '', headers: req.headers };
    const limits = { maxKeyBytes: this.maxKeyBytes };
    const request = this.auth === undefined ? parseRequest(head, limits) : await this.auth.admit(head, limits);
    ex.route = request.route;
    ex.kv = KV_ROUTES.has(request.route);
    const tenants = this.auth?.tenants;
    const roles = this.roles;
    const reply = await answer(request, {
      service: this.service,
      logger: this.logger,
      readBody: () => this.readBody(ex),
      ...(tenants ? { tenants } : {}),
      ...(roles ? { roles } : {}),
      ...(this.members ? { members: this.members } : {}),
    });
    this.send(ex, reply);
  }

  /** Reads the whole body, up to maxBodyBytes, into one exactly sized array. */
  private async readBody(ex: Exchange): Promise<Uint8Array> {
    const { req, res } = ex;
    const tooLarge = (): HttpError => {
      ex.closeAfter = true;
      return payloadTooLarge(this.maxBodyBytes);
    };
    if (ex.bodyError !== undefined) throw ex.bodyError;
    const declared = declaredBodyBytes(req.headers);
    if ((declared ?? 0) > this.maxBodyBytes) throw tooLarge();
    await this.roomForBody(ex, declared ?? this.maxBodyBytes);
    if (req.headers.expect?.toLowerCase() === '100-continue') res.writeContinue();
    const chunks: Buffer[] = [];
    let size = 0;
    await new Promise<void>((resolve, reject) => {
      const done = (err?: HttpError): void => {
        ex.failBodyRead = undefined;
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
      // Broken while waiting for room (roomForBody): fail now, no data will come.
      if (ex.bodyError !== undefined) return done(ex.bodyError);
      ex.failBodyRead = done;
      req.on('data', onData);
      req.on('end', onEnd);
      req.on('close', onClose);
      req.on('error', onClose);
    });
    ex.bodyRead = true;
    const body = pooledBytes(size);
    let at = 0;
    for (const c of chunks) {
      body.set(c, at);
      at += c.length;
    }
    return body;
  }

  /**
   * Waits until `bytes` of body fit under bodiesBytesMax, holding them until the reply is done (or
   * the connection is gone). Throws HttpError Overloaded when bodyWaitMs passes first.
   */
  private async roomForBody(ex: Exchange, bytes: number): Promise<void> {
    const { res } = ex;
    // Gone before its body was asked for (e.g. while auth looked up its token): its 'close' has
    // fired already, so room taken now would never be given back.
    if (ex.closed) throw new HttpError(HttpErrorCode.BadRequest, 'the connection closed before the request body was read');
    // Room at once (the usual case): hold it until the reply is done, with no AbortController
    // (making one and aborting it on every close costs a DOMException per request).
    if (this.bodies.tryAcquire(bytes)) {
      res.once('close', () => this.bodies.release(bytes));
      return;
    }
    const gone = new AbortController();
    let held = 0;
    const onClose = (): void => {
      gone.abort();
      if (held > 0) this.bodies.release(held);
      held = 0;
    };
    res.once('close', onClose);
    if (!(await this.bodies.acquire(bytes, this.bodyWaitMs, gone.signal))) {
      res.off('close', onClose);
      throw new HttpError(
        HttpErrorCode.Overloaded,
        `waited ${this.bodyWaitMs} ms for room to read the body: ${this.bodies.held} bytes of request bodies held (bodiesBytesMax ${this.bodies.capacityBytes})`,
      );
    }
    // Closed between admission and here: give the room back at once.
    if (gone.signal.aborted) this.bodies.release(bytes);
    else held = bytes;
  }

  /**
   * Client API requests (`/v1/kv` routes, answered or failed after parsing) per second over the
   * last 5 s, and their 99th-percentile duration in ms (from arrival to the reply's end).
   */
  clientLoad(): LoadReading {
    return this.loadWindow.read(performance.now());
  }

  /** Requests refused by auth so far (zeros with auth off), and the rate buckets held now. */
  get authRefused(): Readonly<AuthCounts> & { readonly rateBuckets: number } {
    return this.auth === undefined
      ? { unauthorized: 0, forbidden: 0, rateLimited: 0, rateBuckets: 0 }
      : { ...this.auth.counts, rateBuckets: this.auth.rateBuckets };
  }

  /** Bytes of request bodies held now, and requests waiting for room (bodiesBytesMax). */
  get bodyRoom(): { readonly heldBytes: number; readonly waiting: number } {
    return { heldBytes: this.bodies.held, waiting: this.bodies.waiting };
  }

  /** Writes the whole response, unless one was written already or the connection is gone. */
  private send(ex: Exchange, reply: Reply): void {
    const { req, res } = ex;
    if (res.headersSent || res.writableEnded || res.destroyed || req.socket.destroyed || !req.socket.writable) return;
    // A body left unread (an early error) cannot be skipped safely: close after the reply.
    const unreadBody = !ex.bodyRead && !req.complete && hasBody(req.headers);
    res.statusCode = reply.status;
    for (const [name, value] of Object.entries(reply.headers)) res.setHeader(name, value);
    res.setHeader('cache-control', 'no-store');
    res.setHeader('content-length', reply.body.length);
    if (this.drainingFlag || ex.closeAfter || unreadBody || this.closeAfterReply.has(req.socket)) {
      res.setHeader('connection', 'close');
      if (unreadBody || ex.closeAfter) this.lingerAfterReply(req);
    }
    res.end(reply.body);
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

/** The allow-list of `options` (see {@link HttpServerOptions.allowedHosts}); HttpError InvalidConfig for a bad entry. */
function allowedHostsRule(options: HttpServerOptions): HostRule | null {
  try {
    return hostRule(options.allowedHosts, options.host);
  } catch (e) {
    throw new HttpError(HttpErrorCode.InvalidConfig, (e as Error).message);
  }
}

/** An HTTP server, or an HTTPS one with `tls`; HttpError InvalidConfig when the PEM texts do not load. */
function createHttpOrHttps(opts: ServerOptions, tls: HttpTlsOptions | undefined): Server {
  if (tls === undefined) return createServer(opts);
  try {
    // An https.Server is an http.Server over TLS sockets: every listener below works on both.
    return createHttpsServer({
      ...opts,
      cert: tls.cert,
      key: tls.key,
      ...(tls.ca === undefined ? {} : { ca: tls.ca, requestCert: true, rejectUnauthorized: true }),
    });
  } catch (e) {
    throw new HttpError(HttpErrorCode.InvalidConfig, `TLS certificate or key does not load: ${(e as Error).message}`);
  }
}

/** HttpError InvalidConfig for a limit that is not a positive integer, or headers allowed longer than the request. */
function checkLimits(opts: Readonly<Record<(typeof LIMIT_NAMES)[number], number>>): void {
  for (const name of LIMIT_NAMES) {
    const v = opts[name];
    if (!Number.isSafeInteger(v) || v < 1) throw new HttpError(HttpErrorCode.InvalidConfig, `${name} must be a positive integer, got ${v}`);
  }
  if (opts.headersTimeoutMs > opts.requestTimeoutMs) {
    throw new HttpError(HttpErrorCode.InvalidConfig, `headersTimeoutMs (${opts.headersTimeoutMs}) must not exceed requestTimeoutMs (${opts.requestTimeoutMs})`);
  }
}

const LIMIT_NAMES = [
  'maxBodyBytes',
  'bodiesBytesMax',
  'connectionsMax',
  'bodyWaitMs',
  'maxKeyBytes',
  'requestTimeoutMs',
  'headersTimeoutMs',
  'keepAliveTimeoutMs',
  'closeTimeoutMs',
  'lingerMs',
] as const;
