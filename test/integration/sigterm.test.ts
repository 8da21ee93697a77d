/** Graceful shutdown under load: SIGTERM ends with exit 0, no acknowledged write is lost, restart is clean. */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { TestCluster, sleep } from './cluster.js';

const c = new TestCluster({ nodes: 1, shards: 4, workers: 2 });
beforeAll(() => c.start(), 60_000);
afterAll(() => c.close());

test('SIGTERM under write load exits 0 and loses no acknowledged write', async () => {
  const acked: string[] = [];
  const errors = new Map<string, number>();
  let stop = false;
  const lanes = Array.from({ length: 16 }, async (_, lane) => {
    for (let i = 0; !stop; i++) {
      const key = `l${lane}-${i}`;
      try {
        const res = await fetch(`${c.node(1).url}/v1/kv/${key}`, { method: 'PUT', body: key });
        if (res.status === 200) acked.push(key);
        else {
          const code = ((await res.json()) as { error: { code: string } }).error.code;
          errors.set(code, (errors.get(code) ?? 0) + 1);
        }
      } catch {
        errors.set('connection', (errors.get('connection') ?? 0) + 1);
        await sleep(20);
      }
    }
  });
  await sleep(1500);
  const code = await c.stop(1);
  stop = true;
  await Promise.all(lanes);
  expect(code).toBe(0);
  expect(acked.length).toBeGreaterThan(50);
  // Refusals during the drain are clear: ShuttingDown (or the connection closing), nothing else.
  for (const k of errors.keys()) expect(['ShuttingDown', 'connection']).toContain(k);

  await c.startNode(1);
  for (const key of acked) {
    const res = await fetch(`${c.node(1).url}/v1/kv/${key}`);
    expect(res.status, key).toBe(200);
    expect(await res.text()).toBe(key);
  }
});
