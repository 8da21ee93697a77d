/**
 * `iroh-raft key new` and `iroh-raft mgmt`: an operator's identity, and management requests over
 * Iroh with it (ALPN `iroh-raft-mgmt/0`, src/io/mgmt).
 *
 *   iroh-raft key new --out <file>
 *       writes a new Iroh secret key (64 hex characters, mode 0600, never over an existing file)
 *       and prints its endpoint id: the id an admin grants a role to (iroh-raft roles grant).
 *   iroh-raft mgmt <op> [<JSON args>] --ticket <node ticket> --key <file> [--timeout-ms N]
 *       sends one request as the key's endpoint; prints the result as JSON (exit 0), or the
 *       node's `{"error":{code,message}}` on stderr (exit 1; `Forbidden` when the key's endpoint
 *       has no role allowing the op). 2 for bad usage.
 */
import { chmod, open, readFile } from 'node:fs/promises';
import { MgmtClient, MgmtClientError, OPS } from '../io/mgmt/index.js';
import { TicketError, decodeTicket } from '../io/ticket.js';
import type { PeerAddr } from '../io/ticket.js';
import { iroh } from '../io/transport/iroh.js';
import { UsageError, fail, parseFlags } from './cli-flags.js';

const KEY_USAGE = `usage: iroh-raft key new --out <file>
  writes a new Iroh secret key (mode 0600; an existing file is never replaced) and prints its
  endpoint id, for iroh-raft roles grant <endpoint id> <role> and iroh-raft mgmt --key <file>`;

export const MGMT_USAGE = `usage: iroh-raft mgmt <op> [<JSON args>] --ticket <node ticket> --key <key file> [--timeout-ms N]
  ops: ${Object.keys(OPS).join(', ')}
  e.g. iroh-raft mgmt tenants.create '{"name":"acme","quota":{"keysMax":1000}}' --ticket irohraft1... --key me.key
  --ticket      a node's ticket (printed at its start, or by iroh-raft ticket)
  --key         the caller's key file (iroh-raft key new); the node checks the role of its endpoint id
  --timeout-ms  time for connecting and for the reply (default 15000)`;

const KEY_RE = /^[0-9a-f]{64}$/;

/** The endpoint id of a 32-byte secret key. */
export function endpointIdOf(secretKey: Uint8Array): string {
  return iroh.SecretKey.fromBytes(Array.from(secretKey)).public().toString();
}

/** Runs `iroh-raft key ...`; resolves with the exit code. */
export async function keyCommand(argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(KEY_USAGE);
    return 0;
  }
  let out: string;
  try {
    const { words, flags } = parseFlags(argv, new Set(['--out']), 'key');
    if (words.length !== 1 || words[0] !== 'new') throw new UsageError('InvalidFlag', 'key takes one command: new');
    const file = flags.get('--out');
    if (file === undefined) throw new UsageError('InvalidFlag', 'key new needs --out <file>');
    out = file;
  } catch (e) {
    if (e instanceof UsageError) return fail(e.code, e.message, 2);
    throw e;
  }
  const secret = Uint8Array.from(iroh.SecretKey.generate().toBytes());
  try {
    // 'wx': never over an existing key, which may be someone's identity.
    const fh = await open(out, 'wx', 0o600);
    try {
      await fh.writeFile(`${Buffer.from(secret).toString('hex')}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await chmod(out, 0o600);
  } catch (e) {
    return fail('KeyFileUnwritable', `--out ${out}: ${e instanceof Error ? e.message : String(e)}`, 1);
  }
  console.log(endpointIdOf(secret));
  return 0;
}

/** A key file's 32 bytes (64 hex characters, as `key new` and a node's node.key hold them); UsageError otherwise. */
async function readKey(path: string): Promise<Uint8Array> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new UsageError('InvalidFlag', `--key ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const hex = text.trim();
  if (!KEY_RE.test(hex)) throw new UsageError('InvalidFlag', `--key ${path}: not a key file (64 lowercase hex characters)`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

interface MgmtCall {
  readonly op: string;
  readonly args: unknown;
  readonly node: PeerAddr;
  readonly keyPath: string;
  readonly timeoutMs: number;
}

/** The call a `mgmt` command line makes; UsageError for anything else. */
export function parseMgmtArgs(argv: readonly string[]): MgmtCall {
  const { words, flags } = parseFlags(argv, new Set(['--ticket', '--key', '--timeout-ms']), 'mgmt');
  const [op, json, ...extra] = words;
  if (op === undefined) throw new UsageError('InvalidFlag', `mgmt needs an op: ${Object.keys(OPS).join(', ')}`);
  if (extra.length > 0) throw new UsageError('InvalidFlag', `unexpected argument ${JSON.stringify(extra[0])}`);
  let args: unknown;
  if (json !== undefined) {
    try {
      args = JSON.parse(json);
    } catch {
      throw new UsageError('InvalidFlag', `the args must be JSON, got ${JSON.stringify(json.slice(0, 80))}`);
    }
  }
  const ticket = flags.get('--ticket');
  const keyPath = flags.get('--key');
  if (ticket === undefined || keyPath === undefined) throw new UsageError('InvalidFlag', 'mgmt needs --ticket <node ticket> and --key <key file>');
  let node: PeerAddr;
  try {
    node = decodeTicket(ticket);
  } catch (e) {
    throw new UsageError('InvalidFlag', `--ticket: ${e instanceof TicketError ? e.message : String(e)}`);
  }
  const t = flags.get('--timeout-ms') ?? '15000';
  const timeoutMs = /^[1-9][0-9]{0,6}$/.test(t) ? Number(t) : NaN;
  if (!Number.isSafeInteger(timeoutMs)) throw new UsageError('InvalidFlag', `--timeout-ms must be a whole number of ms, 1..9999999, got ${JSON.stringify(t)}`);
  return { op, args, node, keyPath, timeoutMs };
}

/** Runs `iroh-raft mgmt ...`; resolves with the exit code. */
export async function mgmtCommand(argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(MGMT_USAGE);
    return 0;
  }
  let call: MgmtCall;
  let secretKey: Uint8Array;
  try {
    call = parseMgmtArgs(argv);
    secretKey = await readKey(call.keyPath);
  } catch (e) {
    if (e instanceof UsageError) return fail(e.code, e.message, 2);
    throw e;
  }
  let client: MgmtClient | undefined;
  try {
    client = await MgmtClient.connect({ secretKey, node: call.node, connectTimeoutMs: call.timeoutMs });
    const reply = await client.call(call.op, call.args, call.timeoutMs);
    if (!reply.ok) {
      console.error(JSON.stringify({ error: reply.error }));
      return 1;
    }
    console.log(JSON.stringify(reply.result));
    return 0;
  } catch (e) {
    if (e instanceof MgmtClientError) return fail(e.code, e.message, 1);
    throw e;
  } finally {
    await client?.close();
  }
}
