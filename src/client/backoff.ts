/** How long the client waits before another attempt: exponential, capped, with full jitter. */

export interface RetryOptions {
  /** Attempts per call at most, the first included. Default 10. */
  readonly attemptsMax?: number;
  /** Wait before the second attempt at most, in ms; doubles per attempt. Default 20. */
  readonly baseMs?: number;
  /** Longest wait between two attempts, in ms. Default 1,000. */
  readonly maxMs?: number;
  /**
   * Longest one attempt may take, in ms, so a node that accepted the connection and went silent
   * costs one attempt, not the call. Default 6,000 (the node's own request deadline is 5 s).
   */
  readonly attemptTimeoutMs?: number;
}

export const RETRY_DEFAULTS: Required<RetryOptions> = { attemptsMax: 10, baseMs: 20, maxMs: 1_000, attemptTimeoutMs: 6_000 };

/**
 * The wait after failed attempt `attempt` (0 = the first), in ms: uniform in [0, min(maxMs,
 * baseMs * 2^attempt)] ("full jitter"), so clients that failed together do not retry together;
 * at least `floorMs` (a server's retry-after, capped at maxMs). `random` in [0, 1).
 */
export function backoffMs(attempt: number, o: Required<RetryOptions>, floorMs = 0, random: () => number = Math.random): number {
  const ceiling = Math.min(o.maxMs, o.baseMs * 2 ** Math.min(attempt, 30));
  return Math.max(Math.min(floorMs, o.maxMs), Math.floor(random() * ceiling));
}

/** Resolves after `ms`, or rejects with the signal's reason when it fires first. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const done = (): void => {
      clearTimeout(t);
      signal.removeEventListener('abort', onAbort);
    };
    const onAbort = (): void => {
      done();
      reject(signal.reason as Error);
    };
    const t = setTimeout(() => {
      done();
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
