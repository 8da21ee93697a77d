/**
 * The client's own rules, against scripted HTTP servers on 127.0.0.1 (real sockets; the nodes'
 * answers are scripted so each rule can be forced): what is retried and what is not, that a
 * write's retries carry the same session and a new write the next sequence, that a refused
 * connection moves to the next endpoint, that an abort and the deadline end a call with their
 * codes, that requests go to the leader named by placement and answers. The client against real
 * nodes is in test/integration/client-*.test.ts.
 */
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { Client, ClientError, RETRYABLE, isRetryable } from '../../../src/client/index.js';
import { backoffMs, RETRY_DEFAULTS } from '../../../src/client/backoff.js';
import { bytesFromJson, percentEncode } from '../../../src/client/bytes.js';
import { Lanes, randomClientId } from '../../../src/client/lanes.js';
import { KEYED_HASH, UNKEYED_HASH, keyedHash, shardOf } from '../../../src/wire/index.js';

interface Seen {
  readonly server: number;
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

type Script = (seen: Seen, n: number) => { status: number; body?: unknown; headers?: Record<string, string> };

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** `count` servers answering by `script`; placement answers come from `placement` (404 when absent). */
async function serve(count: number, script: Script, placement?: (server: number) => unknown): Promise<{ urls: string[]; seen: Seen[] }> {
  const seen: Seen[] = [];
  const urls: string[] = [];
  for (let i = 0; i < count; i++) {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.url === '/v1/placement') {
          const p = placement?.(i);
          res
            .writeHead(p === undefined ? 404 : 200, { 'content-type': 'application/json' })
            .end(JSON.stringify(p ?? { error: { code: 'NotFound', message: '' } }));
          return;
        }
        const s: Seen = { server: i, method: req.method ?? '', url: req.url ?? '', headers: req.headers };
        seen.push(s);
        const a = script(s, seen.length);
        res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers }).end(JSON.stringify(a.body ?? {}));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push(server);
    urls.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  }
  return { urls, seen };
}

const err = (status: number, code: string): ReturnType<Script> => ({ status, body: { error: { code, message: code } }, headers: { 'retry-after': '1' } });
const fast = { baseMs: 1, maxMs: 5 };

