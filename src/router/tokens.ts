/**
 * Bearer tokens: `<name>.<secret>`, the secret 32 random bytes in base64url (43 characters, no
 * padding). The name comes first so a node finds the one record to compare with, without a
 * search; only SHA-256 of the secret is ever stored, and hashes are compared in constant time.
 * Tenant names may hold `.` ([A-Za-z0-9_.-]), so the secret is what follows the last `.`
 * (base64url has none).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Random bytes in a secret. */
export const TOKEN_SECRET_BYTES = 32;
/** The name a node's admin token carries (reserved: no tenant can be called `_admin`). */
export const ADMIN_TOKEN_NAME = '_admin';
/** Longest token text looked at; anything longer is not a token (no hashing of megabytes). */
const TOKEN_CHARS_MAX = 64 + 1 + 43;
/** 43 base64url characters carry 258 bits: the last one holds 2 spare bits, which must be 0. */
const SECRET_RE = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

/** A token split into its name and secret text; not yet checked against anything. */
export interface ParsedToken {
  readonly name: string;
  readonly secret: string;
}

/** The name and secret of a token, or undefined when it has not the form `<name>.<43 base64url>`. */
export function parseToken(token: string): ParsedToken | undefined {
  if (token.length > TOKEN_CHARS_MAX) return undefined;
  const dot = token.lastIndexOf('.');
  if (dot < 1) return undefined;
  const name = token.slice(0, dot);
  const secret = token.slice(dot + 1);
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name) || !SECRET_RE.test(secret)) return undefined;
  return { name, secret };
}

/** A fresh token for `name` and the hash to store for it. */
export function mintToken(name: string): { readonly token: string; readonly secretHash: Buffer } {
  const secret = randomBytes(TOKEN_SECRET_BYTES).toString('base64url');
  return { token: `${name}.${secret}`, secretHash: hashSecret(secret) };
}

/** SHA-256 of a secret's text (32 bytes). */
export function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret, 'latin1').digest();
}

/** Whether `secret` hashes to `expected`, compared in constant time (false for a hash of another length). */
export function secretMatches(secret: string, expected: Uint8Array): boolean {
  const got = hashSecret(secret);
  return expected.length === got.length && timingSafeEqual(got, expected);
}
