/** Bearer tokens: the `<name>.<secret>` form, the stored hash, and the constant-time comparison. */
import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { ADMIN_TOKEN_NAME, hashSecret, mintToken, parseToken, secretMatches } from '../../../src/router/tokens.js';

describe('tokens', () => {
  test('a minted token parses back to its name, and its secret matches the hash it came with', () => {
    for (const name of ['acme', 'a.b.c', 'x-1_y', ADMIN_TOKEN_NAME]) {
      const { token, secretHash } = mintToken(name);
      const p = parseToken(token);
      expect(p?.name).toBe(name);
      expect(p?.secret).toHaveLength(43);
      expect(secretMatches(p!.secret, secretHash)).toBe(true);
      // The hash is SHA-256 of the secret, never the token itself.
      expect(secretHash).toEqual(createHash('sha256').update(p!.secret).digest());
      expect(secretHash.toString('hex')).not.toContain(Buffer.from(p!.secret).toString('hex'));
    }
  });

  test('two tokens of one name differ; one secret does not match the other hash', () => {
    const a = mintToken('acme');
    const b = mintToken('acme');
    expect(a.token).not.toBe(b.token);
    expect(secretMatches(parseToken(a.token)!.secret, b.secretHash)).toBe(false);
  });

  test('a secret one character off, or a hash of another length, does not match', () => {
    const { token, secretHash } = mintToken('acme');
    const secret = parseToken(token)!.secret;
    const flipped = (secret[0] === 'A' ? 'B' : 'A') + secret.slice(1);
    expect(secretMatches(flipped, secretHash)).toBe(false);
    expect(secretMatches(secret, secretHash.subarray(0, 31))).toBe(false);
    expect(secretMatches(secret, new Uint8Array(0))).toBe(false);
  });

  test('malformed tokens are refused before any hashing', () => {
    const good = mintToken('acme').token;
    const secret = good.slice(good.lastIndexOf('.') + 1);
    for (const bad of [
      '',
      'acme',
      '.' + secret,
      'acme.',
      `acme.${secret}x`, // 44 characters
      `acme.${secret.slice(1)}`, // 42 characters
      `acme.${secret.slice(0, 42)}B`, // spare bits set: not a canonical encoding of 32 bytes
      `acme.${secret.slice(0, 42)}+`, // base64, not base64url
      `ac me.${secret}`,
      `${'a'.repeat(65)}.${secret}`,
      `acme.${secret} `,
      `é.${secret}`,
    ]) {
      expect(parseToken(bad), bad).toBeUndefined();
    }
    // A name may hold dots: the secret is after the last one.
    expect(parseToken(`a.b.${secret}`)).toEqual({ name: 'a.b', secret });
  });

  test('hashSecret is SHA-256 (32 bytes)', () => {
    expect(hashSecret('x')).toHaveLength(32);
  });
});
