/**
 * `iroh-raft kv`: put, get, delete and scan keys of a running cluster from a shell, through the
 * client library (src/client: leader-aware, retried writes applied once). Output is for scripts:
 * `get` writes the raw value, `put` and `del` one JSON line, `scan` one line per key (tab
 * separated) or JSON lines with `--json`. Errors are one JSON line `{"error":{"code","message"}}`
 * on stderr: exit 2 for bad usage (flags, arguments), 1 for what the cluster answered (the
 * server's stable code, e.g. KeyNotFound, Unreachable, Timeout).
 */
import { readFileSync } from 'node:fs';
import { Client, ClientError } from '../client/index.js';
import type { Bytes, Consistency } from '../client/index.js';
import { ConfigError } from './config.js';
import { tokenOf } from './token-flag.js';

export const KV_USAGE = `usage: iroh-raft kv <put|get|del|scan> ... [--via URL,...] [--tenant T] [--token T | --token-file F] [--timeout-ms N]

  kv put <key> <value>        write a value (also: --file F, or - to read it from stdin); prints {"version":n};
                              --version N: only if the key is at version N (0: absent), else VersionMismatch
  kv get <key>                print the raw value; --json: {"key","value","version","createIndex","modIndex"};
                              --consistency linearizable|lease|stale
  kv del <key>                delete; prints {"deleted":true|false}; --version N (1 or more): only at that version
  kv scan <prefix>            keys with the prefix, "key<TAB>value" per line (--json: one JSON object per line);
                              --limit N (default all), --consistency c
  kv load                     write the keys of JSON lines on stdin, as kv scan --json prints them
                              ({"key","value"}, text or {"base64"}), 16 at a time; prints {"loaded":n};
                              a bad line refuses the whole input before anything is written (BadInput)

  --via URL,...               nodes' HTTP APIs (default http://127.0.0.1:7070; env IROH_RAFT_VIA)
  --tenant T                  tenant (default "default")
  --token T                   bearer token (env IROH_RAFT_TOKEN)
  --token-file F              a file holding it, e.g. <data>/admin.token
  --timeout-ms N              longest time of one request, retries included (default 10000)`;

/** A usage mistake: exit 2. */
class UsageError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Flags each subcommand takes besides the common ones, with whether they take a value. */
const COMMON: Readonly<Record<string, boolean>> = { '--via': true, '--tenant': true, '--token': true, '--token-file': true, '--timeout-ms': true };
const OWN: Readonly<Record<string, Readonly<Record<string, boolean>>>> = {
  put: { '--file': true, '--version': true },
  get: { '--consistency': true, '--json': false },
  del: { '--version': true },
  scan: { '--consistency': true, '--json': false, '--limit': true },
  load: {},
};
const ARITY: Readonly<Record<string, number>> = { put: 2, get: 1, del: 1, scan: 1, load: 0 };

interface Parsed {
  readonly sub: string;
  readonly args: string[];
  readonly flags: Map<string, string>;
}

function parse(argv: readonly string[]): Parsed {
  const [sub, ...rest] = argv;
  if (sub === undefined || !(sub in OWN)) throw new UsageError('UnknownCommand', `kv needs put, get, del, scan or load, got ${JSON.stringify(sub ?? '')}`);
  const known = { ...COMMON, ...OWN[sub] };
  const args: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (!a.startsWith('--')) {
      args.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq < 0 ? a : a.slice(0, eq);
    const takes = known[name];
    if (takes === undefined) throw new UsageError('UnknownFlag', `unknown flag ${name} for kv ${sub}`);
    if (flags.has(name)) throw new UsageError('InvalidFlag', `${name} is given twice`);
    if (!takes) {
      if (eq >= 0) throw new UsageError('InvalidFlag', `${name} takes no value`);
      flags.set(name, '');
      continue;
    }
    const value = eq >= 0 ? a.slice(eq + 1) : rest[++i];
    if (value === undefined) throw new UsageError('InvalidFlag', `${name} needs a value`);
    flags.set(name, value);
  }
  const want = sub === 'put' && flags.has('--file') ? 1 : ARITY[sub]!;
  if (args.length !== want) throw new UsageError('InvalidArgument', `kv ${sub} takes ${want} argument${want === 1 ? '' : 's'}, got ${args.length}`);
  return { sub, args, flags };
}

