import { Histogram } from './histogram.js';
import type { OpResult } from './workload.js';

/** One operation's figures in a load run: latencies, answers by HTTP status, error codes. */
export class OpStats {
  readonly latency = new Histogram();
  readonly statuses = new Map<number, number>();
  readonly errorCodes = new Map<string, number>();

  toJSON(): OpResult {
    return {
      latency: this.latency.toJSON(),
      statuses: Object.fromEntries([...this.statuses].map(([s, n]) => [String(s), n])),
      errorCodes: Object.fromEntries(this.errorCodes),
    };
  }
}
