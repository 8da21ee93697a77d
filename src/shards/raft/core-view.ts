import type { ResolvedConfig } from './config.js';
import type { RaftLog } from './log.js';
import type { Progress } from './progress.js';
import type { NodeId, Role, Term } from './types.js';

/**
 * The raft core's public state as its collaborators (the read path, quiescence) see it, read
 * live. Each extends it with the few more parts it needs.
 */
export interface CoreView {
  readonly id: NodeId;
  readonly cfg: ResolvedConfig;
  readonly log: RaftLog;
  readonly role: Role;
  readonly term: Term;
  readonly lead: NodeId;
  readonly leadTransferee: NodeId;
  readonly prs: ReadonlyMap<NodeId, Progress>;
}
