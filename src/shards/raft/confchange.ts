import { RaftError, RaftErrorCode } from './errors.js';
import type { ConfChange, NodeId } from './types.js';
import { ConfChangeType as CCT } from './types.js';

/** Layout of a ConfChange entry's data: type (u8) then node id (u32, big-endian). */
const CONF_CHANGE_BYTES = 5;

export function encodeConfChange(cc: ConfChange): Uint8Array {
  const out = new Uint8Array(CONF_CHANGE_BYTES);
  const view = new DataView(out.buffer);
  view.setUint8(0, cc.type);
  view.setUint32(1, cc.node);
  return out;
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  if (data.length !== CONF_CHANGE_BYTES) {
    throw new RaftError(RaftErrorCode.InvalidConfChange, `conf change must be ${CONF_CHANGE_BYTES} bytes, got ${data.length}`);
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const type = view.getUint8(0);
  if (type !== CCT.AddVoter && type !== CCT.AddLearner && type !== CCT.RemoveNode) {
    throw new RaftError(RaftErrorCode.InvalidConfChange, `unknown conf change type ${type}`);
  }
  const node = view.getUint32(1);
  if (node === 0) throw new RaftError(RaftErrorCode.InvalidConfChange, 'conf change names node 0');
  return { type: type, node: node as NodeId };
}
