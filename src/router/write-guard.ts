/**
 * What may stop the router from taking client writes: the node's disk-space alarm
 * (src/main/disk-alarm.ts). While it refuses, a write is answered `NoSpace` and never proposed.
 */
export interface WriteGuard {
  /** Undefined while writes are taken; else the message of the `NoSpace` answer. */
  blockedReason(): string | undefined;
  /** Shown in GET /v1/status as `disk`. */
  status(): unknown;
}
