import { describe, expect, test } from 'vitest';
import { MetaClient, foundingMeta, setState } from '../../../src/router/meta.js';
import { encodeMeta } from '../../../src/router/meta-record.js';
import type { ClusterMeta } from '../../../src/router/meta-record.js';
import type { NodeId } from '../../../src/shards/raft/index.js';

const founders = [1, 2, 3].map((node) => ({ node: node as NodeId, id: `peer-${node}` }));

/** A MetaClient over one stored record: `stored` is what metaGet answers. */
function client(first: ClusterMeta) {
  const stored = { bytes: encodeMeta(first), version: 1 };
  const router = {
    metaGet: () =>
      Promise.resolve({
        ok: true as const,
        value: { found: true as const, value: Uint8Array.from(stored.bytes), version: stored.version, createIndex: 1, modIndex: 1 },
      }),
    metaPut: () => Promise.reject(new Error('not written in these tests')),
  };
  return { stored, meta: new MetaClient(router) };
}

describe('MetaClient.read', () => {
  test('the same version with the same bytes is not decoded again: the view read before comes back', async () => {
    const { meta } = client(foundingMeta({ founders, shards: 1000, replicas: 3 }));
    const a = await meta.read('stale');
    const b = await meta.read('stale');
    expect(a.ok && b.ok).toBe(true);
    if (!a.ok || !b.ok) return;
    expect(b.value).toBe(a.value);
    expect(meta.decodesSkipped).toBe(1);
  });

  test('a new version, or other bytes under the same version, is decoded', async () => {
    const m = foundingMeta({ founders, shards: 10, replicas: 3 });
    const { stored, meta } = client(m);
    const a = await meta.read('stale');
    const changed = setState(m, 3, 'leaving') as ClusterMeta;
    stored.bytes = encodeMeta(changed);
    stored.version = 2;
    const b = await meta.read('stale');
    expect(b.ok && b.value?.version).toBe(2);
    expect(b.ok && b.value?.meta.members.find((x) => x.node === 3)?.state).toBe('leaving');
    // Same version, other bytes (a record written again from scratch): decoded, not taken from before.
    stored.bytes = encodeMeta(m);
    const c = await meta.read('stale');
    expect(c.ok && c.value?.meta.members.find((x) => x.node === 3)?.state).toBe('up');
    expect(a.ok && c.ok && c.value).not.toBe(a.ok ? a.value : undefined);
    expect(meta.decodesSkipped).toBe(0);
  });
});
