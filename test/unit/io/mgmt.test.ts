/**
 * The management ALPN over real Iroh endpoints on 127.0.0.1 (a node's transport handing
 * `iroh-raft-mgmt/0` connections to a MgmtServer; clients with keys of their own), with the real
 * role and tenant directories over the KV semantics in memory: roles decide every op, the caller
 * is the connection's endpoint id, and each bound (request and reply size, deadline, streams per
 * connection, connections per node, idle connections) answers with its stable code at the limit
 * and past it.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { MgmtClient, MgmtServer, encodeFrame } from '../../../src/io/mgmt/index.js';
import type { MgmtLimits, MgmtReply } from '../../../src/io/mgmt/index.js';
import { Transport } from '../../../src/io/transport/index.js';
import { RoleDirectory } from '../../../src/router/roles.js';
import { TenantDirectory } from '../../../src/router/tenants.js';
import { mintToken } from '../../../src/router/tokens.js';
import { MemoryKv } from '../../support/memory-kv.js';

interface Node {
  readonly transport: Transport;
  readonly server: MgmtServer;
  readonly kv: MemoryKv;
  readonly roles: RoleDirectory;
  /** What status answers; a test may change it. */
  status: { value: unknown; gate: Promise<void> | undefined };
  members: Set<string>;
  /** Endpoints admitted by members.join, in order (with the invite they gave); and whether anyone may join. */
  joined: { id: string; addrs: readonly string[]; invite?: string }[];
  join: { open: boolean };
  /** What the record says of each endpoint (members.self). */
  entries: Map<string, { node: number; state: string }[]>;
}

const LIVE_INVITE = 'L'.repeat(43);

async function startNode(limits: Partial<MgmtLimits>): Promise<Node> {
  const kv = new MemoryKv();
  const roles = new RoleDirectory({ kv });
  const tenants = new TenantDirectory({ kv, adminSecretHash: mintToken('_admin').secretHash });
  const status: Node['status'] = { value: { node: 1 }, gate: undefined };
  const members = new Set<string>();
  const joined: Node['joined'] = [];
  const join = { open: false };
  const entries: Node['entries'] = new Map();
  const server = new MgmtServer({
    limits,
    services: {
      status: async () => {
        if (status.gate !== undefined) await status.gate;
        return status.value;
      },
      members: () => [{ node: 1, id: 'a'.repeat(64) }],
      isMember: (id) => members.has(id),
      roles,
      tenants,
      // The membership directory is the meta group's (tested with real nodes in
      // test/integration/join.test.ts); here the admissions are only recorded.
      // An invite is checked by the meta record's change (test/unit/router/invites.test.ts); here
      // one secret stands for a live invite and any other for a spent one.
      join: (id, addrs, invite) => {
        if (invite !== undefined && invite !== LIVE_INVITE) return Promise.resolve({ ok: false, code: 'Forbidden', message: 'the invite is spent' });
        joined.push({ id, addrs, ...(invite === undefined ? {} : { invite }) });
        return Promise.resolve({ ok: true, value: { node: joined.length + 1 } });
      },
      invite: (ttlMs) => Promise.resolve({ ok: true, value: { join: 'ticket.secret', expires: new Date(ttlMs).toISOString() } }),
      rejoin: () => Promise.resolve({ ok: false, code: 'NotFound', message: 'no cluster here' }),
      selfEntries: (id) => entries.get(id) ?? [],
      removeMember: (ref) => Promise.resolve({ ok: false, code: 'NotFound', message: `no member ${String(ref)}` }),
      get joinOpen() {
        return join.open;
      },
    },
  });
  const transport = await Transport.start({
    secretKey: randomBytes(32),
    bindAddr: '127.0.0.1:0',
    isMember: () => false,
    onRecords: () => undefined,
    onMgmtConnection: (conn, peerId) => server.accept(conn, peerId),
  });
  return { transport, server, kv, roles, status, members, joined, join, entries };
}

