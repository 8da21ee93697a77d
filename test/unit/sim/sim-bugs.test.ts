/**
 * The checks have teeth: for every bug the core can inject, some seed in 1..300 breaks a check,
 * and that seed does not break the same check without the bug.
 */
import { describe, expect, test } from 'vitest';
import { BUGS } from '../../../src/shards/raft/config.js';
import type { BugName } from '../../../src/shards/raft/config.js';
import { huntBug } from '../../sim/run.js';

describe('every injectable bug is caught within seeds 1..300', () => {
  for (const bug of Object.keys(BUGS) as BugName[]) {
    test(`${bug}: ${BUGS[bug]}`, () => {
      const hunt = huntBug(bug, 1, 300);
      const f = hunt.caughtBy?.failure;
      if (hunt.caughtBy !== undefined && f !== undefined) {
        console.log(`${bug}: caught by seed ${hunt.caughtBy.seed} (${hunt.seedsRun} seeds run), check "${f.check}": ${f.message.split('\n')[0]}`);
      }
      expect(hunt.caughtBy, `${bug} was not caught in ${hunt.seedsRun} seeds`).toBeDefined();
    });
  }
});
