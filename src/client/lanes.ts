/**
 * Session lanes: the client's own sessions (src/wire/session.ts). Each lane is a client id in
 * 2^52..2^53-1 (52 random bits, plus 2^52) and the sequence of its last write. A write takes a
 * free lane for its whole life, retries included, and gives it back after, so a lane never has two
 * writes outstanding (a shard keeps only each session's last reply) and its sequence only grows.
 */
import { CLIENT_ID_MIN } from '../wire/session.js';

/** One session: `seq` is the sequence of the lane's latest write (0 before the first). */
export interface Lane {
  readonly clientId: number;
  seq: number;
}

/** A random client id in CLIENT_ID_MIN..CLIENT_ID_MAX, from the platform's CSPRNG. */
export function randomClientId(): number {
  const w = new Uint32Array(2);
  crypto.getRandomValues(w);
  return CLIENT_ID_MIN + (w[0]! & 0xfffff) * 2 ** 32 + w[1]!;
}

export class Lanes {
  private readonly free: Lane[] = [];
  /** Lanes made so far; at most lanesMax. */
  private made = 0;
  /** Writes waiting for a lane, first come first served; at most waitingMax. */
  private readonly waiters: ((lane: Lane) => void)[] = [];

  constructor(
    /** Lanes at most: writes in flight at once. */
    private readonly lanesMax: number,
    /** Writes waiting for a lane at most; one more is refused (take returns undefined). */
    private readonly waitingMax: number,
  ) {}

  /** A free lane (made when fewer than lanesMax exist), or one when a write gives it back; undefined when too many wait. */
  take(): Promise<Lane> | undefined {
    const lane = this.free.pop();
    if (lane !== undefined) return Promise.resolve(lane);
    if (this.made < this.lanesMax) {
      this.made++;
      return Promise.resolve({ clientId: randomClientId(), seq: 0 });
    }
    if (this.waiters.length >= this.waitingMax) return undefined;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Gives `lane` back: to the first waiting write, else to the free list. */
  give(lane: Lane): void {
    const next = this.waiters.shift();
    if (next !== undefined) next(lane);
    else this.free.push(lane);
  }
}
