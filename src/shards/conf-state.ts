import { ConfChangeType, decodeConfChange } from './raft/index.js';
import type { ConfState, Entry } from './raft/index.js';

/** The membership after applying conf change entry `e` to `cs` (one change at a time). */
export function nextConfState(cs: ConfState, e: Entry): ConfState {
  const cc = decodeConfChange(e.data);
  const voters = cs.voters.filter((v) => v !== cc.node);
  const learners = cs.learners.filter((v) => v !== cc.node);
  if (cc.type === ConfChangeType.AddVoter) voters.push(cc.node);
  else if (cc.type === ConfChangeType.AddLearner) learners.push(cc.node);
  return { voters, learners };
}
