import { describe, expect, test } from 'vitest';
import { MemoryStorage } from '../../../../src/shards/raft/storage.js';
import { ConfChangeType, MessageType, nodeId } from '../../../../src/shards/raft/types.js';
import { Cluster } from './harness.js';
import { dec, enc, msg } from './fixtures.js';

/** The state machine: the snapshot it installed (a JSON list of values) followed by what it applied since. */
function stateOf(c: Cluster, id: number): string[] {
  const n = c.node(id);
  const snaps = n.readies.filter((r) => r.snapshot !== undefined);
  const base = snaps.length > 0 ? (JSON.parse(dec(snaps[snaps.length - 1]!.snapshot!.data)) as string[]) : [];
  return [...base, ...c.appliedData(id)];
}

/** The shell of node `id` snapshots everything it applied and compacts its log. */
function snapshotAndCompact(c: Cluster, id: number): number {
  const n = c.node(id);
  const st = n.rn.status();
  n.storage.createSnapshot(st.applied, n.rn.confState(), enc(JSON.stringify(stateOf(c, id))));
  n.storage.compact(st.applied);
  return st.applied;
}

describe('snapshots', () => {
  test('a follower that was down behind the compacted log gets a Snap, installs it and ends with the same data', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false });
    c.elect(1);
    c.propose(1, 'before');
    c.isolate(3);
    for (let i = 0; i < 20; i++) c.propose(1, `v${i}`);
    const snapIndex = snapshotAndCompact(c, 1);
    expect(c.node(1).rn.status().firstIndex).toBe(snapIndex + 1);
    c.heal();
    c.tickAll(5);
    const snaps = c.sent.filter((m) => m.type === MessageType.Snap && m.to === 3);
    expect(snaps.length).toBe(1);
    expect(snaps[0]!.snapshot!.metadata.index).toBe(snapIndex);
    const installed = c.node(3).readies.filter((r) => r.snapshot !== undefined);
    expect(installed.map((r) => r.snapshot!.metadata.index)).toEqual([snapIndex]);
    c.propose(1, 'after');
    expect(stateOf(c, 3)).toEqual(stateOf(c, 1));
    expect(stateOf(c, 3)).toEqual(['before', ...Array.from({ length: 20 }, (_, i) => `v${i}`), 'after']);
    expect(c.node(3).rn.status().counters.snapshotsInstalled).toBe(1);
  });

  test('a follower that was down behind the compacted log gets a Snap once the cluster makes progress', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false });
    c.elect(1);
    c.propose(1, 'before');
    c.isolate(3);
    for (let i = 0; i < 20; i++) c.propose(1, `v${i}`);
    const snapIndex = snapshotAndCompact(c, 1);
    c.heal();
    c.propose(1, 'after');
    c.tickAll(5);
    const snaps = c.sent.filter((m) => m.type === MessageType.Snap && m.to === 3);
    expect(snaps.map((m) => m.snapshot!.metadata.index)).toEqual([snapIndex]);
    expect(stateOf(c, 3)).toEqual(stateOf(c, 1));
  });

  test('the leader leaves snapshot state for replicate once the follower acknowledges the snapshot', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false });
    // Down since before this leader was elected: the leader only ever probed it.
    c.isolate(3);
    c.elect(1);
    for (let i = 0; i < 5; i++) c.propose(1, `v${i}`);
    const snapIndex = snapshotAndCompact(c, 1);
    c.heal();
    // Hold the follower's answer to see the leader waiting in snapshot state.
    const ack = c.hold((m) => m.from === 3 && m.type === MessageType.AppResp);
    c.tickAll(2);
    expect(c.node(1).rn.status().progress.get(nodeId(3))?.state).toBe('snapshot');
    expect(ack.held.length).toBeGreaterThan(0);
    ack.release();
    c.tickAll(1);
    const pr = c.node(1).rn.status().progress.get(nodeId(3));
    expect(pr?.state).toBe('replicate');
    expect(pr?.match).toBe(c.node(1).rn.status().lastIndex);
    expect(pr?.match).toBeGreaterThanOrEqual(snapIndex);
  });

  test('a lost snapshot is sent again after a while', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false });
    // Down since before this leader was elected: the leader only ever probed it.
    c.isolate(3);
    c.elect(1);
    for (let i = 0; i < 5; i++) c.propose(1, `v${i}`);
    snapshotAndCompact(c, 1);
    c.heal();
    let dropped = 0;
    c.drop((m) => m.type === MessageType.Snap && dropped++ === 0);
    c.tickAll(2);
    expect(c.sent.filter((m) => m.type === MessageType.Snap).length).toBe(1);
    expect(c.node(3).rn.status().counters.snapshotsInstalled).toBe(0);
    c.tickAll(2 * 10 + 5);
    expect(c.sent.filter((m) => m.type === MessageType.Snap).length).toBe(2);
    expect(c.node(3).rn.status().counters.snapshotsInstalled).toBe(1);
    expect(stateOf(c, 3)).toEqual(stateOf(c, 1));
  });

  test('a new learner joins by snapshot from an empty storage and ends with the same data', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false });
    c.elect(1);
    for (let i = 0; i < 10; i++) c.propose(1, `v${i}`);
    // The only snapshot the leader has predates the learner: an empty replica still takes it and
    // learns its own membership from the log after it.
    const snapIndex = snapshotAndCompact(c, 1);
    c.add(nodeId(4), new MemoryStorage());
    c.node(1).rn.proposeConfChange({ type: ConfChangeType.AddLearner, node: nodeId(4) });
    c.deliver();
    c.tickAll(3);
    expect(c.node(1).rn.confState().learners).toEqual([4]);
    const installed = c
      .node(4)
      .readies.filter((r) => r.snapshot !== undefined)
      .map((r) => r.snapshot!.metadata.index);
    expect(installed).toEqual([snapIndex]);
    c.propose(1, 'after');
    expect(stateOf(c, 4)).toEqual([...Array.from({ length: 10 }, (_, i) => `v${i}`), 'after']);
    expect(c.node(4).rn.confState()).toEqual({ voters: [1, 2, 3], learners: [4] });
  });

  test('a replica takes the leader snapshot even when its membership leaves the replica out (re-added later)', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false });
    c.elect(1);
    c.propose(1, 'a');
    const n3 = c.node(3);
    const before = n3.rn.status();
    const snapIndex = before.lastIndex + 5;
    n3.rn.step(
      msg(MessageType.Snap, 1, 3, before.term, {
        snapshot: { metadata: { index: snapIndex as never, term: before.term, confState: { voters: [nodeId(1), nodeId(2)], learners: [] } }, data: enc('[]') },
      }),
    );
    c.handleReadies();
    expect(n3.rn.status().counters.snapshotsInstalled).toBe(1);
    expect(n3.rn.status().lastIndex).toBe(snapIndex);
    // Not a member as of the snapshot: it does not campaign until the log makes it one again.
    expect(n3.rn.confState().voters).toEqual([1, 2]);
  });
});
