/**
 * The id space of client sessions (client id, sequence), shared by the nodes and the client
 * (src/client), so ids chosen by clients never meet the ones a node's router picks for itself.
 *
 * - 0: no session (the shard applies the command every time it is committed).
 * - 1 .. 2^52 - 1: the router's own lanes, for HTTP requests that carry no session. A router picks
 *   a random block of 4,096 of them at each start.
 * - 2^52 .. 2^53 - 1 ({@link CLIENT_ID_MIN} .. {@link CLIENT_ID_MAX}): ids a client chose and sent in
 *   `x-client-id`; a node refuses any other (`InvalidSession`). A client picks 52 random bits and adds
 *   2^52, so two clients meet with odds of about n^2 / 2^53 for n lanes in use.
 * - negative: the shard host's own entries (the log clock), never a client's.
 *
 * A shard keeps one session per client id: the last sequence applied and its reply. A repeat of
 * that sequence gets the stored reply, an older one is refused (`SessionSeqStale`), so a client
 * keeps one write outstanding per id and raises the sequence for each new write. Sessions expire
 * after SESSION_TTL of log time (60 s, src/shards/sessions.ts): retries of one write must end
 * within that.
 */

/** Request header naming the client's session id (decimal). */
export const CLIENT_ID_HEADER = 'x-client-id';
/** Request header naming the write's sequence number in its session (decimal, from 1). */
export const CLIENT_SEQ_HEADER = 'x-client-seq';

/** Least client-chosen session id: 2^52. */
export const CLIENT_ID_MIN = 2 ** 52;
/** Greatest client-chosen session id: 2^53 - 1. */
export const CLIENT_ID_MAX = Number.MAX_SAFE_INTEGER;
/** The router's own session ids are below this (and above 0). */
export const ROUTER_ID_LIMIT = CLIENT_ID_MIN;

/** Whether `id` is a session id a client may choose. */
export function isClientId(id: number): boolean {
  return Number.isSafeInteger(id) && id >= CLIENT_ID_MIN && id <= CLIENT_ID_MAX;
}
