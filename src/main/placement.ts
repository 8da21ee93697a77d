/**
 * The node's side of the cluster's key -> shard function: what cluster.json says at start, the
 * proposal this node makes when it does not know the cluster's choice yet, reading that choice
 * in the background (src/router/placement-record.ts), and recording it in cluster.json so a
 * restart routes at once.
 *
 * - A directory of an older version (cluster.json without `placement`) belongs to a cluster that
 *   placed keys with the unkeyed function: it proposes that, so its data stays where it is.
 * - A directory this version created proposes the keyed hash under 16 fresh random bytes.
 * - Whatever is proposed, the cluster's record decides: the first proposal written wins, and
 *   every node reads the same record.
 */
import { randomBytes } from 'node:crypto';
import { Buffer } from 'node:buffer';
import type { Logger } from 'pino';
import type { KvService } from '../api/index.js';
import { PlacementHash, sameChoice } from '../router/placement-hash.js';
import type { PlacementChoice } from '../router/placement-hash.js';
import { placementOfJson, settlePlacement } from '../router/placement-record.js';
import { KEYED_HASH, PLACEMENT_KEY_BYTES, UNKEYED_HASH } from '../wire/shard-hash.js';
import { DataDirError } from './data-dir.js';
import type { ClusterPlacement, DataDir } from './data-dir.js';

/** cluster.json's placement of a directory that has not read its cluster's choice yet. */
export const PLACEMENT_PENDING: ClusterPlacement = { hash: 'pending' };

/** The node's placement at start: the function when cluster.json has it, and what to propose. */
export interface StartingPlacement {
  readonly hash: PlacementHash;
  /** What this node writes when the cluster has no record: cluster.json's choice when it has one. */
  readonly proposal: PlacementChoice;
}

/**
 * Reads cluster.json's placement (before checkCluster writes a new directory's file): known,
 * pending (new directory: propose a keyed hash) or absent (older directory: propose unkeyed).
 * A cluster whose placement is (or will be proposed) unkeyed starts only with `allowUnkeyed`
 * (`--unkeyed-placement allow`), and is warned about once; DataDirError `UnkeyedPlacement` otherwise.
 */
export function startingPlacement(dir: DataDir, log: Logger, systemOnMeta: boolean, allowUnkeyed: boolean): StartingPlacement {
  const have = dir.readCluster();
  const recorded = have?.placement;
  const known = placementOfJson(recorded);
  if (known !== undefined) {
    if (known.hash === UNKEYED_HASH) checkUnkeyed(dir, log, allowUnkeyed);
    return { hash: new PlacementHash(known, systemOnMeta), proposal: known };
  }
  if (have !== undefined && recorded === undefined) {
    checkUnkeyed(dir, log, allowUnkeyed);
    return { hash: new PlacementHash(undefined, systemOnMeta), proposal: { hash: UNKEYED_HASH } };
  }
  return { hash: new PlacementHash(undefined, systemOnMeta), proposal: { hash: KEYED_HASH, key: randomBytes(PLACEMENT_KEY_BYTES) } };
}

/**
 * Reads the cluster's choice in the background (proposing this node's), then, when cluster.json
 * lacked it, sets it on `start.hash` and records it in cluster.json; when cluster.json had it, the
 * read only checks that the two agree (a copied or edited cluster.json would place keys unlike
 * the other nodes: logged as an error). `stop()` ends the tries (node stop).
 */
export function settleLater(start: StartingPlacement, kv: KvService, dir: DataDir, log: Logger): { stop(): void } {
  const { proposal } = start;
  const known = start.hash.choice;
  const aborter = new AbortController();
  const onFailure = (f: { code: string; message: string }, tries: number): void => {
    // The first tries of a new cluster fail while its shards elect leaders: only a long wait is news.
    if (tries === 20 || tries % 100 === 0) log.warn({ code: f.code, message: f.message, tries }, "still reading the cluster's placement key");
  };
  void settlePlacement({ kv, proposal, signal: aborter.signal, onFailure }).then((choice) => {
    if (choice === undefined) return;
    if (known !== undefined) {
      if (!sameChoice(known, choice))
        log.error(
          { clusterJson: known.hash, record: choice.hash },
          "cluster.json's placement differs from the cluster's record: this node places keys unlike the other nodes. " +
            "Stop it and remove `placement` from its cluster.json, so that it reads the cluster's record at its next start",
        );
      return;
    }
    if (choice.hash === UNKEYED_HASH && proposal.hash === KEYED_HASH) warnUnkeyed(log);
    if (choice.hash === KEYED_HASH && proposal.hash === UNKEYED_HASH)
      log.error(
        "this data directory predates the keyed placement hash, but its cluster's record names the keyed one: keys written here before may not be found",
      );
    start.hash.set(choice);
    try {
      dir.recordPlacement(choice.hash === KEYED_HASH ? { hash: choice.hash, key: Buffer.from(choice.key).toString('hex') } : { hash: choice.hash });
    } catch (err) {
      // Serving goes on (the choice is known); the next start reads the record again.
      log.error({ err }, "could not record the cluster's placement in cluster.json");
    }
    log.info({ hash: choice.hash, proposed: proposal.hash === choice.hash }, "read the cluster's placement; serving client keys");
  });
  return { stop: () => aborter.abort() };
}

/**
 * A directory whose cluster places keys unkeyed: refused unless allowed. Its keys cannot move to
 * the keyed hash in place (every node places by the one function; a key's shard would change under
 * the data), so the message names the ways on: allow it as it is, or copy its keys into a new
 * cluster (`iroh-raft kv scan "" --json` into `iroh-raft kv load`).
 */
function checkUnkeyed(dir: DataDir, log: Logger, allow: boolean): void {
  if (!allow)
    throw new DataDirError(
      'UnkeyedPlacement',
      `${dir.path} belongs to a cluster created before the keyed placement hash: it places keys with the unkeyed hash (${UNKEYED_HASH}), ` +
        'so a tenant can choose keys that all land on one shard. Either start it as it is with --unkeyed-placement allow ' +
        "(on every node of that cluster), or copy its data into a new cluster, which uses the keyed hash: for each tenant, `iroh-raft kv scan '' --json --via <this cluster>` " +
        'piped into `iroh-raft kv load --via <new cluster>` (see the README, "Members and placement").',
    );
  warnUnkeyed(log);
}

function warnUnkeyed(log: Logger): void {
  log.warn(
    { hash: UNKEYED_HASH },
    'placement is unkeyed for this cluster (created before the keyed hash): a tenant can choose keys that all land on one shard. ' +
      'A new cluster places keys with a keyed hash (SipHash-2-4 under a per-cluster key); the data of this one stays where it is.',
  );
}
