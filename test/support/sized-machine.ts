/**
 * A plug-in state machine for tests, loaded by workers through `PoolOptions.stateMachine`: a
 * command or query is a u32 (little-endian) N, and its reply is N bytes (each `N & 0xff`), so a
 * test can ask for a reply of any size. Other requests are answered with zero bytes.
 */
import type { AppliedCommand, DataReader, DataTxn, StateMachine } from '../../src/shards/state-machine.js';

function sized(request: Uint8Array): Uint8Array {
  if (request.length !== 4) return new Uint8Array(0);
  const n = new DataView(request.buffer, request.byteOffset, 4).getUint32(0, true);
  return new Uint8Array(n).fill(n & 0xff);
}

/** The request asking for a reply of `n` bytes. */
export function sizedRequest(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

export function createStateMachine(): StateMachine {
  return {
    validateCommand: () => undefined,
    apply: (_txn: DataTxn, cmd: AppliedCommand) => sized(cmd.command),
    query: (_view: DataReader, request: Uint8Array) => sized(request),
  };
}
