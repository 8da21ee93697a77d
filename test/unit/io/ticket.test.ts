import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { TICKET_ADDRS_MAX, TICKET_PREFIX, TicketError, decodeTicket, encodeTicket, normalizeAddr } from '../../../src/io/ticket.js';

const ID = '0123456789abcdef'.repeat(4);

/** A ticket from raw body bytes (id, count, addresses) with a correct checksum, to reach the structural checks. */
function craft(body: Uint8Array): string {
  const out = new Uint8Array(body.length + 4);
  out.set(body);
  new DataView(out.buffer).setUint32(body.length, crc32(body), false);
  return TICKET_PREFIX + Buffer.from(out).toString('base64url');
}

function body(...parts: (number[] | Uint8Array)[]): Uint8Array {
  return Uint8Array.from(parts.flatMap((p) => Array.from(p)));
}

const idBytes = Buffer.from(ID, 'hex');
const v4 = (a: number, b: number, c: number, d: number, port: number): number[] => [4, a, b, c, d, port >> 8, port & 0xff];

function expectInvalid(f: () => unknown, msg?: RegExp): void {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(TicketError);
    expect((e as TicketError).code).toBe('InvalidTicket');
    if (msg) expect((e as TicketError).message).toMatch(msg);
    return;
  }
  throw new Error('expected InvalidTicket');
}

