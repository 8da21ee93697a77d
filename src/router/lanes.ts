/**
 * The router's own client sessions ("lanes"), for writes that bring none of their own: one
 * session per write in flight, so a retry after a leader change reuses it and a proposal that did
 * get applied is not applied again (while this process runs; a client that wants that across node
 * restarts sends its own session, src/wire/session.ts).
 *
 * Ids are a random block of {@link LANE_BLOCK} per start, so sessions of an earlier run never
 * collide with this one, and all below ROUTER_ID_LIMIT (2^52), so they never meet the ids clients
 * choose.
 */
import { randomInt } from 'node:crypto';
import { ROUTER_ID_LIMIT } from '../wire/index.js';

/** Router session ids come in blocks of this many (one block per start); the lane count is at most this. */
export const LANE_BLOCK = 2 ** 16;

/** One session: `seq` is the sequence of its latest write (0 before the first); it only grows. */
export interface Lane {
  readonly clientId: number;
  seq: number;
}

export class Lanes {
  private readonly free: Lane[] = [];

  /** `count` lanes (requestsMax): 1..LANE_BLOCK, else RangeError. */
  constructor(count: number) {
    if (!Number.isSafeInteger(count) || count < 1 || count > LANE_BLOCK) throw new RangeError(`router: requestsMax must be in 1..${LANE_BLOCK}, got ${count}`);
    const base = randomInt(1, ROUTER_ID_LIMIT / LANE_BLOCK) * LANE_BLOCK;
    for (let i = 0; i < count; i++) this.free.push({ clientId: base + i, seq: 0 });
  }

  /** A free lane, undefined when all are in use. */
  take(): Lane | undefined {
    return this.free.pop();
  }

  give(lane: Lane): void {
    this.free.push(lane);
  }
}
