/**
 * Join invites (src/router/invites.ts) as changes of the meta record: one admits one endpoint,
 * once, before it expires; the record keeps only hashes; a retried join needs no invite; and the
 * `--join` string (src/io/ticket.ts parseJoin) carries the secret after the ticket.
 */
import { describe, expect, test } from 'vitest';
import { INVITES_MAX, isInviteSecret } from '../../../src/api/index.js';
import { TicketError, encodeTicket, joinString, parseJoin } from '../../../src/io/ticket.js';
import { addInvite, admitByInvite, inviteHash, newInviteSecret } from '../../../src/router/invites.js';
import { checkMeta, decodeMeta, encodeMeta } from '../../../src/router/meta-record.js';
import type { ClusterMeta } from '../../../src/router/meta-record.js';
import { foundingMeta, memberOf, setState } from '../../../src/router/meta.js';
import type { NodeId } from '../../../src/shards/raft/index.js';

const A = 'a'.repeat(64);
const NEW = 'b'.repeat(64);
const OTHER = 'c'.repeat(64);
const NOW = 1_800_000_000_000;

const base = (): ClusterMeta => foundingMeta({ founders: [{ node: 1 as NodeId, id: A }], shards: 4, replicas: 3 });

/** `c` applied to `m`, which must change it. */
function applied(m: ClusterMeta, c: ReturnType<typeof addInvite>): ClusterMeta {
  if (c === undefined || 'ok' in c) throw new Error(`expected a change, got ${JSON.stringify(c)}`);
  expect(checkMeta(c)).toEqual(c);
  return c;
}

describe('invites in the meta record', () => {
  test('a secret is 43 base64url characters, fresh each time; the record holds its SHA-256 only', () => {
    const s = newInviteSecret();
    expect(isInviteSecret(s)).toBe(true);
    expect(newInviteSecret()).not.toBe(s);
    const m = applied(base(), addInvite(base(), inviteHash(s), NOW + 60_000, NOW));
    const bytes = Buffer.from(encodeMeta(m)).toString('utf8');
    expect(bytes).not.toContain(s);
    expect(bytes).toContain(inviteHash(s));
    expect(decodeMeta(encodeMeta(m))).toEqual(m);
  });

  test('an invite admits the caller once: the next raft id, joining (no replica until heard from), the invite spent', () => {
    const s = newInviteSecret();
    const m = applied(base(), addInvite(base(), inviteHash(s), NOW + 60_000, NOW));
    const joined = applied(m, admitByInvite(m, NEW, ['127.0.0.1:9'], inviteHash(s), NOW + 1));
    expect(memberOf(joined, NEW)).toEqual({ node: 2, id: NEW, addrs: ['127.0.0.1:9'], state: 'joining' });
    expect(joined.invites).toEqual([]);
    expect(joined.placement.at(-1)).toEqual([1]);
    // Once up (its node heard from), the targets give it replicas.
    expect(applied(joined, setState(joined, 2, 'up')).placement.at(-1)).toEqual([1, 2]);
    // A retried join of the admitted endpoint: no change, with or without the spent invite.
    expect(admitByInvite(joined, NEW, ['127.0.0.1:9'], inviteHash(s), NOW + 2)).toBeUndefined();
    // Another endpoint with the spent invite: refused, nothing changes.
    expect(admitByInvite(joined, OTHER, ['127.0.0.1:10'], inviteHash(s), NOW + 2)).toMatchObject({ ok: false, code: 'Forbidden' });
  });

  test('an unknown or expired invite is Forbidden; expired ones are dropped at the next change', () => {
    const s = newInviteSecret();
    const m = applied(base(), addInvite(base(), inviteHash(s), NOW + 60_000, NOW));
    expect(admitByInvite(m, NEW, [], inviteHash(newInviteSecret()), NOW)).toMatchObject({ ok: false, code: 'Forbidden' });
    expect(admitByInvite(m, NEW, [], inviteHash(s), NOW + 60_000)).toMatchObject({ ok: false, code: 'Forbidden' });
    const later = applied(m, addInvite(m, inviteHash(newInviteSecret()), NOW + 200_000, NOW + 100_000));
    expect(later.invites).toHaveLength(1);
    expect(later.invites?.[0]?.hash).not.toBe(inviteHash(s));
  });

  test('a removed endpoint is not admitted again, invite or not', () => {
    const s = newInviteSecret();
    let m = applied(base(), addInvite(base(), inviteHash(s), NOW + 60_000, NOW));
    m = applied(m, admitByInvite(m, NEW, [], inviteHash(s), NOW));
    m = applied(m, setState(m, 2, 'removed'));
    const t = newInviteSecret();
    m = applied(m, addInvite(m, inviteHash(t), NOW + 60_000, NOW));
    expect(admitByInvite(m, NEW, [], inviteHash(t), NOW)).toMatchObject({ ok: false, code: 'Forbidden' });
  });

  test(`at most ${INVITES_MAX} outstanding: one more is MemberConflict until some expire`, () => {
    let m = base();
    for (let i = 0; i < INVITES_MAX; i++) m = applied(m, addInvite(m, inviteHash(newInviteSecret()), NOW + 1000 + i, NOW));
    expect(addInvite(m, inviteHash(newInviteSecret()), NOW + 60_000, NOW)).toMatchObject({ ok: false, code: 'MemberConflict' });
    expect(applied(m, addInvite(m, inviteHash(newInviteSecret()), NOW + 60_000, NOW + 1000)).invites).toHaveLength(INVITES_MAX);
  });

  test('checkMeta refuses a record with a bad invite', () => {
    const m = base();
    for (const invites of ['x', [{ hash: 'zz', expires: 1 }], [{ hash: 'a'.repeat(64), expires: -1 }], [{ hash: 'a'.repeat(64) }]])
      expect(typeof checkMeta({ ...m, invites }), JSON.stringify(invites)).toBe('string');
  });
});

describe('--join strings', () => {
  const ticket = encodeTicket({ id: A, addrs: ['127.0.0.1:7000'] });

  test('a ticket alone, or a ticket and a secret after a dot', () => {
    expect(parseJoin(ticket)).toEqual({ id: A, addrs: ['127.0.0.1:7000'] });
    const s = newInviteSecret();
    expect(parseJoin(` ${joinString(ticket, s)}\n`)).toEqual({ id: A, addrs: ['127.0.0.1:7000'], invite: s });
  });

  test('a bad secret or a bad ticket is InvalidTicket', () => {
    for (const bad of [
      `${ticket}.`,
      `${ticket}.short`,
      `${ticket}.${'a'.repeat(42)}!`,
      `${ticket}.${newInviteSecret()}.x`,
      `irohraft1xx.${newInviteSecret()}`,
    ]) {
      expect(() => parseJoin(bad), bad).toThrow(TicketError);
    }
  });
});
