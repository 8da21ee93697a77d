/**
 * The requests of the auth-on HTTP fuzz (http-fuzz-auth.test.ts), as symbols: which token (a
 * tenant's current one, a rotated or deleted one, the admin's, a forged one, none), how the
 * `authorization` header is written, which tenant the request names, the route and its
 * arguments, and the body with its framing. Tokens exist only once the node made them, so a
 * request names them by tenant and the runner resolves them when it sends; everything else is
 * decided here, so the runner knows each request's key bytes and tenant without parsing the
 * server's way.
 */
import { Buffer } from 'node:buffer';
import fc from 'fast-check';

/** Tenants the setup creates, with their quotas; `small` is the one the fuzz pushes past its bounds. */
export const FIXED_QUOTAS: Readonly<Record<string, Record<string, number>>> = {
  alpha: {},
  beta: { requestsPerSec: 5000 },
  small: { keysMax: 6, bytesMax: 600, requestsPerSec: 5 },
};
export const FIXED = Object.keys(FIXED_QUOTAS);
/** Names the fuzz itself may create (and delete, rotate). */
export const FUZZ_NAMES = ['f1', 'f2', 'f3'];
/** Every name a token can belong to. */
export const HOLDERS = [...FIXED, ...FUZZ_NAMES];

const pick = <T>(xs: readonly T[]): fc.Arbitrary<T> => fc.constantFrom(...xs);

// ---------------------------------------------------------------------------------- credentials

export type TokenRef =
  | { readonly kind: 'current'; readonly name: string }
  | { readonly kind: 'stale'; readonly name: string }
  | { readonly kind: 'admin' }
  | { readonly kind: 'forged'; readonly name: string }
  | { readonly kind: 'none' };

/** How the header is written around the token; `ok`: the scheme a node accepts. */
export interface Scheme {
  readonly text: string;
  readonly ok: boolean;
}

/** What is done to the token: nothing, a trailing space (still valid), or a change that makes it nobody's. */
export type Mangle = 'none' | 'space' | 'extra' | 'cut' | 'swap' | 'upper';

export interface Auth {
  readonly token: TokenRef;
  readonly scheme: Scheme;
  readonly mangle: Mangle;
}

const tokenRef: fc.Arbitrary<TokenRef> = fc.oneof(
  { weight: 14, arbitrary: pick(FIXED).map((name) => ({ kind: 'current' as const, name })) },
  { weight: 2, arbitrary: pick(FUZZ_NAMES).map((name) => ({ kind: 'current' as const, name })) },
  { weight: 5, arbitrary: fc.constant({ kind: 'admin' as const }) },
  { weight: 2, arbitrary: pick(HOLDERS).map((name) => ({ kind: 'stale' as const, name })) },
  { weight: 1, arbitrary: pick([...HOLDERS, '_admin', 'ghost']).map((name) => ({ kind: 'forged' as const, name })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'none' as const }) },
);
const scheme: fc.Arbitrary<Scheme> = fc.oneof(
  { weight: 20, arbitrary: fc.constant({ text: 'Bearer ', ok: true }) },
  {
    weight: 2,
    arbitrary: pick([
      { text: 'bearer ', ok: true },
      { text: 'BEARER   ', ok: true },
      { text: 'Basic ', ok: false },
      { text: 'Bearer', ok: false },
      { text: 'Bearer\t', ok: false },
      { text: '', ok: false },
      { text: 'Bearer x ', ok: false },
    ]),
  },
);
const mangle: fc.Arbitrary<Mangle> = fc.oneof(
  { weight: 24, arbitrary: fc.constant('none' as const) },
  { weight: 2, arbitrary: pick(['space', 'extra', 'cut', 'swap', 'upper'] as const) },
);
export const auth: fc.Arbitrary<Auth> = fc.record({ token: tokenRef, scheme, mangle });

// ---------------------------------------------------------------------------------- tenant naming

/** Names a request may put in `x-tenant` or `?tenant=`. */
const NAMED = [...HOLDERS, 'default', 'ghost', '_system', '', 'a b', 'é', 't'.repeat(65), 'ALPHA'];

export type Naming =
  | { readonly via: 'none' }
  | { readonly via: 'header' | 'query' | 'both'; readonly name: string; readonly pct: boolean }
  | { readonly via: 'differ'; readonly name: string; readonly other: string };