describe('tickets', () => {
  it('round-trip an id with IPv4 and IPv6 addresses, in canonical form', () => {
    const t = encodeTicket({ id: ID, addrs: ['127.0.0.1:7000', '[::1]:7001', '[2001:DB8:0:0:0:0:0:1]:443'] });
    expect(t.startsWith(TICKET_PREFIX)).toBe(true);
    expect(t).toMatch(/^irohraft1[A-Za-z0-9_-]+$/);
    expect(decodeTicket(t)).toEqual({ id: ID, addrs: ['127.0.0.1:7000', '[::1]:7001', '[2001:db8::1]:443'] });
    // Canonical in, same ticket out; surrounding white space (a pasted line) is ignored.
    expect(encodeTicket(decodeTicket(` ${t}\n`))).toBe(t);
  });

  it('round-trip a ticket without addresses and one with the most addresses', () => {
    expect(decodeTicket(encodeTicket({ id: ID, addrs: [] }))).toEqual({ id: ID, addrs: [] });
    const many = Array.from({ length: TICKET_ADDRS_MAX }, (_, i) => `10.0.0.${i + 1}:${7000 + i}`);
    expect(decodeTicket(encodeTicket({ id: ID, addrs: many })).addrs).toEqual(many);
  });

  it('keep a duplicate address once when encoding', () => {
    expect(decodeTicket(encodeTicket({ id: ID, addrs: ['[::1]:80', '[0:0::1]:80'] })).addrs).toEqual(['[::1]:80']);
  });

  it('stay short enough for a command line', () => {
    expect(encodeTicket({ id: ID, addrs: ['127.0.0.1:7000'] }).length).toBeLessThan(80);
  });

  it('refuse bad ids and addresses when encoding', () => {
    expectInvalid(() => encodeTicket({ id: ID.toUpperCase(), addrs: [] }), /hex/);
    expectInvalid(() => encodeTicket({ id: ID.slice(1), addrs: [] }), /hex/);
    expectInvalid(() => encodeTicket({ id: ID, addrs: ['localhost:80'] }), /host names/);
    expectInvalid(() => encodeTicket({ id: ID, addrs: ['1.2.3.4:0'] }), /port/);
    expectInvalid(() => encodeTicket({ id: ID, addrs: ['1.2.3.4:65536'] }), /port/);
    expectInvalid(() => encodeTicket({ id: ID, addrs: ['1.2.3.4:080'] }), /port/);
    expectInvalid(() => encodeTicket({ id: ID, addrs: ['::1:80'] }));
    expectInvalid(() => encodeTicket({ id: ID, addrs: ['[fe80::1%eth0]:80'] }), /IPv6/);
    expectInvalid(() => encodeTicket({ id: ID, addrs: ['01.2.3.4:80'] }));
    expectInvalid(() => encodeTicket({ id: ID, addrs: [42 as unknown as string] }), /string/);
    expectInvalid(() => encodeTicket({ id: ID, addrs: 'x' as unknown as string[] }), /array/);
    const tooMany = Array.from({ length: TICKET_ADDRS_MAX + 1 }, (_, i) => `10.0.0.${i + 1}:7000`);
    expectInvalid(() => encodeTicket({ id: ID, addrs: tooMany }), /at most/);
  });

  it('normalize addresses', () => {
    expect(normalizeAddr('127.0.0.1:7000')).toBe('127.0.0.1:7000');
    expect(normalizeAddr('[0:0:0:0:0:0:0:1]:7000')).toBe('[::1]:7000');
    expect(normalizeAddr('[::ffff:1.2.3.4]:9')).toBe('[::ffff:102:304]:9');
  });

  it('reject malformed strings with InvalidTicket', () => {
    const good = encodeTicket({ id: ID, addrs: ['127.0.0.1:7000'] });
    expectInvalid(() => decodeTicket(42 as unknown as string), /string/);
    expectInvalid(() => decodeTicket(''), /start with/);
    expectInvalid(() => decodeTicket('not-a-ticket'), /start with/);
    expectInvalid(() => decodeTicket(`endpoint${good.slice(TICKET_PREFIX.length)}`), /start with/);
    expectInvalid(() => decodeTicket(TICKET_PREFIX), /base64url/);
    expectInvalid(() => decodeTicket(`${good.slice(0, 20)}+${good.slice(21)}`), /base64url/);
    expectInvalid(() => decodeTicket(`${good}=`), /base64url/);
    expectInvalid(() => decodeTicket(`${good.slice(0, 12)} ${good.slice(12)}`), /base64url/);
    expectInvalid(() => decodeTicket(TICKET_PREFIX + 'A'.repeat(2000)), /longer/);
  });

  it('reject a ticket whose last character carries stray bits (non-canonical base64url)', () => {
    const good = encodeTicket({ id: ID, addrs: ['127.0.0.1:7000'] });
    const body = good.slice(TICKET_PREFIX.length);
    // 42 bytes encode to 56 characters with 2 unused bits in the last one; flip one of them.
    expect((body.length * 6) % 8).not.toBe(0);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(body.at(-1)!);
    const twisted = TICKET_PREFIX + body.slice(0, -1) + alphabet[last ^ 1]!;
    expect(Buffer.from(twisted.slice(TICKET_PREFIX.length), 'base64url')).toEqual(Buffer.from(body, 'base64url'));
    expectInvalid(() => decodeTicket(twisted), /canonical/);
  });

  it('detect every single-character typo by the checksum', () => {
    const good = encodeTicket({ id: ID, addrs: ['127.0.0.1:7000', '[::1]:7001'] });
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    for (let i = TICKET_PREFIX.length; i < good.length - 1; i++) {
      const c = alphabet[(alphabet.indexOf(good[i]!) + 17) % 64]!;
      expectInvalid(() => decodeTicket(good.slice(0, i) + c + good.slice(i + 1)));
    }
  });

  it('reject truncated tickets', () => {
    const good = encodeTicket({ id: ID, addrs: ['127.0.0.1:7000'] });
    for (let n = TICKET_PREFIX.length + 1; n < good.length; n += 3) expectInvalid(() => decodeTicket(good.slice(0, n)));
  });

  it('reject structurally bad contents behind a valid checksum', () => {
    expect(decodeTicket(craft(body(idBytes, [1], v4(10, 0, 0, 1, 7000))))).toEqual({ id: ID, addrs: ['10.0.0.1:7000'] });
    expectInvalid(() => decodeTicket(craft(body(idBytes.subarray(0, 31)))), /truncated/);
    expectInvalid(() => decodeTicket(craft(body(idBytes, [1], [4, 10, 0]))), /truncated/);
    expectInvalid(() => decodeTicket(craft(body(idBytes, [2], v4(10, 0, 0, 1, 7000)))), /truncated/);
    expectInvalid(() => decodeTicket(craft(body(idBytes, [1], v4(10, 0, 0, 1, 7000), [0]))), /trailing/);
    expectInvalid(() => decodeTicket(craft(body(idBytes, [0], [9]))), /trailing/);
    expectInvalid(() => decodeTicket(craft(body(idBytes, [1], [5, 10, 0, 0, 1, 0, 80]))), /family/);
    expectInvalid(() => decodeTicket(craft(body(idBytes, [1], v4(10, 0, 0, 1, 0)))), /port 0/);
    expectInvalid(() => decodeTicket(craft(body(idBytes, [2], v4(10, 0, 0, 1, 80), v4(10, 0, 0, 1, 80)))), /twice/);
    expectInvalid(() => decodeTicket(craft(body(idBytes, [TICKET_ADDRS_MAX + 1]))), /at most/);
  });

  it('serialize as a code and a message', () => {
    try {
      decodeTicket('nope');
    } catch (e) {
      expect(JSON.parse(JSON.stringify(e))).toMatchObject({ code: 'InvalidTicket', message: expect.stringContaining(TICKET_PREFIX) as unknown });
      return;
    }
    throw new Error('expected InvalidTicket');
  });
});
