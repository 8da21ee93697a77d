/**
 * The merge of one scan page from the pages of every shard. Each shard answers the keys after
 * `startAfter` in order and may stop early (at the scan limit or its byte budget) with `more`;
 * the client continues after the last key of the merged page. The merged page must therefore end
 * no later than the smallest last key among the shards that stopped early: past it, such a shard
 * has keys it did not send, and a page that went further would make the next page start after
 * them, skipping them for good.
 */
import type { ScanItem, ScanResult } from '../api/index.js';
import { assert } from '../shards/raft/index.js';
import type { ShardId } from '../shards/raft/index.js';

/** What one shard answered: its items in ascending key order, and whether it stopped early. */
export interface ShardScanPage {
  readonly items: readonly ScanItem[];
  /** Keys remain after the last item; a page with `more` holds at least one item (the KV's first item always goes in). */
  readonly more: boolean;
}

/**
 * The merged page: every shard's items up to the cut (the smallest last key among the pages with
 * `more`), in ascending key order, then at most `limit` items and at most `bytesMax` key + value
 * bytes (the first item always goes in, so paging makes progress). `more` when anything was left
 * out, here or by a shard. Keys are unique across pages (a key lives in one shard).
 */
export function mergeScanPages(pages: readonly ShardScanPage[], limit: number, bytesMax: number): ScanResult {
  let cut: Uint8Array | undefined;
  let more = false;
  for (const p of pages) {
    if (!p.more) continue;
    more = true;
    const last = p.items.at(-1);
    // A page that stopped early with no item gives no key to cut at; the KV never answers one.
    assert(last !== undefined, 'scan merge: a shard answered more without any item');
    if (cut === undefined || Buffer.compare(last.key, cut) < 0) cut = last.key;
  }
  const all: ScanItem[] = [];
  for (const p of pages) {
    for (const it of p.items) if (cut === undefined || Buffer.compare(it.key, cut) <= 0) all.push(it);
  }
  all.sort((a, b) => Buffer.compare(a.key, b.key));
  const items: ScanItem[] = [];
  let bytes = 0;
  for (const it of all) {
    const size = it.key.length + it.value.length;
    if (items.length === limit || (items.length > 0 && bytes + size > bytesMax)) {
      more = true;
      break;
    }
    items.push(it);
    bytes += size;
  }
  return { items, more };
}

/**
 * Asks every shard, at most `fanoutMax` at a time, and returns the answers by shard. A bound,
 * because each may answer a full reply record, and a worker holds only so many (its out-ring and
 * outbox) before it refuses work as Overloaded.
 */
export async function fanOut<T>(shards: number, fanoutMax: number, ask: (shard: ShardId) => Promise<T>): Promise<T[]> {
  const parts = new Array<T>(shards);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < shards) {
      const s = next++;
      parts[s] = await ask(s as ShardId);
    }
  };
  await Promise.all(Array.from({ length: Math.min(fanoutMax, shards) }, lane));
  return parts;
}
