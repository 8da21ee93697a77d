/**
 * The auth-on HTTP fuzz's requests as bytes (http-fuzz-auth.test.ts): a {@link FuzzCase} made
 * into a raw HTTP/1.1 request once its tokens are known, with what the runner needs to judge the
 * answer (the principal its token stands for, the tenant it names, the key bytes, the value the
 * node receives); and one exchange over a new socket.
 */
import { Buffer } from 'node:buffer';
import { connect } from 'node:net';
import { encodeKey } from './http-fuzz-auth-gen.js';
import type { Auth, FuzzCase, KeyText, Naming, Route } from './http-fuzz-auth-gen.js';
import type { Model, Principal } from './http-fuzz-auth-model.js';

/** A request ready to send and what it means. */
export interface Built {
  readonly c: FuzzCase;
  readonly raw: Buffer;
  readonly method: string;
  readonly path: string;
  readonly principal: Principal;
  /** The token the node reads from the header (undefined: none it accepts), to find the principal again when the bytes are replayed. */
  readonly sent: string | undefined;
  /** The tenant the request names (x-tenant or ?tenant=); `null` when it names two that differ. */
  readonly named: string | undefined | null;
  /** The body the node receives; undefined when its framing is broken. */
  readonly body: Buffer | undefined;
  /** A session write sent again byte for byte (the node answers it from its session, applying nothing). */
  readonly replay?: Built;
}

const forged = (name: string): string => `${name}.${'Qm9yZ2VkLXRva2VuLW5vYm9keS1ob2xkcy1pdA'.padEnd(43, 'A')}`;

/** The token `a` names now, and the `authorization` header carrying it (undefined: none). */
function credentials(a: Auth, m: Model): { header: string | undefined; sent: string | undefined; principal: Principal } {
  const ref = a.token;
  if (ref.kind === 'none') return { header: undefined, sent: undefined, principal: { kind: 'invalid' } };
  let token: string;
  if (ref.kind === 'admin') token = m.adminToken;
  else if (ref.kind === 'forged') token = forged(ref.name);
  else {
    const old = m.stale.get(ref.name)?.at(-1);
    token = (ref.kind === 'current' ? m.tenants.get(ref.name)?.token : undefined) ?? old ?? forged(ref.name);
  }
  const dot = token.indexOf('.');
  const mangled = {
    none: token,
    space: `${token} `,
    extra: `${token}x`,
    cut: token.slice(0, -1),
    swap: `${token.startsWith('alpha.') ? 'beta' : 'alpha'}${token.slice(dot)}`,
    upper: token.toUpperCase(),
  }[a.mangle];
  const sent = a.mangle === 'space' ? token : mangled;
  if (!a.scheme.ok) return { header: `${a.scheme.text}${mangled}`, sent: undefined, principal: { kind: 'invalid' } };
  return { header: `${a.scheme.text}${mangled}`, sent, principal: m.principalOf(sent) };
}

/** `name` in a query: each UTF-8 byte escaped, or as it is. */
const queryName = (name: string, pct: boolean): string => (pct ? encodeKey({ bytes: Buffer.from(name, 'utf8'), style: 'pct', upper: true }) : name);

/** The tenant header and query parameter of `n`, and the name the node reads from them. */
function tenantParts(n: Naming): { header: string | undefined; query: string | undefined; named: string | undefined | null } {
  switch (n.via) {
    case 'none':
      return { header: undefined, query: undefined, named: undefined };
    case 'header':
      return { header: n.name, query: undefined, named: n.name };
    case 'query':
      return { header: undefined, query: queryName(n.name, n.pct), named: n.name };
    case 'both':
      return { header: n.name, query: queryName(n.name, n.pct), named: n.name };
    case 'differ':
      return { header: n.name, query: n.other, named: n.name === n.other ? n.name : null };
  }
}

const keyParam = (k: KeyText | undefined): string | undefined => (k === undefined ? undefined : encodeKey(k));

/** The method, path (without the tenant parameter), extra headers and body text of a route. */
function target(r: Route): { method: string; path: string; params: [string, string | undefined][]; headers: [string, string][]; body?: string } {
  switch (r.r) {
    case 'put':
    case 'delete': {
      const headers: [string, string][] = r.version.ifMatch === undefined ? [] : [['if-match', r.version.ifMatch]];
      if (r.session.kind === 'bad') headers.push(...r.session.headers.map(([h, v]): [string, string] => [h, v]));
      return { method: r.r === 'put' ? 'PUT' : 'DELETE', path: `/v1/kv/${encodeKey(r.key)}`, params: [['version', r.version.query]], headers };
    }
    case 'get': {
      const params: [string, string | undefined][] = [
        ['consistency', r.consistency],
        ['format', r.format],
      ];
      return { method: 'GET', path: `/v1/kv/${encodeKey(r.key)}`, params, headers: r.json ? [['accept', 'application/json']] : [] };
    }
    case 'scan': {
      const params: [string, string | undefined][] = [
        ['prefix', keyParam(r.prefix)],
        ['after', keyParam(r.after)],
        ['limit', r.limit],
        ['consistency', r.consistency],
      ];
      return { method: 'GET', path: r.slash ? '/v1/kv/' : '/v1/kv', params, headers: [] };
    }
    case 'tenant-create':
      return {
        method: 'POST',
        path: '/v1/tenants',
        params: [],
        headers: [],
        body: r.body.valid ? JSON.stringify({ name: r.body.name, quota: r.body.quota }) : r.body.text,
      };
    case 'tenant-list':
      return { method: 'GET', path: '/v1/tenants', params: [], headers: [] };
    case 'tenant-delete':
      return { method: 'DELETE', path: `/v1/tenants/${r.name}`, params: [], headers: [] };
    case 'tenant-rotate':
      return { method: 'POST', path: `/v1/tenants/${r.name}/rotate`, params: [], headers: [] };
    case 'role-list':
      return { method: 'GET', path: '/v1/roles', params: [], headers: [] };
    case 'role':
      return { method: r.method, path: `/v1/roles/${r.id}`, params: [], headers: [], ...(r.method === 'PUT' ? { body: r.body } : {}) };
    case 'other':
      return { method: r.method, path: r.path, params: [], headers: [], body: r.body };
  }
}

