/**
 * A real node process serving HTTPS with client certificates, from the flags users give it; the
 * Host allow-list on a real node; and the flags' errors (exit 2, one JSON line, stable code).
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import type { RequestOptions } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { makeTestCerts } from '../support/tls-certs.js';
import type { TestCerts } from '../support/tls-certs.js';
import { CLI } from './cluster.js';

let certs: TestCerts;
let root: string;
let node: ChildProcess | undefined;
let url = '';

function ask(path: string, opts: RequestOptions & { body?: string } = {}): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ hostname: u.hostname, port: u.port, path, agent: false, ...opts }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

beforeAll(async () => {
  certs = makeTestCerts();
  root = mkdtempSync(join(tmpdir(), 'iroh-raft-https-'));
  const f = certs.files;
  node = spawn(
    process.execPath,
    [CLI, 'start', '--data', join(root, 'data'), '--shards', '2', '--http', '127.0.0.1:0', '--listen', '127.0.0.1:0'].concat([
      '--tls-cert',
      f.serverCert,
      '--tls-key',
      f.serverKey,
      '--tls-ca',
      f.caCert,
    ]),
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  url = await new Promise<string>((resolve, reject) => {
    node!.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening: HTTP (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    node!.once('exit', (code) => reject(new Error(`node exited ${code}:\n${out}`)));
  });
}, 60_000);

afterAll(async () => {
  if (node?.exitCode === null) {
    const exited = new Promise((r) => node!.once('exit', r));
    node.kill('SIGTERM');
    await exited;
  }
  rmSync(root, { recursive: true, force: true });
  rmSync(certs.dir, { recursive: true, force: true });
});

describe('a node serving HTTPS with client certificates', () => {
  test('a client with a certificate the CA signed writes and reads; others are refused at the handshake', async () => {
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const client = { ca: certs.pem.caCert, cert: certs.pem.clientCert, key: certs.pem.clientKey };
    // The shards elect their leaders within a few ticks of the start.
    let put = await ask('/v1/kv/secret', { ...client, method: 'PUT', body: 'over tls' });
    for (let i = 0; put.status === 503 && i < 50; i++) {
      await new Promise((r) => setTimeout(r, 100));
      put = await ask('/v1/kv/secret', { ...client, method: 'PUT', body: 'over tls' });
    }
    expect(put.status).toBe(200);
    expect(await ask('/v1/kv/secret', client)).toMatchObject({ status: 200, body: 'over tls' });
    await expect(ask('/v1/kv/secret', { ca: certs.pem.caCert })).rejects.toThrow();
    await expect(ask('/v1/kv/secret', { ca: certs.pem.caCert, cert: certs.pem.strangerCert, key: certs.pem.strangerKey })).rejects.toThrow();
  });

  test('curl, as an operator would use it, with the CA and a client certificate', () => {
    const f = certs.files;
    const r = spawnSync('curl', ['-sS', '--cacert', f.caCert, '--cert', f.clientCert, '--key', f.clientKey, `${url}/v1/kv/secret`], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('over tls');
    // Without a client certificate the handshake fails (curl exits non-zero, nothing served).
    const refused = spawnSync('curl', ['-sS', '--cacert', f.caCert, `${url}/v1/kv/secret`], { encoding: 'utf8', timeout: 20_000 });
    expect(refused.status).not.toBe(0);
    expect(refused.stdout).toBe('');
  });

  test('on loopback, a request naming another host is answered 421 HostNotAllowed', async () => {
    const client = { ca: certs.pem.caCert, cert: certs.pem.clientCert, key: certs.pem.clientKey };
    const r = await ask('/v1/kv/secret', { ...client, servername: 'localhost', headers: { host: 'rebound.attacker.example' } });
    expect(r.status).toBe(421);
    expect(JSON.parse(r.body)).toMatchObject({ error: { code: 'HostNotAllowed' } });
    expect(r.body).not.toContain('over tls');
  });
});

describe('TLS and host flags', () => {
  const run = (args: string[]): { status: number | null; err: { code: string; message: string } } => {
    const r = spawnSync(process.execPath, [CLI, 'start', '--data', join(root, 'unused'), '--http', '127.0.0.1:0', '--listen', '127.0.0.1:0', ...args], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    const line = r.stderr.trim().split('\n')[0] ?? '{}';
    return { status: r.status, err: (JSON.parse(line) as { error: { code: string; message: string } }).error };
  };

  test('bad TLS and host settings exit 2 with InvalidConfig naming the setting, and start nothing', () => {
    const f = certs.files;
    const bad = join(root, 'not-a-cert.pem');
    writeFileSync(bad, 'this is not PEM');
    const invalid = (message: RegExp): object => ({ status: 2, err: { code: 'InvalidConfig', message: expect.stringMatching(message) as unknown } });
    expect(run(['--tls-cert', f.serverCert])).toMatchObject(invalid(/--tls-key/));
    expect(run(['--tls-key', f.serverKey])).toMatchObject(invalid(/--tls-cert/));
    expect(run(['--tls-ca', f.caCert])).toMatchObject(invalid(/--tls-ca/));
    expect(run(['--tls-cert', join(root, 'missing.pem'), '--tls-key', f.serverKey])).toMatchObject(invalid(/--tls-cert .*missing\.pem/));
    expect(run(['--tls-cert', bad, '--tls-key', f.serverKey])).toMatchObject(invalid(/--tls-cert/));
    expect(run(['--tls-cert', f.serverCert, '--tls-key', f.clientKey])).toMatchObject(invalid(/--tls-key/));
    expect(run(['--tls-cert', f.serverCert, '--tls-key', f.serverKey, '--tls-ca', bad])).toMatchObject(invalid(/--tls-ca/));
    expect(run(['--http-allowed-hosts', 'bad host'])).toMatchObject(invalid(/--http-allowed-hosts/));
    expect(run(['--http-allowed-hosts', ','])).toMatchObject(invalid(/--http-allowed-hosts/));
    expect(run(['--tls-cert', f.serverCert, '--tls-key', f.serverKey, '--tls-ca', f.serverKey])).toMatchObject(invalid(/--tls-ca/));
  });
});
