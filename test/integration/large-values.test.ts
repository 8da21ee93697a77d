/**
 * Real data sizes through real node processes (dist/, LMDB, Iroh between nodes), 16 shards: values
 * of exactly valueBytesMax (1 MiB) are written and read back whole (linearizable and stale); one
 * byte more is 413 ValueTooLarge; and scans of a tenant holding many 1 MiB values and small ones
 * page through every key exactly once, compared with a reference model (the keys and values
 * written), with small and large page limits. One node on two workers holds 40 values of 1 MiB
 * (the scan fan-out and merge at full size); three nodes take fewer, written through every node
 * (1 MiB proposals forwarded over Iroh to the leaders) and scanned from every node. No reply is
 * dropped on the way: every node reports zero replies too large and zero oversize drops.
 */
import { createHash } from 'node:crypto';
import { afterAll, describe, expect, test } from 'vitest';
import { TestCluster, eventually } from './cluster.js';

const MIB = 1 << 20;
const tenant = 'big';

/** A value of `bytes` bytes whose content depends on `key` (so misplaced bytes show). */
function valueOf(key: string, bytes: number): Buffer {
  const seed = createHash('sha256').update(key).digest();
  const v = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += seed.length) seed.copy(v, i);
  return v;
}

interface ScanPage {
  items: { key: string; value: string | { base64: string }; version: number }[];
  more: boolean;
  next?: string;
}

const bytesOf = (v: string | { base64: string }): Buffer => (typeof v === 'string' ? Buffer.from(v) : Buffer.from(v.base64, 'base64'));

/** A cluster under test and the reference model of what it holds (key -> value, as acknowledged). */
class Subject {
  readonly model = new Map<string, Buffer>();
  constructor(readonly c: TestCluster) {}

  url(node: number, key: string, query = ''): string {
    return `${this.c.node(node).url}/v1/kv/${encodeURIComponent(key)}?tenant=${tenant}${query}`;
  }

  async healthy(): Promise<void> {
    await eventually(
      async () => (await Promise.all(this.c.nodes.map((n) => fetch(`${n.url}/healthz`)))).every((r) => r.status === 200),
      60_000,
      'every shard has a leader',
    );
  }

  /** Writes `count` values of exactly 1 MiB and `small` small ones, round-robin through the nodes. */
  async write(count: number, small: number): Promise<void> {
    const writes: { key: string; bytes: number }[] = [];
    for (let i = 0; i < count; i++) writes.push({ key: `m${String(i).padStart(2, '0')}`, bytes: MIB });
    for (let i = 0; i < small; i++) writes.push({ key: `s${String(i).padStart(2, '0')}`, bytes: 1 + ((i * 997) % 3000) });
    const nodes = this.c.nodes.length;
    for (const [i, w] of writes.entries()) {
      const value = valueOf(w.key, w.bytes);
      // Every write is answered 200 at once: no 503 (a worker's rings full of 1 MiB appends) or
      // 504 is retried, so a value size the engine cannot carry promptly fails here.
      const res = await fetch(this.url(1 + (i % nodes), w.key), { method: 'PUT', body: value });
      expect(res.status, `PUT ${w.key}: ${await res.clone().text()}`).toBe(200);
      this.model.set(w.key, value);
    }
  }

  /** GET `key` from `node`, compared with the model. */
  async read(node: number, key: string, consistency = 'linearizable'): Promise<boolean> {
    const res = await fetch(this.url(node, key, `&consistency=${consistency}`));
    return res.status === 200 && Buffer.from(await res.arrayBuffer()).equals(this.model.get(key)!);
  }

