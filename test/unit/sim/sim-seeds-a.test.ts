/**
 * The simulator's seeds 1..150 (the other half runs in sim-seeds-b, so the forks pool puts the
 * two halves on two cores): under crashes, partitions, loss, duplication, slow disks, membership
 * changes, transfers and compaction, every safety check holds, the client history is
 * linearizable, and every group recovers once the faults stop.
 */
import { describe, expect, test } from 'vitest';
import { chunks, sweep } from '../../sim/sweep.js';

describe('simulator seeds 1..150: safety, linearizability and liveness hold', () => {
  for (const [a, b] of chunks(1, 150, 25)) {
    test(`seeds ${a}..${b}`, () => {
      const { failures, firstReport } = sweep(a, b);
      if (firstReport !== '') console.error(firstReport);
      expect(failures).toEqual([]);
    });
  }
});
