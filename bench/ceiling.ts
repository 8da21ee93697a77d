/**
 * The ceiling for bench/cluster.ts: a key-value store that does nothing but HTTP, on node:http in
 * one process, with the routes the benchmark uses (PUT and GET /v1/kv/<key>, /healthz). PUT
 * keeps the value in a Map and answers {"version":n}; GET answers the raw value or 404. No
 * replication, no disk, no workers: what the same load generator gets from an HTTP server alone
 * on this machine, so the node's numbers can be read as a share of it.
 *
 *   tsx bench/ceiling.ts [--http 127.0.0.1:0]     prints "ceiling listening: HTTP http://..."
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';

/** Same as the node's HTTP server: bodies above it are refused. */
const BODY_BYTES_MAX = 1024 * 1024 + 1024;

const { values } = parseArgs({ options: { http: { type: 'string', default: '127.0.0.1:0' } } });
const m = /^(.+):(\d+)$/.exec(values.http);
if (!m) {
  console.error(JSON.stringify({ error: { code: 'InvalidFlag', message: `--http: expected host:port, got '${values.http}'` } }));
  process.exit(2);
}
const host = m[1]!;
const port = Number(m[2]);

interface Entry {
  readonly value: Buffer;
  readonly version: number;
}
const store = new Map<string, Entry>();

function reply(res: ServerResponse, status: number, body: string | Buffer, type = 'application/json'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function fail(res: ServerResponse, status: number, code: string, message: string): void {
  reply(res, status, JSON.stringify({ error: { code, message } }));
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (path === '/healthz') return reply(res, 200, '{"ok":true}');
  if (!path.startsWith('/v1/kv/') || path.length === '/v1/kv/'.length) return fail(res, 404, 'NotFound', `no route ${path}`);
  const key = decodeURIComponent(path.slice('/v1/kv/'.length));
  if (req.method === 'GET') {
    const e = store.get(key);
    if (!e) return fail(res, 404, 'KeyNotFound', `no key '${key}'`);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': e.value.length, 'x-version': e.version });
    res.end(e.value);
    return;
  }
  if (req.method !== 'PUT') return fail(res, 405, 'MethodNotAllowed', `${req.method ?? '?'} ${path}`);
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size <= BODY_BYTES_MAX) chunks.push(c);
  });
  req.on('end', () => {
    if (size > BODY_BYTES_MAX) return fail(res, 413, 'PayloadTooLarge', `the body is larger than ${BODY_BYTES_MAX} bytes`);
    const version = (store.get(key)?.version ?? 0) + 1;
    store.set(key, { value: Buffer.concat(chunks, size), version });
    reply(res, 200, `{"version":${version}}`);
  });
}

const server = createServer({ keepAliveTimeout: 5_000 }, handle);
server.listen(port, host, () => {
  const a = server.address() as { address: string; port: number };
  console.log(`ceiling listening: HTTP http://${a.address}:${a.port}`);
});
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