describe('retries', () => {
  test('a write refused as wrong (4xx) is not retried; its code, status and details come back', async () => {
    const { urls, seen } = await serve(2, () => ({ status: 412, body: { error: { code: 'VersionMismatch', message: 'no', version: 4 } } }));
    const c = new Client({ endpoints: urls, retry: fast });
    const e = (await c.put('k', 'v', { expectedVersion: 1 }).catch((x: unknown) => x)) as ClientError;
    expect(e).toBeInstanceOf(ClientError);
    expect([e.code, e.status, e.details]).toEqual(['VersionMismatch', 412, { version: 4 }]);
    expect(seen).toHaveLength(1);
    expect(await c.cas('k', 1, 'v')).toEqual({ swapped: false, version: 4 });
    // Compare-and-delete: the same refusal; version 0 is refused before anything is sent.
    expect(((await c.delete('k', { expectedVersion: 3 }).catch((x: unknown) => x)) as ClientError).code).toBe('VersionMismatch');
    expect(seen.at(-1)!.url).toBe('/v1/kv/k?version=3');
    const sent = seen.length;
    expect(((await c.delete('k', { expectedVersion: 0 }).catch((x: unknown) => x)) as ClientError).code).toBe('InvalidArgument');
    expect(seen.length).toBe(sent);
    await c.close();
  });

  test("a write's retries carry one session and move to another endpoint; the next write takes the lane's next sequence", async () => {
    const { urls, seen } = await serve(2, (_, n) =>
      n === 1 ? err(503, 'NotLeader') : n === 2 ? err(504, 'Timeout') : { status: 200, body: { version: 1, deleted: true } },
    );
    const c = new Client({ endpoints: urls, retry: fast, lanesMax: 1 });
    expect(await c.put('k', 'v')).toEqual({ version: 1 });
    expect(seen).toHaveLength(3);
    const ids = new Set(seen.map((s) => `${String(s.headers['x-client-id'])}/${String(s.headers['x-client-seq'])}`));
    expect(ids.size).toBe(1);
    expect(seen[0]!.server).not.toBe(seen[1]!.server);
    const id = Number(seen[0]!.headers['x-client-id']);
    expect(id).toBeGreaterThanOrEqual(2 ** 52);
    expect(id).toBeLessThanOrEqual(Number.MAX_SAFE_INTEGER);
    await c.delete('k');
    expect(seen[3]!.headers['x-client-id']).toBe(String(id));
    expect(Number(seen[3]!.headers['x-client-seq'])).toBe(Number(seen[0]!.headers['x-client-seq']) + 1);
    // Reads carry no session.
    await c.get('k').catch(() => undefined);
    expect(seen.at(-1)!.headers['x-client-id']).toBeUndefined();
    await c.close();
  });

  test('a refused connection moves on to the next endpoint', async () => {
    const { urls, seen } = await serve(1, () => ({ status: 200, body: { deleted: true } }));
    const dead = await serve(1, () => ({ status: 500 }));
    await new Promise((r) => servers.pop()!.close(r));
    const c = new Client({ endpoints: [dead.urls[0]!, urls[0]!], retry: fast });
    for (let i = 0; i < 4; i++) expect(await c.delete(`k${i}`)).toEqual({ deleted: true });
    expect(seen).toHaveLength(4);
    await c.close();
  });

  test('attemptsMax ends retries with the last error; the deadline with Timeout; an abort with Aborted', async () => {
    const { urls, seen } = await serve(1, () => err(503, 'Overloaded'));
    const c = new Client({ endpoints: urls, retry: { ...fast, attemptsMax: 3 } });
    const e = (await c.get('k').catch((x: unknown) => x)) as ClientError;
    expect([e.code, e.status, e.retryAfterMs]).toEqual(['Overloaded', 503, 1000]);
    expect(seen).toHaveLength(3);
    const slow = new Client({ endpoints: urls, timeoutMs: 300, retry: { baseMs: 50, maxMs: 50 } });
    expect(((await slow.get('k').catch((x: unknown) => x)) as ClientError).code).toBe('Timeout');
    const ac = new AbortController();
    const pending = slow.put('k', 'v', { signal: ac.signal });
    ac.abort();
    expect(((await pending.catch((x: unknown) => x)) as ClientError).code).toBe('Aborted');
    await Promise.all([c.close(), slow.close()]);
    expect(((await c.get('k').catch((x: unknown) => x)) as ClientError).code).toBe('ClientClosed');
  });

  test('destroy() ends the calls in flight with ClientClosed', async () => {
    const { urls } = await serve(1, () => err(503, 'NotLeader'));
    const c = new Client({ endpoints: urls, retry: { baseMs: 200, maxMs: 200 } });
    const pending = [c.put('a', 'v'), c.get('b')].map((p) => p.catch((x: unknown) => x));
    await new Promise((r) => setTimeout(r, 50));
    c.destroy();
    for (const e of await Promise.all(pending)) expect((e as ClientError).code).toBe('ClientClosed');
  });
});

