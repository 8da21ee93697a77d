/**
 * Seeds that once broke a check, kept as regression tests (the seed sweeps cover 1..300; these
 * come from longer soaks, some with parameters pushed towards the scenario). Each says what went
 * wrong in the core when it was found; all failed on the core of b3cffe9.
 */
import { describe, expect, test } from 'vitest';
import { formatFailure, runSeed } from '../../sim/run.js';
import type { RunOptions } from '../../sim/run.js';
import type { SimParams } from '../../sim/params.js';

interface Case {
  readonly seed: number;
  readonly found: string;
  readonly opts?: RunOptions;
}

/** No pre-vote, no check-quorum, frequent membership changes: replicas with stale membership. */
const staleMembers = (p: SimParams): SimParams => ({ ...p, preVote: false, checkQuorum: false, confChangePerSec: 5 });
/** Lease reads at a leader cut off by partitions, while followers are told to campaign. */
const forcedCampaigns = (p: SimParams): SimParams => ({
  ...p,
  campaignPerSec: 20,
  leaseReadP: 0.7,
  checkQuorum: true,
  partitionPerSec: 3,
  targetLeaderP: 0.9,
  crashPerSec: 0,
});

const cases: Case[] = [
  {
    seed: 944,
    found: 'liveness: a replica removed and later re-added keeps refusing the leader snapshot, taken before the re-add, whose membership does not name it',
  },
  {
    seed: 445,
    found:
      'liveness: a replica with stale membership runs ahead in term; the real candidate never learns that term, as vote requests of a lower term got no answer',
    opts: { tweak: staleMembers },
  },
  {
    seed: 872,
    found: 'liveness: a voter ahead in term ignores the leader, whose Apps of a lower term got no answer, so the leader never learns it is stale',
    opts: { tweak: staleMembers },
  },
  {
    seed: 221,
    found:
      'stale-read: campaign() on a follower cleared its leader, so it voted inside the lease it had promised; the old, partitioned leader then served a lease read below a newer commit',
    opts: { tweak: forcedCampaigns },
  },
  {
    seed: 47,
    found:
      "stale-read: a quiet follower took a late copy of its leader's own campaign message for news of a restart and dropped its lease promise; a node cut off from the quiet leader was elected with its vote, and the quiet leader served a lease read below the new leader's commit",
  },
];

describe('regression seeds', () => {
  for (const c of cases) {
    test(`seed ${c.seed}${c.opts ? ' (tweaked parameters)' : ''}: ${c.found}`, () => {
      const r = runSeed(c.seed, c.opts);
      if (!r.ok) console.error(formatFailure(r));
      expect(r.ok ? 'ok' : `${r.failure!.check}: ${r.failure!.message.split('\n')[0]}`).toBe('ok');
    });
  }
});
