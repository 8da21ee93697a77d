import type { NodeId } from './types.js';

/** Votes needed to win among `n` voters. */
export const majority = (n: number): number => Math.floor(n / 2) + 1;

/**
 * The largest value that a majority of `voters` has reached, by `valueOf`: for match indexes this is
 * the highest index replicated on a quorum. 0 for an empty set.
 */
export function quorumValue(voters: Iterable<NodeId>, valueOf: (id: NodeId) => number): number {
  const values: number[] = [];
  for (const v of voters) values.push(valueOf(v));
  if (values.length === 0) return 0;
  values.sort((a, b) => b - a);
  return values[majority(values.length) - 1]!;
}

export type VoteResult = 'won' | 'lost' | 'pending';

/** Outcome of an election among `voters` given the responses so far (true = granted). */
export function voteResult(voters: ReadonlySet<NodeId>, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  let granted = 0;
  let rejected = 0;
  for (const v of voters) {
    const r = votes.get(v);
    if (r === true) granted++;
    else if (r === false) rejected++;
  }
  const q = majority(voters.size);
  if (granted >= q) return 'won';
  if (rejected > voters.size - q) return 'lost';
  return 'pending';
}
