import { CodedError } from '../errors.js';

/**
 * `InvalidTicket`: a bad --peers ticket. `DuplicateMember`: --peers names this node or a member
 * twice. In a file of its own so the CLI can tell it apart without loading the engine.
 */
export class NodeError extends CodedError<'InvalidTicket' | 'DuplicateMember'> {
  override readonly name = 'NodeError';
}