export const naming: fc.Arbitrary<Naming> = fc.oneof(
  { weight: 16, arbitrary: fc.constant({ via: 'none' as const }) },
  {
    weight: 6,
    arbitrary: fc.record({ via: pick(['header', 'query', 'both'] as const), name: pick(NAMED), pct: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.record({ via: fc.constant('differ' as const), name: pick(HOLDERS), other: pick(HOLDERS) }) },
);

// ---------------------------------------------------------------------------------- keys and queries

/** Keys the setup writes under every tenant (each its own value), and keys for the quota-crossing writes. */
export const SEEDED_KEYS = ['shared/k1', 'shared/k2', 'a'];
const KNOWN_KEYS = [...SEEDED_KEYS, 'users/ada', 'q/1', 'q/2', 'q/3', 'q/4', 'q/5', 'q/6', 'q/7', 'q/8', 'sp ace', 'pl+us', '%', '?#'];

/** How key bytes are written into a path or a query: every byte escaped, only the unsafe ones, or a broken escape appended. */
export type KeyStyle = 'pct' | 'min' | 'broken';

export interface KeyText {
  readonly bytes: Uint8Array;
  readonly style: KeyStyle;
  /** Hex digits in upper case (both are valid escapes). */
  readonly upper: boolean;
}

export const keyBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 10, arbitrary: pick(KNOWN_KEYS).map((k) => new Uint8Array(Buffer.from(k, 'utf8'))) },
  { weight: 3, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 10 }) },
  { weight: 1, arbitrary: pick([new Uint8Array(0), new Uint8Array(1025).fill(0x6b), new Uint8Array(1024).fill(0x6c), Buffer.from('é/ü', 'utf8')]) },
);
export const keyText: fc.Arbitrary<KeyText> = fc.record({
  bytes: keyBytes,
  style: fc.oneof({ weight: 12, arbitrary: pick(['pct', 'min'] as const) }, { weight: 1, arbitrary: fc.constant('broken' as const) }),
  upper: fc.boolean(),
});

const SAFE = /^[A-Za-z0-9._~/-]$/;

/** The text of `k` in a path (`+` and a space escaped too: a query reads `+` as a space). */
export function encodeKey(k: KeyText): string {
  let out = '';
  for (const b of k.bytes) {
    const c = String.fromCharCode(b);
    if (k.style !== 'pct' && SAFE.test(c)) out += c;
    else {
      const hex = b.toString(16).padStart(2, '0');
      out += `%${k.upper ? hex.toUpperCase() : hex}`;
    }
  }
  return k.style === 'broken' ? `${out}%z` : out;
}

/** Scan limits: in 1..10,000 (valid) or not. */
export const LIMITS = ['1', '2', '3', '7', '100', '10000', '007', '0', '-1', 'abc', '', '10001', '1.5', '9999999'];
/** The limit a node reads from `text` (undefined: InvalidLimit), as README's Client API table says. */
export function limitOf(text: string | undefined): number | undefined {
  if (text === undefined) return 100;
  const n = /^[0-9]{1,6}$/.test(text) ? Number(text) : 0;
  return n >= 1 && n <= 10_000 ? n : undefined;
}

export const consistency = fc.oneof(
  { weight: 6, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: pick(['linearizable', 'lease', 'stale']) },
  { weight: 1, arbitrary: pick(['bogus', '', 'LEASE']) },
);
/** `?version=` and `if-match` values: versions, quoted versions, and garbage. */
export const versionText = pick(['0', '1', '2', '3', '5', '"1"', '"2"', '-1', 'abc', '', '1.5', '99999999999999999999', ' 2 ']);

// ---------------------------------------------------------------------------------- bodies

export type Framing = 'length' | 'chunked' | 'chunked-bad' | 'none';

export const value: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 6, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  { weight: 3, arbitrary: fc.integer({ min: 65, max: 400 }).map((n) => new Uint8Array(n).fill(0x76)) },
  { weight: 1, arbitrary: fc.integer({ min: 401, max: 5000 }).map((n) => new Uint8Array(n).fill(0x77)) },
  { weight: 1, arbitrary: pick([Buffer.from('héllo wörld', 'utf8'), Buffer.from('{"json":true}'), Buffer.from('\r\n\r\n'), new Uint8Array([0xff, 0xfe, 0])]) },
);
export const framing: fc.Arbitrary<Framing> = fc.oneof(
  { weight: 16, arbitrary: fc.constant('length' as const) },
  { weight: 2, arbitrary: pick(['chunked', 'chunked-bad', 'none'] as const) },
);

/** `POST /v1/tenants` bodies: valid ones (known name and quota) and bad ones of each kind. */
export type CreateBody =
  { readonly valid: true; readonly name: string; readonly quota: Record<string, number> } | { readonly valid: false; readonly text: string };

