/** The client API over HTTP/1.1: the server, the service it calls, and its error codes. */
export { HttpServer, bytesToJson, percentDecode } from './server.js';
export type { HttpLogger, HttpServerOptions } from './server.js';
export { HttpError, HttpErrorCode, statusByCode, statusRuleOf } from './errors.js';
export type { StatusRule } from './errors.js';
