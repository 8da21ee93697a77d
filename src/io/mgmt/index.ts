/**
 * Management over Iroh (ALPN `iroh-raft-mgmt/0`): the wire (frame.ts), the operations and the
 * roles allowed to call them (ops.ts), the node's server (server.ts) and a client (client.ts).
 */
export { MGMT_ALPN, MGMT_ALPN_BYTES, encodeFrame } from './frame.js';
export type { MgmtReply, MgmtRequest } from './frame.js';
export { OPS, isMgmtOp } from './ops.js';
export type { Caller, MgmtOp, MgmtServices } from './ops.js';
export { MGMT_LIMITS_DEFAULT, MgmtServer } from './server.js';
export type { MgmtCounters, MgmtLimits, MgmtServerOptions } from './server.js';
export { MgmtClient, MgmtClientError } from './client.js';
export type { MgmtClientErrorCode, MgmtConnectOptions } from './client.js';
