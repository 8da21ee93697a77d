/** The HTTP API's TLS files (`--tls-cert`, `--tls-key`, `--tls-ca`), read and checked at start. */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { HttpTlsOptions } from '../io/http/server.js';
import { ConfigError } from './config.js';
import type { NodeConfig } from './config.js';

/**
 * The HTTPS certificate, key and client CA of `cfg` (undefined for plain HTTP), read and checked
 * to load together. ConfigError InvalidConfig naming the flag otherwise.
 */
export function loadTls(cfg: NodeConfig): HttpTlsOptions | undefined {
  if (cfg.tlsCert === undefined || cfg.tlsKey === undefined) return undefined;
  const cert = pem(cfg.tlsCert, '--tls-cert');
  const key = pem(cfg.tlsKey, '--tls-key');
  const ca = cfg.tlsCa === undefined ? undefined : pem(cfg.tlsCa, '--tls-ca');
  // Node ignores CA text that holds no certificate, which would refuse every client quietly.
  if (ca !== undefined) certificates(ca, `--tls-ca ${cfg.tlsCa}`);
  try {
    createSecureContext({ cert, key, ...(ca === undefined ? {} : { ca }) });
  } catch (e) {
    throw new ConfigError(
      'InvalidConfig',
      `--tls-cert ${cfg.tlsCert} / --tls-key ${cfg.tlsKey}${ca === undefined ? '' : ` / --tls-ca ${cfg.tlsCa}`}: ${(e as Error).message}`,
    );
  }
  return ca === undefined ? { cert, key } : { cert, key, ca };
}

/** Parses each certificate of a PEM text; ConfigError InvalidConfig naming `what` when there is none or one is bad. */
function certificates(text: Buffer, what: string): void {
  const blocks = text.toString('latin1').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new ConfigError('InvalidConfig', `${what}: no PEM certificate in it`);
  for (const b of blocks) {
    try {
      new X509Certificate(b);
    } catch (e) {
      throw new ConfigError('InvalidConfig', `${what}: ${(e as Error).message}`);
    }
  }
}

/** A PEM file's text; ConfigError InvalidConfig naming the flag when it cannot be read. */
function pem(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new ConfigError('InvalidConfig', `${flag} ${path}: ${(e as Error).message}`);
  }
}
