/**
 * How a read is served: `linearizable` (default) after a ReadIndex round through the shard's
 * leader; `lease` on the leader's lease, without a round (refused with
 * LeaseReadRequiresCheckQuorum when check-quorum is off); `stale` from the local replica's
 * applied state, possibly behind.
 *
 * The shard host keeps a type of its own equal to this one (src/shards may not import api); a
 * type test holds the two equal.
 */
export type Consistency = 'linearizable' | 'lease' | 'stale';

/** Every consistency, the default first. */
export const CONSISTENCIES: readonly Consistency[] = ['linearizable', 'lease', 'stale'];

export function isConsistency(text: string): text is Consistency {
  return (CONSISTENCIES as readonly string[]).includes(text);
}
