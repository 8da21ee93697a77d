/** The join ticket of a node's data directory, without starting the node. */
import { encodeTicket } from '../io/ticket.js';
import { Transport } from '../io/transport/index.js';
import type { DataDir } from './data-dir.js';

/**
 * The node id (from the key in the directory's `node.key`, created if missing) with the address it
 * will listen on. A throwaway endpoint on an ephemeral port reads the key, so `listen` need not be
 * free.
 */
export async function ticketOf(dir: DataDir, listen: { host: string; port: number }): Promise<string> {
  const secretKey = await dir.loadOrCreateKey({ info: () => undefined, warn: () => undefined });
  const t = await Transport.start({ secretKey, bindAddr: '127.0.0.1:0', isMember: () => false, onRecords: () => undefined });
  const id = t.id;
  await t.destroy();
  return encodeTicket({ id, addrs: [`${listen.host}:${listen.port}`] });
}