const LIMITS: Partial<MgmtLimits> = { requestBytesMax: 1024, replyBytesMax: 2048, requestTimeoutMs: 1_500, streamsPerConnectionMax: 2, connectionsMax: 16 };
let node: Node;
const clients: MgmtClient[] = [];
beforeAll(async () => {
  node = await startNode(LIMITS);
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await node.server.close();
  await node.transport.destroy();
});

async function client(n: Node = node): Promise<MgmtClient> {
  const c = await MgmtClient.connect({ secretKey: randomBytes(32), node: { id: n.transport.id, addrs: n.transport.addrs() } });
  clients.push(c);
  return c;
}

const codeOf = (r: MgmtReply): string => (r.ok ? 'ok' : r.error.code);

describe('roles decide every op; the caller is the connection', () => {
  test('a stranger gets Forbidden for every op, known or not, and nothing changes', async () => {
    const c = await client();
    for (const op of ['status', 'members.list', 'tenants.list', 'tenants.create', 'roles.grant', 'roles.list', 'no.such.op']) {
      expect(codeOf(await c.call(op, { name: 'acme', endpointId: c.id, role: 'admin' })), op).toBe('Forbidden');
    }
    expect(await node.roles.list()).toEqual({ ok: true, value: [] });
    const t = await node.kv.scan({ tenant: '_system', prefix: new Uint8Array(0), limit: 100, consistency: 'linearizable' });
    expect(t.ok && t.value.items).toEqual([]);
  });

  test('members.join: a stranger is Forbidden while joins are closed; once open, it may join (as itself) and do nothing else', async () => {
    const c = await client();
    expect(codeOf(await c.call('members.join', { addrs: ['127.0.0.1:9'] }))).toBe('Forbidden');
    expect(node.joined).toEqual([]);
    node.join.open = true;
    try {
      expect(codeOf(await c.call('members.join', { addrs: 'nope' }))).toBe('BadRequest');
      expect(await c.call('members.join', { addrs: ['127.0.0.1:9'] })).toEqual({ ok: true, result: { node: 2 } });
      // The endpoint admitted is the connection's, never one the request names.
      expect(node.joined).toEqual([{ id: c.id, addrs: ['127.0.0.1:9'] }]);
      for (const op of ['status', 'members.list', 'members.remove', 'tenants.list', 'roles.grant'])
        expect(codeOf(await c.call(op, { node: 1, endpointId: c.id, role: 'admin' })), op).toBe('Forbidden');
    } finally {
      node.join.open = false;
    }
  });

  test('members.join with an invite: a stranger may ask while joins are closed; the op checks the invite; the invite opens nothing else', async () => {
    node.joined.length = 0;
    const c = await client();
    expect(codeOf(await c.call('members.join', { addrs: ['127.0.0.1:9'], invite: 'short' }))).toBe('Forbidden');
    expect(codeOf(await c.call('members.join', { addrs: ['127.0.0.1:9'], invite: 'S'.repeat(43) }))).toBe('Forbidden');
    expect(node.joined).toEqual([]);
    for (const op of ['status', 'members.invite', 'members.remove', 'roles.grant'])
      expect(codeOf(await c.call(op, { invite: LIVE_INVITE, node: 1, endpointId: c.id, role: 'admin' })), op).toBe('Forbidden');
    expect(await c.call('members.join', { addrs: ['127.0.0.1:9'], invite: LIVE_INVITE })).toEqual({ ok: true, result: { node: 2 } });
    expect(node.joined).toEqual([{ id: c.id, addrs: ['127.0.0.1:9'], invite: LIVE_INVITE }]);
    node.joined.length = 0;
  });

  test('members.invite: operators and admins only; ttlMs checked', async () => {
    const reader = await client();
    const op = await client();
    expect((await node.roles.grant(reader.id, 'reader')).ok).toBe(true);
    expect((await node.roles.grant(op.id, 'operator')).ok).toBe(true);
    try {
      expect(codeOf(await reader.call('members.invite', {}))).toBe('Forbidden');
      expect(await op.call('members.invite', { ttlMs: 60_000 })).toEqual({
        ok: true,
        result: { join: 'ticket.secret', expires: new Date(60_000).toISOString() },
      });
      for (const ttlMs of [999, 8 * 24 * 3_600_000, 1.5, '60000', -1])
        expect(codeOf(await op.call('members.invite', { ttlMs })), String(ttlMs)).toBe('BadRequest');
      expect(codeOf(await op.call('members.invite', { ttl: 60_000 }))).toBe('BadRequest');
    } finally {
      await node.roles.revoke(reader.id);
      await node.roles.revoke(op.id);
    }
  });

  test('members.self: anyone learns what the record says of its own endpoint, and of no other', async () => {
    const c = await client();
    expect(await c.call('members.self')).toEqual({ ok: true, result: { entries: [] } });
    node.entries.set(c.id, [{ node: 4, state: 'removed' }]);
    node.entries.set('b'.repeat(64), [{ node: 5, state: 'up' }]);
    expect(await c.call('members.self')).toEqual({ ok: true, result: { entries: [{ node: 4, state: 'removed' }] } });
    expect(codeOf(await c.call('members.self', { endpointId: 'b'.repeat(64) }))).toBe('BadRequest');
    // Still nothing else for a stranger.
    expect(codeOf(await c.call('members.list'))).toBe('Forbidden');
  });

  test('reader: status and members; operator: tenants list and quotas; admin: everything', async () => {
    const reader = await client();
    const operator = await client();
    const admin = await client();
    await node.roles.grant(reader.id, 'reader');
    await node.roles.grant(operator.id, 'operator');
    await node.roles.grant(admin.id, 'admin');
    expect(await reader.call('status')).toEqual({ ok: true, result: { node: 1 } });
    expect(codeOf(await reader.call('members.list'))).toBe('ok');
    expect(codeOf(await reader.call('tenants.list'))).toBe('Forbidden');
    expect(codeOf(await reader.call('tenants.create', { name: 'acme' }))).toBe('Forbidden');

    const created = await admin.call('tenants.create', { name: 'acme', quota: { keysMax: 10 } });
    expect(created).toMatchObject({ ok: true, result: { tenant: { name: 'acme', quota: { keysMax: 10 } } } });
    expect(codeOf(await operator.call('tenants.create', { name: 'beta' }))).toBe('Forbidden');
    expect(await operator.call('tenants.list')).toMatchObject({ ok: true, result: { tenants: [{ name: 'acme' }] } });
    expect(await operator.call('tenants.setQuota', { name: 'acme', quota: { keysMax: 20 } })).toMatchObject({ ok: true, result: { quota: { keysMax: 20 } } });
    expect(codeOf(await operator.call('tenants.rotate', { name: 'acme' }))).toBe('Forbidden');
    const rotated = await admin.call('tenants.rotate', { name: 'acme' });
    expect(rotated).toMatchObject({ ok: true, result: { tenant: { name: 'acme', generation: 2 } } });
    expect(rotated.ok && (rotated.result as { token: string }).token).not.toBe(created.ok && (created.result as { token: string }).token);
    expect(codeOf(await operator.call('roles.list'))).toBe('Forbidden');
    expect(codeOf(await operator.call('no.such.op'))).toBe('NotFound');
    expect(await admin.call('roles.list')).toMatchObject({
      ok: true,
      result: { roles: expect.arrayContaining([expect.objectContaining({ endpointId: admin.id, role: 'admin' })]) as unknown },
    });

    // The admin grants over mgmt; the reader becomes an operator at once on this node.
    expect(await admin.call('roles.grant', { endpointId: reader.id, role: 'operator' })).toMatchObject({ ok: true, result: { role: 'operator' } });
    expect(codeOf(await reader.call('tenants.list'))).toBe('ok');
    expect(await admin.call('roles.revoke', { endpointId: reader.id })).toEqual({ ok: true, result: { revoked: true } });
    expect(codeOf(await reader.call('status'))).toBe('Forbidden');
    expect(codeOf(await admin.call('roles.revoke', { endpointId: reader.id }))).toBe('RoleNotFound');
  });

  test('bad args answer BadRequest or InvalidTenant and change nothing; a replayed create is TenantExists', async () => {
    const admin = await client();
    await node.roles.grant(admin.id, 'admin');
    const before = await node.kv.scan({ tenant: '_system', prefix: new Uint8Array(0), limit: 100, consistency: 'linearizable' });
    const cases: [string, unknown, string][] = [
      ['tenants.create', undefined, 'BadRequest'],
      ['tenants.create', [1, 2], 'BadRequest'],
      ['tenants.create', { name: 7 }, 'InvalidTenant'],
      ['tenants.create', { name: '_system' }, 'InvalidTenant'],
      ['tenants.create', { name: 'x', quota: { bytes: 1 } }, 'BadRequest'],
      ['tenants.create', { name: 'x', quota: { keysMax: -1 } }, 'BadRequest'],
      ['tenants.create', { name: 'x', extra: 1 }, 'BadRequest'],
      ['tenants.delete', { name: 'nobody' }, 'TenantNotFound'],
      ['roles.grant', { endpointId: 'zz', role: 'admin' }, 'BadRequest'],
      ['roles.grant', { endpointId: admin.id, role: 'root' }, 'BadRequest'],
      ['status', { x: 1 }, 'BadRequest'],
    ];
    for (const [op, args, code] of cases) expect(codeOf(await admin.call(op, args)), `${op} ${JSON.stringify(args)}`).toBe(code);
    expect(await node.kv.scan({ tenant: '_system', prefix: new Uint8Array(0), limit: 100, consistency: 'linearizable' })).toEqual(before);
    const frame = encodeFrame({ op: 'tenants.create', args: { name: 'replayed' } });
    expect(codeOf(await admin.exchange(frame))).toBe('ok');
    expect(codeOf(await admin.exchange(frame))).toBe('TenantExists');
  });

  test('a member without a role has no op yet (the peer ops of membership changes will be its own)', async () => {
    const c = await client();
    node.members.add(c.id);
    expect(codeOf(await c.call('status'))).toBe('Forbidden');
    expect(codeOf(await c.call('no.such.op'))).toBe('NotFound');
  });
});