const goodQuota = pick<Record<string, number>>([{}, { keysMax: 2 }, { bytesMax: 300 }, { requestsPerSec: 500 }, { keysMax: 4, bytesMax: 1000 }]);
export const createBody: fc.Arbitrary<CreateBody> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ valid: fc.constant(true as const), name: pick([...FUZZ_NAMES, ...FUZZ_NAMES, ...FIXED]), quota: goodQuota }) },
  {
    weight: 3,
    arbitrary: fc
      .oneof(
        pick(['', 'null', '[]', '{}', '{"name":1}', 'not json', '{"name":"f1","quota":{"keysMax":0}}', '{"name":"f1","quota":{"bytesMax":-1}}']),
        pick([
          '{"name":"f1","quota":{"keysMax":"3"}}',
          '{"name":"f1","extra":1}',
          '{"name":"_sys"}',
          '{"name":"a b"}',
          '{"name":"default","quota":{"nope":1}}',
        ]),
        fc.constant(`{"name":"${'n'.repeat(5000)}"}`),
        fc.string({ maxLength: 40 }),
      )
      .map((text) => ({ valid: false as const, text })),
  },
);

/** Names for delete and rotate: fuzz tenants mostly, the setup's rarely, and names that never exist or cannot. */
export const adminTarget = fc.oneof(
  { weight: 6, arbitrary: pick([...FUZZ_NAMES, 'ghost']) },
  { weight: 1, arbitrary: pick(FIXED) },
  { weight: 1, arbitrary: pick(['%zz', '_system', 'a%20b', '', 'f1/x']) },
);

/** Endpoint ids for the role routes: two valid ones and malformed ones. */
export const ROLE_IDS = ['a'.repeat(64), '0123456789abcdef'.repeat(4)];
export const roleId = fc.oneof({ weight: 4, arbitrary: pick(ROLE_IDS) }, { weight: 1, arbitrary: pick(['abc', 'A'.repeat(64), 'a'.repeat(63), '']) });
export const roleBody = pick(['{"role":"admin"}', '{"role":"operator"}', '{"role":"reader"}', '{"role":"root"}', '{}', 'nope', '{"role":"reader","x":1}']);

// ---------------------------------------------------------------------------------- routes

/** A write's session: none, a fresh client id, the last fresh one's request sent again, or a bad one. */
export type SessionSpec = { readonly kind: 'none' | 'fresh' | 'replay' } | { readonly kind: 'bad'; readonly headers: readonly (readonly [string, string])[] };

const session: fc.Arbitrary<SessionSpec> = fc.oneof(
  { weight: 12, arbitrary: fc.constant({ kind: 'none' as const }) },
  { weight: 2, arbitrary: pick([{ kind: 'fresh' as const }, { kind: 'replay' as const }]) },
  {
    weight: 1,
    arbitrary: pick([
      [['x-client-id', '4503599627370500']],
      [['x-client-seq', '1']],
      [
        ['x-client-id', '12'],
        ['x-client-seq', '1'],
      ],
    ] as const).map((headers) => ({ kind: 'bad' as const, headers })),
  },
);

/** The compare-and-set version of a write, from `?version=`, `if-match`, both, or neither. */
export interface VersionSpec {
  readonly query: string | undefined;
  readonly ifMatch: string | undefined;
}
const version: fc.Arbitrary<VersionSpec> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ query: undefined, ifMatch: undefined }) },
  { weight: 2, arbitrary: fc.record({ query: fc.option(versionText, { nil: undefined }), ifMatch: fc.option(versionText, { nil: undefined }) }) },
);

export type Route =
  | { readonly r: 'put' | 'delete'; readonly key: KeyText; readonly version: VersionSpec; readonly session: SessionSpec }
  | { readonly r: 'get'; readonly key: KeyText; readonly consistency: string | undefined; readonly format: string | undefined; readonly json: boolean }
  | {
      readonly r: 'scan';
      readonly prefix: KeyText | undefined;
      readonly after: KeyText | undefined;
      readonly limit: string | undefined;
      readonly consistency: string | undefined;
      readonly slash: boolean;
    }
  | { readonly r: 'tenant-create'; readonly body: CreateBody }
  | { readonly r: 'tenant-list' }
  | { readonly r: 'tenant-delete' | 'tenant-rotate'; readonly name: string }
  | { readonly r: 'role-list' }
  | { readonly r: 'role'; readonly method: 'GET' | 'PUT' | 'DELETE'; readonly id: string; readonly body: string }
  | { readonly r: 'other'; readonly method: string; readonly path: string; readonly body: string };

const scanPrefix = fc.record({
  bytes: pick(['', 'shared/', 'q/', 'a', 'users/', 'sp', '\u00ff']).map((p) => new Uint8Array(Buffer.from(p, 'latin1'))),
  style: pick(['pct', 'min'] as const),
  upper: fc.boolean(),
});

