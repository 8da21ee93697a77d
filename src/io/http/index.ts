/** The client API over HTTP/1.1: the server, the service it calls, and its error codes. */
export { HttpServer, bytesToJson, percentDecode } from './server.js';
export type { Consistency, HttpLogger, HttpServerOptions, KvService, Result } from './server.js';
export { HttpError, HttpErrorCode, statusByCode } from './errors.js';
export type { StatusRule } from './errors.js';