function positiveInt(flags: Map<string, string>, name: string): number | undefined {
  const v = flags.get(name);
  if (v === undefined) return undefined;
  const n = /^[0-9]{1,9}$/.test(v) ? Number(v) : 0;
  if (n < 1) throw new UsageError('InvalidFlag', `${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

/** `--version N`: a whole number (0 allowed; the client refuses what its command does not take). */
function expectedVersion(flags: Map<string, string>): { expectedVersion?: number } {
  const v = flags.get('--version');
  if (v === undefined) return {};
  if (!/^(0|[1-9][0-9]{0,14})$/.test(v)) throw new UsageError('InvalidFlag', `--version must be a whole number, got ${JSON.stringify(v)}`);
  return { expectedVersion: Number(v) };
}

function consistency(flags: Map<string, string>): Consistency | undefined {
  const c = flags.get('--consistency');
  if (c === undefined) return undefined;
  if (c !== 'linearizable' && c !== 'lease' && c !== 'stale')
    throw new UsageError('InvalidFlag', `--consistency must be linearizable, lease or stale, got ${JSON.stringify(c)}`);
  return c;
}

function clientOf(flags: Map<string, string>, env: NodeJS.ProcessEnv): Client {
  const via = (flags.get('--via') ?? env.IROH_RAFT_VIA ?? 'http://127.0.0.1:7070').split(',').filter((u) => u !== '');
  for (const u of via) if (!/^https?:\/\/[^/]+\/?$/.test(u)) throw new UsageError('InvalidFlag', `--via: ${JSON.stringify(u)} is not an http://host:port URL`);
  let token: string | undefined;
  try {
    token = tokenOf(flags.get('--token'), flags.get('--token-file'), env);
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.code, e.message);
    throw e;
  }
  const tenant = flags.get('--tenant');
  const timeoutMs = positiveInt(flags, '--timeout-ms');
  if (timeoutMs !== undefined && timeoutMs > 50_000) throw new UsageError('InvalidFlag', `--timeout-ms must be at most 50000, got ${timeoutMs}`);
  return new Client({
    endpoints: via,
    ...(token === undefined ? {} : { token }),
    ...(tenant === undefined ? {} : { tenant }),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
}

/** Text when the bytes are UTF-8, else `{ base64 }` (as the HTTP API's JSON does). */
function jsonBytes(b: Uint8Array): string | { base64: string } {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(b);
  } catch {
    return { base64: Buffer.from(b).toString('base64') };
  }
}

async function valueOf(p: Parsed, stdin: () => Promise<Buffer>): Promise<Uint8Array> {
  const file = p.flags.get('--file');
  if (file !== undefined) {
    try {
      return readFileSync(file);
    } catch (e) {
      throw new UsageError('FileUnreadable', `--file ${file}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return p.args[1] === '-' ? stdin() : new TextEncoder().encode(p.args[1]);
}

/** Bytes of a `kv scan --json` field: text, or `{"base64"}`; undefined when it is neither. */
function bytesOfJson(v: unknown): Uint8Array | undefined {
  if (typeof v === 'string') return new TextEncoder().encode(v);
  const b64 = (v as { base64?: unknown } | null)?.base64;
  if (typeof b64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) return undefined;
  return Buffer.from(b64, 'base64');
}

/** The pairs of `kv scan --json` lines; UsageError `BadInput` naming the first bad line. */
function pairsOf(text: string): { key: Uint8Array; value: Uint8Array }[] {
  const out: { key: Uint8Array; value: Uint8Array }[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    let o: { key?: unknown; value?: unknown } | null;
    try {
      o = JSON.parse(line) as { key?: unknown; value?: unknown } | null;
    } catch {
      throw new UsageError('BadInput', `stdin line ${i + 1}: not JSON; nothing was written`);
    }
    const key = bytesOfJson(o?.key);
    const value = bytesOfJson(o?.value);
    if (key === undefined || key.length === 0 || value === undefined)
      throw new UsageError('BadInput', `stdin line ${i + 1}: expected {"key","value"} as kv scan --json prints them; nothing was written`);
    out.push({ key, value });
  }
  return out;
}

/** Writes every pair, 16 at a time; ClientError of the first that fails (after those under way end). */
async function load(client: Client, pairs: readonly { key: Uint8Array; value: Uint8Array }[]): Promise<number> {
  let next = 0;
  let loaded = 0;
  let failed: Error | undefined;
  const lane = async (): Promise<void> => {
    while (failed === undefined && next < pairs.length) {
      const { key, value } = pairs[next++]!;
      try {
        await client.put(key, value);
        loaded++;
      } catch (e) {
        failed ??= e instanceof Error ? e : new Error(String(e));
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, lane));
  if (failed instanceof ClientError)
    throw new ClientError(failed.code, `${failed.message} (${loaded} of ${pairs.length} keys written)`, { status: failed.status });
  if (failed !== undefined) throw failed;
  return loaded;
}

async function runSub(p: Parsed, client: Client, out: (b: Uint8Array | string) => void, stdin: () => Promise<Buffer>): Promise<void> {
  const key = p.args[0]!;
  switch (p.sub) {
    case 'load': {
      const pairs = pairsOf((await stdin()).toString('utf8'));
      out(`${JSON.stringify({ loaded: await load(client, pairs) })}\n`);
      return;
    }
    case 'put':
      out(`${JSON.stringify(await client.put(key, await valueOf(p, stdin), expectedVersion(p.flags)))}\n`);
      return;
    case 'del':
      out(`${JSON.stringify(await client.delete(key, expectedVersion(p.flags)))}\n`);
      return;
    case 'get': {
      const c = consistency(p.flags);
      const g = await client.get(key, c === undefined ? {} : { consistency: c });
      if (g === null) throw new ClientError('KeyNotFound', `no such key: ${key}`, { status: 404 });
      if (p.flags.has('--json')) {
        const { version, createIndex, modIndex } = g;
        out(`${JSON.stringify({ key, value: jsonBytes(g.value), version, createIndex, modIndex })}\n`);
      } else out(g.value);
      return;
    }
    case 'scan': {
      const limit = positiveInt(p.flags, '--limit') ?? Infinity;
      const c = consistency(p.flags);
      let n = 0;
      const line = (k: Bytes, v: Bytes, version: number): string =>
        p.flags.has('--json') ? `${JSON.stringify({ key: jsonBytes(k), value: jsonBytes(v), version })}\n` : `${k.text()}\t${v.text()}\n`;
      for await (const page of client.scan(key, { pageSize: Math.min(1000, limit), ...(c === undefined ? {} : { consistency: c }) })) {
        for (const it of page.items) {
          if (n++ >= limit) return;
          out(line(it.key, it.value, it.version));
        }
        if (n >= limit) return;
      }
      return;
    }
  }
}

export interface KvIo {
  readonly out: (b: Uint8Array | string) => void;
  readonly err: (line: string) => void;
  readonly stdin: () => Promise<Buffer>;
  readonly env: NodeJS.ProcessEnv;
}

/** Runs `iroh-raft kv ...`; the exit code: 0, 1 (the cluster refused or failed), 2 (bad usage). */
export async function runKv(argv: readonly string[], io: KvIo): Promise<number> {
  const fail = (code: string, message: string, exit: number): number => {
    io.err(JSON.stringify({ error: { code, message } }));
    return exit;
  };
  if (argv.length === 0 || argv[0] === 'help' || argv[0] === '--help') {
    io.out(`${KV_USAGE}\n`);
    return argv.length === 0 ? 2 : 0;
  }
  let client: Client | undefined;
  try {
    const p = parse(argv);
    client = clientOf(p.flags, io.env);
    await runSub(p, client, io.out, io.stdin);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) return fail(e.code, e.message, 2);
    if (e instanceof ClientError) return fail(e.code, e.message, e.code === 'InvalidArgument' ? 2 : 1);
    throw e;
  } finally {
    await client?.close();
  }
}

/** Reads all of stdin. */
export async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