/** Header values are sent as latin1 text; a line break would split the request, so it is cut. */
const clean = (v: string): string => v.replace(/[\r\n]/g, '');

/** The request of `c` as bytes, its tokens taken from `m` now; `session`: the fresh client id of a session write. */
export function build(c: FuzzCase, m: Model, session: number): Built {
  const { header, sent, principal } = credentials(c.auth, m);
  const t = target(c.route);
  const tenant = tenantParts(c.naming);
  const params = [...t.params, ['tenant', tenant.query] as [string, string | undefined]].filter((p): p is [string, string] => p[1] !== undefined);
  const path = params.length === 0 ? t.path : `${t.path}?${params.map(([k, v]) => `${k}=${v}`).join('&')}`;
  const method = c.method ?? t.method;
  const lines = [`${method} ${clean(path)} HTTP/1.1`, `host: ${c.host}`, 'connection: close'];
  if (header !== undefined) lines.push(`authorization: ${clean(header)}`);
  if (tenant.header !== undefined) lines.push(`x-tenant: ${clean(tenant.header)}`);
  if ((c.route.r === 'put' || c.route.r === 'delete') && c.route.session.kind === 'fresh') lines.push(`x-client-id: ${session}`, 'x-client-seq: 1');
  for (const [n, v] of [...t.headers, ...c.headers]) lines.push(`${n}: ${clean(v)}`);
  const body = t.body === undefined ? Buffer.from(c.value) : Buffer.from(t.body, 'utf8');
  if (c.framing === 'length') lines.push(`content-length: ${body.length}`);
  if (c.framing === 'chunked' || c.framing === 'chunked-bad') lines.push('transfer-encoding: chunked');
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  let raw: Buffer;
  if (c.framing === 'chunked') raw = Buffer.concat([head, Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
  else if (c.framing === 'chunked-bad') raw = Buffer.concat([head, Buffer.from('zz\r\n'), body]);
  else raw = c.framing === 'none' ? head : Buffer.concat([head, body]);
  const received = c.framing === 'chunked-bad' ? undefined : c.framing === 'none' ? Buffer.alloc(0) : body;
  return { c, raw, method, path, principal, sent, named: tenant.named, body: received };
}

/** One answer: status, headers (names lowercase), body bytes. */
export interface Answer {
  readonly status: number;
  readonly headers: ReadonlyMap<string, string>;
  readonly body: Buffer;
  /** The head as text, for failure messages. */
  readonly head: string;
  /** Bytes after the body the head announced: must be none (one answer per request). */
  readonly trailing: number;
}

/**
 * Sends `raw` to `port` on a new connection (`halfClose`: and ends the sending side at once) and
 * reads until the node closes it; rejects after 10 s without an answer.
 */
export function exchange(port: number, raw: Buffer, halfClose = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer within 10 s to ${JSON.stringify(raw.toString('latin1').slice(0, 300))}`));
    }, 10_000);
    s.on('data', (d: Buffer) => chunks.push(d));
    let failure = '';
    s.on('error', (e) => (failure = String(e)));
    s.on('close', () => {
      clearTimeout(timer);
      let all = Buffer.concat(chunks);
      // An interim 100 Continue may come first (expect: 100-continue); the answer follows it.
      const cont = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n');
      if (all.subarray(0, cont.length).equals(cont)) all = all.subarray(cont.length);
      const at = all.indexOf('\r\n\r\n');
      const head = (at < 0 ? all : all.subarray(0, at)).toString('latin1') + failure;
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(head)?.[1] ?? 0);
      const headers = new Map<string, string>();
      for (const line of head.split('\r\n').slice(1)) {
        const colon = line.indexOf(':');
        if (colon > 0) headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
      }
      const rest = at < 0 ? Buffer.alloc(0) : all.subarray(at + 4);
      const length = Number(headers.get('content-length') ?? NaN);
      const body = Number.isNaN(length) ? rest : rest.subarray(0, length);
      resolve({ status, headers, body, head, trailing: Number.isNaN(length) ? 0 : Math.max(0, rest.length - length) });
    });
    if (halfClose) s.end(raw);
    else s.write(raw);
  });
}