describe('bounds, at the limit and past it', () => {
  test('request size: a body of requestBytesMax is read and checked; one byte more is PayloadTooLarge, never read', async () => {
    const admin = await client();
    await node.roles.grant(admin.id, 'admin');
    const sized = (bytes: number): Buffer => {
      const base = encodeFrame({ op: 'tenants.create', args: { name: '' } }).length - 4;
      // The name's msgpack string header grows from 1 to 2 bytes past 31 characters, and to 3 past 255.
      const name = 'n'.repeat(bytes - base - 2);
      const f = encodeFrame({ op: 'tenants.create', args: { name } });
      expect(f.length - 4).toBe(bytes);
      return f;
    };
    expect(codeOf(await admin.exchange(sized(1024)))).toBe('InvalidTenant');
    expect(codeOf(await admin.exchange(sized(1025)))).toBe('PayloadTooLarge');
    // A length prefix of 4 GiB with no body: refused at once, nothing waits for the body.
    expect(codeOf(await admin.exchange(Buffer.from([0xff, 0xff, 0xff, 0xff]), 5_000, false))).toBe('PayloadTooLarge');
  });

  test('reply size: a reply of replyBytesMax goes out; one byte more is ReplyTooLarge', async () => {
    const r = await client();
    await node.roles.grant(r.id, 'reader');
    const base = encodeFrame({ ok: true, result: '' }).length - 4;
    node.status.value = 's'.repeat(2048 - base - 2);
    const at = await r.call('status');
    expect(encodeFrame(at).length - 4).toBe(2048);
    expect(codeOf(at)).toBe('ok');
    node.status.value = 's'.repeat(2048 - base - 1);
    expect(codeOf(await r.call('status'))).toBe('ReplyTooLarge');
    node.status.value = { node: 1 };
  });

  test('deadline: an op that does not finish, and a request that never arrives whole, answer Timeout; the node keeps serving', async () => {
    const r = await client();
    await node.roles.grant(r.id, 'reader');
    let release = (): void => undefined;
    node.status.gate = new Promise<void>((resolve) => (release = resolve));
    expect(codeOf(await r.call('status'))).toBe('Timeout');
    release();
    node.status.gate = undefined;
    // Two bytes of a length prefix, then silence (the stream is not finished).
    expect(codeOf(await r.exchange(Buffer.from([1, 0]), 5_000, false))).toBe('Timeout');
    // A truncated frame, finished: the stream ended early.
    expect(codeOf(await r.exchange(encodeFrame({ op: 'status' }).subarray(0, 6)))).toBe('BadRequest');
    expect(codeOf(await r.call('status'))).toBe('ok');
  });

  test('streams per connection: beyond streamsPerConnectionMax at once, Overloaded; then served again', async () => {
    const r = await client();
    await node.roles.grant(r.id, 'reader');
    let release = (): void => undefined;
    node.status.gate = new Promise<void>((resolve) => (release = resolve));
    const held = [r.call('status'), r.call('status')];
    await new Promise((res) => setTimeout(res, 200));
    expect(codeOf(await r.call('status'))).toBe('Overloaded');
    release();
    node.status.gate = undefined;
    expect((await Promise.all(held)).map(codeOf)).toEqual(['ok', 'ok']);
    expect(codeOf(await r.call('status'))).toBe('ok');
  });
});

