/**
 * The old path of the raft transport, kept so that imports of `io/transport.js` and the layering
 * tests that lint code as this file still find it. The transport lives in ./transport/ and shows
 * its public face in ./transport/index.ts; import from there.
 */

export * from './transport/index.js';
