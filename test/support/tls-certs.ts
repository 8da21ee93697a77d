/**
 * Real X.509 certificates for HTTPS tests, made with the system's `openssl`: a CA, a server
 * certificate for localhost and 127.0.0.1 signed by it, a client certificate signed by it, and a
 * client certificate signed by another CA (which a server that trusts the first must refuse).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCerts {
  readonly dir: string;
  /** Paths of the PEM files. */
  readonly files: { caCert: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string; strangerCert: string; strangerKey: string };
  /** Their contents. */
  readonly pem: { caCert: Buffer; serverCert: Buffer; serverKey: Buffer; clientCert: Buffer; clientKey: Buffer; strangerCert: Buffer; strangerKey: Buffer };
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A key and a certificate signed by `ca` (or self-signed when `ca` is undefined). */
function issue(cwd: string, name: string, subject: string, ca: string | undefined, ext: string): void {
  writeFileSync(join(cwd, `${name}.ext`), ext);
  openssl(
    ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject],
    cwd,
  );
  const signer = ca === undefined ? ['-signkey', `${name}.key`] : ['-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial'];
  openssl(['x509', '-req', '-in', `${name}.csr`, ...signer, '-days', '2', '-out', `${name}.crt`, '-extfile', `${name}.ext`], cwd);
}

const CA_EXT = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n';

export function makeTestCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'iroh-raft-tls-'));
  issue(dir, 'ca', '/CN=iroh-raft test CA', undefined, CA_EXT);
  issue(dir, 'server', '/CN=localhost', 'ca', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  issue(dir, 'client', '/CN=test client', 'ca', 'extendedKeyUsage=clientAuth\n');
  issue(dir, 'other-ca', '/CN=another CA', undefined, CA_EXT);
  issue(dir, 'stranger', '/CN=stranger', 'other-ca', 'extendedKeyUsage=clientAuth\n');
  const files = {
    caCert: join(dir, 'ca.crt'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
    strangerCert: join(dir, 'stranger.crt'),
    strangerKey: join(dir, 'stranger.key'),
  };
  const read = (p: string): Buffer => readFileSync(p);
  const pem = {
    caCert: read(files.caCert),
    serverCert: read(files.serverCert),
    serverKey: read(files.serverKey),
    clientCert: read(files.clientCert),
    clientKey: read(files.clientKey),
    strangerCert: read(files.strangerCert),
    strangerKey: read(files.strangerKey),
  };
  return { dir, files, pem };
}