describe('leader-aware routing', () => {
  test('writes go to the leader placement names (by each endpoint own node id); answers x-shard/x-node update it', async () => {
    const leaderOf = [2, 1]; // raft ids; server i is node i+1
    const placement = (server: number): unknown => ({ node: server + 1, shards: 2, replicas: 2, hash: UNKEYED_HASH, leaders: leaderOf });
    const { urls, seen } = await serve(
      2,
      (s) => ({ status: 200, body: { version: 1 }, headers: { 'x-shard': String(s.server === 0 ? 1 : 0), 'x-node': String(s.server + 1) } }),
      placement,
    );
    const keyOf = (shard: number): string => {
      for (let i = 0; ; i++) if (shardOf('default', new TextEncoder().encode(`k${i}`), 2) === shard) return `k${i}`;
    };
    const c = new Client({ endpoints: urls, retry: fast });
    await c.put(keyOf(0), 'v');
    await c.put(keyOf(1), 'v');
    await c.put(keyOf(0), 'v');
    expect(seen.map((s) => s.server)).toEqual([1, 0, 1]);
    await c.close();
  });

  const PLACEMENT_KEY = '000102030405060708090a0b0c0d0e0f';
  const keyed = keyedHash(Buffer.from(PLACEMENT_KEY, 'hex'));
  /** A key of `default` on `shard` (of 2) by `fn`, and on the other shard by the unkeyed function (so a client that used that would go wrong). */
  const keyedKeyOf = (shard: number, tag: string): string => {
    for (let i = 0; ; i++) {
      const k = new TextEncoder().encode(`${tag}${i}`);
      if (keyed.shardOf('default', k, 2) === shard && shardOf('default', k, 2) !== shard) return `${tag}${i}`;
    }
  };

  test('a keyed cluster with its placementKey (admin or auth off): shards computed with the keyed hash', async () => {
    const placement = (server: number): unknown => ({
      node: server + 1,
      shards: 2,
      replicas: 2,
      hash: KEYED_HASH,
      placementKey: PLACEMENT_KEY,
      leaders: [2, 1],
    });
    const { urls, seen } = await serve(2, () => ({ status: 200, body: { version: 1 } }), placement);
    const c = new Client({ endpoints: urls, retry: fast });
    await c.put(keyedKeyOf(0, 'a'), 'v');
    await c.put(keyedKeyOf(1, 'b'), 'v');
    await c.put(keyedKeyOf(0, 'c'), 'v');
    // Shard 0 is led by node 2 (server 1), shard 1 by node 1 (server 0).
    expect(seen.map((s) => s.server)).toEqual([1, 0, 1]);
    await c.close();
  });

  test("a keyed cluster without the key (a tenant's token): any endpoint first, then the key's leader learned from x-node", async () => {
    const placement = (server: number): unknown => ({ node: server + 1, shards: 2, replicas: 2, hash: KEYED_HASH, leaders: [2, 1] });
    // Every endpoint serves (forwarding, in a real node) and names the key's leader, not its shard (as to a tenant's token).
    const leaderOfPath = (url: string): number =>
      keyed.shardOf('default', new TextEncoder().encode(decodeURIComponent(url.slice('/v1/kv/'.length))), 2) === 0 ? 2 : 1;
    const { urls, seen } = await serve(2, (s) => ({ status: 200, body: { version: 1 }, headers: { 'x-node': String(leaderOfPath(s.url)) } }), placement);
    const c = new Client({ endpoints: urls, retry: fast });
    const k0 = keyedKeyOf(0, 'x');
    const k1 = keyedKeyOf(1, 'y');
    for (let i = 0; i < 3; i++) {
      await c.put(k0, 'v');
      await c.put(k1, 'v');
    }
    // After its first answer, each key goes to its leader: k0 to node 2 (server 1), k1 to node 1 (server 0).
    expect(seen.slice(2).map((s) => s.server)).toEqual([1, 0, 1, 0]);
    await c.close();
  });

  test('a node that has not read its placement yet (pending): requests go anywhere; NotReady is retried', async () => {
    const { urls, seen } = await serve(
      1,
      (_s, n) => (n === 1 ? err(503, 'NotReady') : { status: 200, body: { version: 1 } }),
      () => ({ node: 1, shards: 2, replicas: 1, hash: 'pending', leaders: [null, null] }),
    );
    const c = new Client({ endpoints: urls, retry: fast });
    expect(await c.put('k', 'v')).toEqual({ version: 1 });
    expect(seen).toHaveLength(2);
    await c.close();
  });
});

describe('pieces', () => {
  test('every server code that means "not now" is retryable; refusals are not', () => {
    for (const code of ['NotLeader', 'Overloaded', 'Unreachable', 'Timeout', 'ShuttingDown', 'WorkerRestarted', 'NotReady'])
      expect(isRetryable(code), code).toBe(true);
    for (const code of ['BadRequest', 'VersionMismatch', 'SessionSeqStale', 'InvalidSession', 'Aborted', '__proto__', 'Nope'])
      expect(isRetryable(code), code).toBe(false);
    expect(Object.keys(RETRYABLE).length).toBeGreaterThan(30);
  });

  test('backoff: full jitter under a doubling ceiling, capped, at least the floor', () => {
    const o = { ...RETRY_DEFAULTS, baseMs: 10, maxMs: 100 };
    expect(backoffMs(0, o, 0, () => 0.999)).toBe(9);
    expect(backoffMs(3, o, 0, () => 0.999)).toBe(79);
    expect(backoffMs(20, o, 0, () => 0.999)).toBe(99);
    expect(backoffMs(2, o, 0, () => 0)).toBe(0);
    expect(backoffMs(2, o, 5000, () => 0)).toBe(100);
  });

  test('keys travel percent-encoded byte by byte; JSON bytes are text or base64', () => {
    expect(percentEncode(new TextEncoder().encode('a/b+c d~é'))).toBe('a%2Fb%2Bc%20d~%C3%A9');
    expect(percentEncode(new Uint8Array([0, 255]))).toBe('%00%FF');
    expect([...bytesFromJson({ base64: 'AP8=' })!]).toEqual([0, 255]);
    expect(bytesFromJson('hé')!.text()).toBe('hé');
    expect(bytesFromJson(3)).toBeUndefined();
  });

  test('lanes: ids in 2^52..2^53-1, reused after release, waiters served in order, too many waiting refused', async () => {
    for (let i = 0; i < 1000; i++) {
      const id = randomClientId();
      expect(Number.isSafeInteger(id) && id >= 2 ** 52).toBe(true);
    }
    const lanes = new Lanes(1, 1);
    const a = await lanes.take()!;
    const waiting = lanes.take()!;
    expect(lanes.take()).toBeUndefined();
    a.seq = 7;
    lanes.give(a);
    expect(await waiting).toBe(a);
  });
});
