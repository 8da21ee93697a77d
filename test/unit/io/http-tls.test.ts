/**
 * Transport security of the client API over real sockets: the Host allow-list (DNS rebinding),
 * HTTPS with real certificates made by openssl, and client certificates (mutual TLS).
 */
import { request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { RequestOptions } from 'node:https';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { KvService } from '../../../src/api/index.js';
import { HttpServer, hostAllowed, hostOf, hostRule, isLoopback } from '../../../src/io/http/index.js';
import type { HttpServerOptions } from '../../../src/io/http/index.js';
import { makeTestCerts } from '../../support/tls-certs.js';
import type { TestCerts } from '../../support/tls-certs.js';

const unused = async (): Promise<never> => Promise.reject(new Error('not used in these tests'));
/** Only status and health are asked here. */
const service: KvService = {
  put: unused,
  delete: unused,
  get: unused,
  scan: unused,
  status: () => Promise.resolve({ node: 1 }),
  placement: () => ({ node: 1, shards: 1, replicas: 1, hash: 'h', leaders: [1] }),
  metrics: unused,
  health: () => ({ ok: true, detail: {} }),
};
const quiet = { info() {}, warn() {}, error() {}, debug() {} };

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request with full control of `Host` and of the TLS options (fetch allows neither). */
function ask(url: string, path: string, opts: RequestOptions = {}): Promise<Answer> {
  const u = new URL(url);
  const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send({ hostname: u.hostname, port: u.port, path, agent: false, ...opts }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const servers: HttpServer[] = [];
async function serve(opts: Partial<HttpServerOptions> = {}): Promise<HttpServer> {
  const s = await HttpServer.start({ host: '127.0.0.1', port: 0, service, logger: quiet, ...opts });
  servers.push(s);
  return s;
}
afterAll(async () => {
  await Promise.all(servers.map((s) => s.destroy()));
});

describe('Host allow-list', () => {
  test('names are compared without port, case, brackets or a trailing dot', () => {
    expect(hostOf('LocalHost:7070')).toBe('localhost');
    expect(hostOf('[::1]:7070')).toBe('::1');
    expect(hostOf('127.0.0.1')).toBe('127.0.0.1');
    expect(hostOf('example.com.')).toBe('example.com');
    expect(hostOf(undefined)).toBeUndefined();
    expect(hostOf('a:b:c')).toBeUndefined();
    expect(hostOf('host:port')).toBeUndefined();
    expect(isLoopback('127.0.0.1')).toBe(true);
    expect(isLoopback('127.3.2.1')).toBe(true);
    expect(isLoopback('::1')).toBe(true);
    expect(isLoopback('localhost')).toBe(true);
    expect(isLoopback('0.0.0.0')).toBe(false);
    expect(isLoopback('::')).toBe(false);
    expect(isLoopback('10.0.0.1')).toBe(false);
  });

  test('a loopback listener answers the loopback names only; any other address answers any host unless given a list', () => {
    const loop = hostRule(undefined, '127.0.0.1');
    for (const h of ['localhost:7070', '127.0.0.1:7070', '[::1]:7070', 'LOCALHOST']) expect(hostAllowed(loop, h)).toBe(true);
    for (const h of ['evil.example:7070', 'localhost.evil.example', '127.0.0.1.nip.io', '', undefined]) expect(hostAllowed(loop, h)).toBe(false);
    expect(hostRule(undefined, '0.0.0.0')).toBeNull();
    expect(hostAllowed(hostRule(undefined, '::'), 'anything.example')).toBe(true);
    const listed = hostRule(['kv.example.com', '*.nodes.example.com'], '0.0.0.0');
    expect(hostAllowed(listed, 'kv.example.com:443')).toBe(true);
    expect(hostAllowed(listed, 'a.nodes.example.com')).toBe(true);
    expect(hostAllowed(listed, 'nodes.example.com')).toBe(false);
    expect(hostAllowed(listed, 'evilnodes.example.com')).toBe(false);
    expect(hostAllowed(listed, 'localhost')).toBe(false);
    expect(hostRule(['*'], '127.0.0.1')).toBeNull();
    expect(() => hostRule([], '127.0.0.1')).toThrow(/empty/);
    expect(() => hostRule(['bad host'], '127.0.0.1')).toThrow(/not a host name/);
  });

  test('a request naming another host gets 421 HostNotAllowed, and nothing is served', async () => {
    const s = await serve();
    const rebound = await ask(s.url, '/v1/status', { headers: { host: 'attacker.example:7070' } });
    expect(rebound.status).toBe(421);
    expect(JSON.parse(rebound.body)).toMatchObject({ error: { code: 'HostNotAllowed' } });
    expect(rebound.body).not.toContain('"node"');
    expect(s.hostsRefused).toBe(1);
    for (const host of [`127.0.0.1:${s.address.port}`, `localhost:${s.address.port}`, 'localhost']) {
      expect((await ask(s.url, '/v1/status', { headers: { host } })).status).toBe(200);
    }
    // fetch names the host it connects to.
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
  });

  test('an explicit list replaces the default; * answers any host; a bad entry is InvalidConfig', async () => {
    const listed = await serve({ allowedHosts: ['kv.example.com'] });
    expect((await ask(listed.url, '/healthz', { headers: { host: 'kv.example.com' } })).status).toBe(200);
    expect((await ask(listed.url, '/healthz', { headers: { host: `127.0.0.1:${listed.address.port}` } })).status).toBe(421);
    const any = await serve({ allowedHosts: ['*'] });
    expect((await ask(any.url, '/healthz', { headers: { host: 'whatever.example' } })).status).toBe(200);
    await expect(serve({ allowedHosts: ['no spaces'] })).rejects.toMatchObject({ code: 'InvalidConfig' });
  });
});

describe('HTTPS', () => {
  let certs: TestCerts;
  beforeAll(() => {
    certs = makeTestCerts();
  });

  test('serves over TLS with its certificate; plain HTTP to the port gets no answer', async () => {
    const s = await serve({ tls: { cert: certs.pem.serverCert, key: certs.pem.serverKey } });
    expect(s.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const r = await ask(s.url, '/v1/status', { ca: certs.pem.caCert });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ node: 1 });
    // A client that does not trust the CA refuses the server.
    await expect(ask(s.url, '/healthz')).rejects.toMatchObject({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    // Plain HTTP is not answered in clear text.
    await expect(ask(s.url.replace('https:', 'http:'), '/healthz')).rejects.toThrow();
    expect(s.tlsHandshakeFailures).toBeGreaterThanOrEqual(1);
  });

  test('with a client CA, only clients with a certificate it signed are served', async () => {
    const s = await serve({ tls: { cert: certs.pem.serverCert, key: certs.pem.serverKey, ca: certs.pem.caCert } });
    const trusted = { ca: certs.pem.caCert };
    const ok = await ask(s.url, '/healthz', { ...trusted, cert: certs.pem.clientCert, key: certs.pem.clientKey });
    expect(ok.status).toBe(200);
    const before = s.tlsHandshakeFailures;
    await expect(ask(s.url, '/healthz', trusted)).rejects.toThrow();
    await expect(ask(s.url, '/healthz', { ...trusted, cert: certs.pem.strangerCert, key: certs.pem.strangerKey })).rejects.toThrow();
    expect(s.tlsHandshakeFailures).toBe(before + 2);
  });

  test('the Host allow-list applies over TLS too', async () => {
    const s = await serve({ tls: { cert: certs.pem.serverCert, key: certs.pem.serverKey } });
    const r = await ask(s.url, '/healthz', { ca: certs.pem.caCert, servername: 'localhost', headers: { host: 'attacker.example' } });
    expect(r.status).toBe(421);
  });

  test('a certificate or key that does not load is InvalidConfig at start', async () => {
    await expect(serve({ tls: { cert: 'not a certificate', key: certs.pem.serverKey } })).rejects.toMatchObject({ code: 'InvalidConfig' });
    await expect(serve({ tls: { cert: certs.pem.serverCert, key: certs.pem.clientKey } })).rejects.toMatchObject({ code: 'InvalidConfig' });
  });

  test('over TLS, a connection past connectionsMax is closed without a handshake', async () => {
    const s = await serve({ tls: { cert: certs.pem.serverCert, key: certs.pem.serverKey }, connectionsMax: 1 });
    const { connect } = await import('node:tls');
    const first = connect({ host: '127.0.0.1', port: s.address.port, ca: certs.pem.caCert, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => first.once('secureConnect', resolve).once('error', reject));
    await expect(ask(s.url, '/healthz', { ca: certs.pem.caCert })).rejects.toThrow();
    expect(s.connectionsRefused).toBe(1);
    first.destroy();
  });
});