describe('connections per node and idle connections', () => {
  let small: Node;
  beforeAll(async () => {
    small = await startNode({ connectionsMax: 2, connectionIdleMs: 400 });
  });
  afterAll(async () => {
    await small.server.close();
    await small.transport.destroy();
  });

  test('a connection beyond connectionsMax is closed at once; idle ones are closed, which frees room', async () => {
    const a = await client(small);
    const b = await client(small);
    await small.roles.grant(a.id, 'reader');
    expect(codeOf(await a.call('status'))).toBe('ok');
    expect(codeOf(await b.call('status'))).toBe('Forbidden');
    expect(small.server.openConnections).toBe(2);
    const c = await client(small);
    await expect(c.call('status', undefined, 3_000)).rejects.toMatchObject({ name: 'MgmtClientError' });
    expect(small.server.counters.connectionsRefused).toBe(1);
    // Idle for connectionIdleMs: both are closed by the node.
    await new Promise((res) => setTimeout(res, 700));
    expect(small.server.openConnections).toBe(0);
    await expect(a.call('status', undefined, 3_000)).rejects.toMatchObject({ name: 'MgmtClientError' });
    const d = await client(small);
    await small.roles.grant(d.id, 'reader');
    expect(codeOf(await d.call('status'))).toBe('ok');
  });
});

describe('a node that is gone', () => {
  test('connect answers Timeout at connectTimeoutMs and does not then wait out its endpoint close (~3 s in the binding)', async () => {
    const gone = await Transport.start({ secretKey: randomBytes(32), bindAddr: '127.0.0.1:0', isMember: () => false, onRecords: () => undefined });
    const node = { id: gone.id, addrs: gone.addrs() };
    await gone.close();
    const t0 = performance.now();
    const err = await MgmtClient.connect({ secretKey: randomBytes(32), node, connectTimeoutMs: 1_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    const ms = performance.now() - t0;
    expect(err).toMatchObject({ code: 'Timeout' });
    // 1,000 ms of connecting, then at most a short wait for the endpoint: ~1,250 ms in all;
    // waiting for the endpoint's close took ~4,000.
    expect(ms).toBeLessThan(2_500);
  });
});
