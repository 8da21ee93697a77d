import { CodedError } from '../errors.js';

/**
 * `InvalidTicket`: a bad --peers or --join ticket. `DuplicateMember`: --peers names this node or a
 * member twice. `JoinFailed`: the --join member did not admit this node (its reason is in the
 * message). `Removed`: this node was removed from its cluster; it does not start again. In a file
 * of its own so the CLI can tell it apart without loading the engine.
 */
export class NodeError extends CodedError<'InvalidTicket' | 'DuplicateMember' | 'JoinFailed' | 'Removed'> {
  override readonly name = 'NodeError';
}