const OTHER_PATHS: readonly (readonly [string, string])[] = [
  ['GET', '/v1/status'],
  ['GET', '/metrics'],
  ['GET', '/healthz'],
  ['GET', '/v1/placement'],
  ['GET', '/'],
  ['GET', '/ui'],
  ['GET', '/v1/members'],
  ['POST', '/v1/members/invites'],
  ['DELETE', '/v1/members/1'],
  ['DELETE', '/v1/members/7'],
  ['DELETE', `/v1/members/${'b'.repeat(64)}`],
  ['DELETE', '/v1/members/abc'],
  ['GET', '/v1'],
  ['GET', '/nope'],
  ['GET', '*'],
  ['GET', 'http://localhost/v1/placement'],
  ['POST', '/v1/status'],
  ['PUT', '/v1/tenants'],
  ['GET', '/v1/tenants/f1/rotate'],
  ['GET', '/v1/tenants/a/b/c'],
];

export const route: fc.Arbitrary<Route> = fc.oneof(
  { weight: 14, arbitrary: fc.record({ r: fc.constant('put' as const), key: keyText, version, session }) },
  {
    weight: 8,
    arbitrary: fc.record({
      r: fc.constant('get' as const),
      key: keyText,
      consistency,
      format: fc.oneof({ weight: 8, arbitrary: pick([undefined, 'json', 'raw']) }, { weight: 1, arbitrary: fc.constant('xml') }),
      json: fc.boolean(),
    }),
  },
  { weight: 4, arbitrary: fc.record({ r: fc.constant('delete' as const), key: keyText, version, session }) },
  {
    weight: 4,
    arbitrary: fc.record({
      r: fc.constant('scan' as const),
      prefix: fc.option(scanPrefix, { nil: undefined }),
      after: fc.option(keyText, { nil: undefined, freq: 3 }),
      limit: fc.option(pick(LIMITS), { nil: undefined }),
      consistency,
      slash: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ r: fc.constant('tenant-create' as const), body: createBody }) },
  { weight: 1, arbitrary: fc.constant({ r: 'tenant-list' as const }) },
  { weight: 1, arbitrary: fc.record({ r: pick(['tenant-delete', 'tenant-rotate'] as const), name: adminTarget }) },
  { weight: 1, arbitrary: fc.constant({ r: 'role-list' as const }) },
  { weight: 1, arbitrary: fc.record({ r: fc.constant('role' as const), method: pick(['GET', 'PUT', 'DELETE'] as const), id: roleId, body: roleBody }) },
  {
    weight: 3,
    arbitrary: fc
      .record({ r: fc.constant('other' as const), pair: pick(OTHER_PATHS), body: pick(['', '{}', '{"ttlMs":5000}', '{"ttlMs":1}', 'x']) })
      .map(({ pair, body }) => ({ r: 'other' as const, method: pair[0], path: pair[1], body })),
  },
);

/** One fuzz case: who sends it, which tenant it names, what it asks, and the body's bytes and framing. */
export interface FuzzCase {
  readonly auth: Auth;
  readonly naming: Naming;
  readonly route: Route;
  /** Another method instead of the route's (then nothing may succeed but a read as HEAD). */
  readonly method: string | undefined;
  readonly host: string;
  readonly headers: readonly (readonly [string, string])[];
  readonly value: Uint8Array;
  readonly framing: Framing;
  /** The client half-closes (sends FIN) right after its request, as `nc -N` does; most clients keep it open. */
  readonly halfClose: boolean;
}

const extraHeader = fc.oneof(
  {
    weight: 6,
    arbitrary: pick<readonly [string, string]>([
      ['accept', 'application/json'],
      ['accept', '*/*'],
      ['expect', '100-continue'],
      ['x-forwarded-for', '10.0.0.1'],
      ['cookie', 'tenant=alpha'],
    ]),
  },
  { weight: 1, arbitrary: fc.constant<readonly [string, string]>(['expect', 'nonsense']) },
  { weight: 10, arbitrary: fc.constant<readonly [string, string]>(['x-request-id', '1']) },
  {
    weight: 3,
    arbitrary: fc.tuple(
      pick(['x-a', 'x-b', 'user-agent']),
      fc.string({ maxLength: 20 }).map((s) => s.replace(/[\r\n]/g, '')),
    ),
  },
);

export const fuzzCase: fc.Arbitrary<FuzzCase> = fc.record({
  auth,
  naming,
  route,
  method: fc.oneof({ weight: 20, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: pick(['HEAD', 'PATCH', 'OPTIONS', 'FOO']) }),
  host: fc.oneof({ weight: 20, arbitrary: fc.constant('localhost') }, { weight: 1, arbitrary: pick(['attacker.example', '127.0.0.1:1', '']) }),
  headers: fc.array(extraHeader, { maxLength: 2 }),
  value,
  framing,
  halfClose: fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
});
