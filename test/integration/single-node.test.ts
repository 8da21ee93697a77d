/** One real node process: the HTTP API over real LMDB, a restart, bad input. */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CLI, TestCluster } from './cluster.js';

const c = new TestCluster({ nodes: 1, shards: 4 });
beforeAll(() => c.start(), 60_000);
afterAll(() => c.close());

const url = (p: string): string => `${c.node(1).url}${p}`;
async function json(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}

describe('a single node over HTTP', () => {
  test('put, get, delete, compare-and-set and scan; data intact after a restart', async () => {
    expect((await fetch(url('/v1/kv/greeting'), { method: 'PUT', body: 'hello' })).status).toBe(200);
    const got = await fetch(url('/v1/kv/greeting'));
    expect(got.status).toBe(200);
    expect(await got.text()).toBe('hello');
    expect(got.headers.get('x-version')).toBe('1');

    // Compare-and-set: version 1 matches, a stale version does not.
    const cas = await fetch(url('/v1/kv/greeting?version=1'), { method: 'PUT', body: 'hi' });
    expect(cas.status).toBe(200);
    expect(await json(cas)).toMatchObject({ version: 2 });
    const stale = await fetch(url('/v1/kv/greeting?version=1'), { method: 'PUT', body: 'nope' });
    expect(stale.status).toBe(412);
    expect(await json(stale)).toMatchObject({ error: { code: 'VersionMismatch' } });
    const create = await fetch(url('/v1/kv/fresh?version=0'), { method: 'PUT', body: 'new' });
    expect(create.status).toBe(200);

    // Tenants are separate key spaces.
    await fetch(url('/v1/kv/greeting'), { method: 'PUT', body: 'other tenant', headers: { 'x-tenant': 'acme' } });
    expect(await (await fetch(url('/v1/kv/greeting'))).text()).toBe('hi');
    expect(await (await fetch(url('/v1/kv/greeting?tenant=acme'))).text()).toBe('other tenant');

    // Binary values round trip byte-exact.
    const bytes = new Uint8Array(300).map((_, i) => (i * 31) % 256);
    await fetch(url('/v1/kv/bin'), { method: 'PUT', body: bytes });
    expect(new Uint8Array(await (await fetch(url('/v1/kv/bin'))).arrayBuffer())).toEqual(bytes);

    // Scan by prefix, paged.
    for (let i = 0; i < 25; i++) await fetch(url(`/v1/kv/user%2F${String(i).padStart(2, '0')}`), { method: 'PUT', body: `u${i}` });
    const page1 = await json(await fetch(url('/v1/kv?prefix=user/&limit=10')));
    expect((page1.items as unknown[]).length).toBe(10);
    expect(page1.more).toBe(true);
    const page2 = await json(await fetch(url(`/v1/kv?prefix=user/&limit=100&after=${encodeURIComponent(page1.next as string)}`)));
    expect((page2.items as unknown[]).length).toBe(15);
    expect(page2.more).toBe(false);

    const del = await fetch(url('/v1/kv/fresh'), { method: 'DELETE' });
    expect(await json(del)).toMatchObject({ deleted: true });
    expect((await fetch(url('/v1/kv/fresh'))).status).toBe(404);

    // Compare-and-delete: only at the expected version; a mismatch deletes nothing.
    await fetch(url('/v1/kv/guarded'), { method: 'PUT', body: 'v1' });
    await fetch(url('/v1/kv/guarded'), { method: 'PUT', body: 'v2' });
    const wrong = await fetch(url('/v1/kv/guarded?version=1'), { method: 'DELETE' });
    expect(wrong.status).toBe(412);
    expect(await json(wrong)).toMatchObject({ error: { code: 'VersionMismatch', version: 2 } });
    expect(await (await fetch(url('/v1/kv/guarded'))).text()).toBe('v2');
    const right = await fetch(url('/v1/kv/guarded'), { method: 'DELETE', headers: { 'if-match': '2' } });
    expect(await json(right)).toMatchObject({ deleted: true });
    expect((await fetch(url('/v1/kv/guarded'))).status).toBe(404);

    for (const consistency of ['linearizable', 'lease', 'stale']) {
      expect(await (await fetch(url(`/v1/kv/greeting?consistency=${consistency}`))).text()).toBe('hi');
    }

    expect(await c.stop(1)).toBe(0);
    // Restarting with another shard count would move keys: refused, the data stays as it is.
    const other = spawnSync(process.execPath, [CLI, 'start', '--data', c.node(1).data, '--shards', '8', '--http', '127.0.0.1:0', '--listen', '127.0.0.1:0'], {
      encoding: 'utf8',
    });
    expect(other.status).toBe(2);
    expect(other.stderr).toMatch(/ClusterMismatch.*--shards 4/);
    await c.startNode(1);
    // Listening is not ready: /healthz says 200 once every local shard (the meta group's too)
    // knows a leader again, as a load balancer would wait for. The next test asks it at once.
    for (const until = Date.now() + 20_000; (await fetch(url('/healthz'))).status !== 200;) {
      if (Date.now() > until) throw new Error('the restarted node did not become healthy within 20 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await (await fetch(url('/v1/kv/greeting'))).text()).toBe('hi');
    expect(new Uint8Array(await (await fetch(url('/v1/kv/bin'))).arrayBuffer())).toEqual(bytes);
    const all = await json(await fetch(url('/v1/kv?prefix=user/&limit=100')));
    expect((all.items as unknown[]).length).toBe(25);
  });

  test('status, health and metrics', async () => {
    const status = await json(await fetch(url('/v1/status')));
    expect((status.shards as unknown[]).length).toBe(4);
    const health = await fetch(url('/healthz'));
    expect(health.status).toBe(200);
    const metrics = await (await fetch(url('/metrics'))).text();
    expect(metrics).toMatch(/iroh_raft_host_entries_applied_total/);
    expect(metrics).toMatch(/iroh_raft_pool_inflight_requests/);
  });

  test('bad input gets a clear JSON error and the node keeps serving', async () => {
    const cases: [string, RequestInit | undefined, number, string][] = [
      ['/v1/nope', undefined, 404, 'NotFound'],
      ['/v1/kv/k', { method: 'POST', body: 'x' }, 405, 'MethodNotAllowed'],
      ['/v1/kv?limit=0', undefined, 400, 'InvalidLimit'],
      ['/v1/kv/k?consistency=eventual', undefined, 400, 'InvalidConsistency'],
      ['/v1/kv/%E0%A4%A', undefined, 400, 'BadRequest'],
      ['/v1/kv/k?tenant=bad%20tenant', undefined, 400, 'InvalidTenant'],
      // Longer than any tenant field can hold (255 bytes), on every kind of request.
      [`/v1/kv/k?tenant=${'t'.repeat(300)}`, undefined, 400, 'InvalidTenant'],
      [`/v1/kv/k?tenant=${'t'.repeat(300)}`, { method: 'PUT', body: 'v' }, 400, 'InvalidTenant'],
      [`/v1/kv/k?tenant=${'t'.repeat(300)}`, { method: 'DELETE' }, 400, 'InvalidTenant'],
      [`/v1/kv?prefix=a&tenant=${'t'.repeat(300)}`, undefined, 400, 'InvalidTenant'],
      [`/v1/kv/${'k'.repeat(5000)}`, undefined, 400, 'KeyTooLarge'],
      ['/v1/kv/big', { method: 'PUT', body: new Uint8Array(3 << 20) }, 413, 'PayloadTooLarge'],
    ];
    for (const [path, init, status, code] of cases) {
      const res = await fetch(url(path), init).catch(() => undefined);
      if (res === undefined) continue; // the server may close a connection mid-upload after its 413
      expect(res.status, path).toBe(status);
      expect(await json(res), path).toMatchObject({ error: { code } });
    }
    // Garbage on a raw socket.
    await new Promise<void>((resolve) => {
      const s = connect(c.node(1).httpPort, '127.0.0.1', () => s.end('\x00\x01 NOT HTTP AT ALL\r\n\r\n'));
      s.on('data', () => undefined);
      s.on('close', () => resolve());
      s.on('error', () => resolve());
    });
    expect((await fetch(url('/healthz'))).status).toBe(200);
    expect(await (await fetch(url('/v1/kv/greeting'))).text()).toBe('hi');
  });

  test('invalid flags and config are refused with a clear message and exit code 2', () => {
    const run = (args: string[]): { status: number | null; err: { code: string; message: string } } => {
      const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, IROH_RAFT_DATA: join(c.root, 'unused') } });
      const line = r.stderr.trim().split('\n')[0] ?? '{}';
      return { status: r.status, err: (JSON.parse(line) as { error: { code: string; message: string } }).error };
    };
    expect(run(['start', '--shards', 'many'])).toMatchObject({
      status: 2,
      err: { code: 'InvalidConfig', message: expect.stringMatching(/--shards/) as unknown },
    });
    expect(run(['start', '--http', 'localhost'])).toMatchObject({ status: 2, err: { code: 'InvalidConfig' } });
    for (const flag of ['--write-bytes-max', '--writes-shared-max', '--http-bodies-bytes-max', '--http-connections-max']) {
      for (const v of ['0', '-1', '2.5', 'lots', String(2 ** 31)]) {
        expect(run(['start', flag, v])).toMatchObject({
          status: 2,
          err: { code: 'InvalidConfig', message: expect.stringContaining(flag) as unknown },
        });
      }
    }
    expect(run(['start', '--bogus', '1'])).toMatchObject({ status: 2, err: { code: 'UnknownFlag' } });
    expect(run(['start', '--workers'])).toMatchObject({ status: 2, err: { code: 'InvalidFlag' } });
    expect(run(['start', '--peers', 'not-a-ticket', '--http', '127.0.0.1:0', '--listen', '127.0.0.1:0'])).toMatchObject({
      status: 2,
      err: { code: 'InvalidTicket' },
    });
    expect(run(['frobnicate'])).toMatchObject({ status: 2, err: { code: 'UnknownCommand' } });
    const cfg = join(c.root, 'bad.json');
    writeFileSync(cfg, JSON.stringify({ shards: 4, colour: 'blue' }));
    expect(run(['start', '--config', cfg])).toMatchObject({ status: 2, err: { code: 'InvalidConfig', message: expect.stringMatching(/colour/) as unknown } });
    writeFileSync(cfg, '{ not json');
    expect(run(['start', '--config', cfg])).toMatchObject({ status: 2, err: { code: 'ConfigFileUnreadable' } });
    const env = spawnSync(process.execPath, [CLI, 'start'], { encoding: 'utf8', env: { ...process.env, IROH_RAFT_TICK_MS: '-5' } });
    expect(env.status).toBe(2);
    expect(env.stderr).toMatch(/IROH_RAFT_TICK_MS/);
    // A data directory in use by a running node is refused.
    expect(run(['start', '--data', c.node(1).data, '--http', '127.0.0.1:0', '--listen', '127.0.0.1:0'])).toMatchObject({
      status: 2,
      err: { code: 'DataDirLocked' },
    });
  });
});
