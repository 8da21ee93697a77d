/**
 * The client API over HTTP/1.1: the server (server.ts), request parsing (request.ts), the routes
 * over the KvService of src/api (routes.ts), and the status of each error code (errors.ts).
 */
export { HttpServer } from './server.js';
export type { HttpServerOptions, HttpTlsOptions } from './server.js';
export { LOOPBACK_HOSTS, hostAllowed, hostOf, hostRule, isLoopback } from './hosts.js';
export type { HostRule } from './hosts.js';
export type { HttpLogger } from './log.js';
export { parseRequest, percentDecode } from './request.js';
export type { ApiRequest, ParseLimits, RequestHead } from './request.js';
export { answer, bytesToJson, serviceError } from './routes.js';
export type { Reply, RouteContext } from './routes.js';
export { HttpError, HttpErrorCode, statusByCode, statusRuleOf } from './errors.js';
export type { StatusRule } from './errors.js';