  /** Pages through the tenant from `node` with `limit`; the keys in the order received and the page count. */
  async scanAll(node: number, limit: number, consistency: string): Promise<{ keys: string[]; pages: number }> {
    const keys: string[] = [];
    let after: string | undefined;
    for (let pages = 1; ; pages++) {
      const q = new URLSearchParams({ tenant, limit: String(limit), consistency, ...(after === undefined ? {} : { after }) });
      const res = await fetch(`${this.c.node(node).url}/v1/kv?${q.toString()}`);
      expect(
        res.status,
        await res
          .clone()
          .text()
          .then((t) => t.slice(0, 300)),
      ).toBe(200);
      const page = (await res.json()) as ScanPage;
      expect(page.items.length).toBeLessThanOrEqual(limit);
      for (const it of page.items) {
        const want = this.model.get(it.key);
        expect(want, `scan returned unknown key ${it.key}`).toBeDefined();
        expect(bytesOf(it.value).equals(want!), `value of ${it.key}`).toBe(true);
        keys.push(it.key);
      }
      if (!page.more) return { keys, pages };
      expect(page.items.length).toBeGreaterThan(0);
      expect(page.next).toBe(page.items.at(-1)!.key);
      after = page.next;
    }
  }

  /** Every key of the model, in byte order. */
  keys(): string[] {
    return [...this.model.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  }

  /** Sum of a metric's samples on `node`. */
  async metric(node: number, name: string): Promise<number> {
    const text = await (await fetch(`${this.c.node(node).url}/metrics`)).text();
    let sum = 0;
    for (const line of text.split('\n')) if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.split(' ').at(-1));
    return sum;
  }

  /** No reply was refused or dropped for its size anywhere. */
  async nothingTooLarge(): Promise<void> {
    for (const n of this.c.nodes) {
      expect(await this.metric(n.index, 'iroh_raft_worker_replies_too_large_total'), `node ${n.index} replies too large`).toBe(0);
      expect(await this.metric(n.index, 'iroh_raft_router_replies_too_large_total'), `node ${n.index} forwarded replies too large`).toBe(0);
      expect(await this.metric(n.index, 'iroh_raft_worker_oversize_drops_total'), `node ${n.index} oversize drops`).toBe(0);
    }
  }
}

const clusters: TestCluster[] = [];
afterAll(() => Promise.all(clusters.map((c) => c.close())));

async function subject(nodes: number, workers: number): Promise<Subject> {
  const c = new TestCluster({ nodes, shards: 16, workers, extra: ['--request-timeout-ms', '15000'] });
  clusters.push(c);
  await c.start();
  const s = new Subject(c);
  await s.healthy();
  return s;
}

describe('large values', () => {
  test('one node, 16 shards: 40 values of 1 MiB read back whole; one byte more is ValueTooLarge; scans page through every key once', async () => {
    const s = await subject(1, 2);
    await s.write(40, 40);
    const over = await fetch(s.url(1, 'over'), { method: 'PUT', body: Buffer.alloc(MIB + 1) });
    expect(over.status).toBe(413);
    expect(((await over.json()) as { error: { code: string } }).error.code).toBe('ValueTooLarge');
    for (const key of s.keys().filter((k) => k.startsWith('m'))) expect(await s.read(1, key), `GET ${key}`).toBe(true);

    const want = s.keys();
    const full = await s.scanAll(1, 100, 'linearizable');
    expect(full.keys).toEqual(want);
    // A page holds at most scanBytesMax (1.75 MiB) of keys and values: 40 MiB take at least 23 pages.
    expect(full.pages).toBeGreaterThanOrEqual(23);
    expect((await s.scanAll(1, 3, 'stale')).keys).toEqual(want);
    expect((await s.scanAll(1, 10_000, 'lease')).keys).toEqual(want);
    await s.nothingTooLarge();
  }, 120_000);

  test('three nodes, 16 shards: 1 MiB values written through every node read back whole from every node; scans from every node page through every key once', async () => {
    const s = await subject(3, 1);
    await s.write(10, 30);
    const big = s.keys().filter((k) => k.startsWith('m'));
    for (const [i, key] of big.entries()) expect(await s.read(1 + (i % 3), key), `GET ${key}`).toBe(true);
    for (const node of [1, 2, 3]) {
      for (const key of big) await eventually(() => s.read(node, key, 'stale'), 30_000, `stale GET ${key} from node ${node}`);
    }
    const want = s.keys();
    expect((await s.scanAll(1, 100, 'linearizable')).keys).toEqual(want);
    expect((await s.scanAll(2, 2, 'linearizable')).keys).toEqual(want);
    expect((await s.scanAll(3, 1000, 'stale')).keys).toEqual(want);
    await s.nothingTooLarge();
  }, 150_000);
});
