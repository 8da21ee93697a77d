/**
 * The client history a simulator run records, and the shape the linearizability checker reads.
 * Every operation works on one key; keys are independent registers (checked one key at a time).
 */

export type KvInput =
  | { readonly op: 'put'; readonly key: string; readonly value: string }
  | { readonly op: 'get'; readonly key: string }
  /** Sets `value` only if the current value equals `expected` (`null`: the key is absent). */
  | { readonly op: 'cas'; readonly key: string; readonly expected: string | null; readonly value: string };

export type KvOutput =
  /** put: done. */
  | { readonly kind: 'ok' }
  /** get: the value read (`null`: absent). */
  | { readonly kind: 'value'; readonly value: string | null }
  /** cas: whether it swapped. */
  | { readonly kind: 'cas'; readonly swapped: boolean };

export interface Operation {
  /** Unique within a history. */
  readonly id: number;
  /** The client that issued it; a client has at most one operation outstanding. */
  readonly client: number;
  readonly input: KvInput;
  /** Virtual time of the call. */
  readonly call: number;
  /**
   * Virtual time of the return. `Infinity` when the outcome is unknown (timed out, node crashed):
   * the operation may or may not have taken effect, at any time after `call`. Operations that
   * definitely did not take effect are left out of the history.
   */
  readonly ret: number;
  /** Present when `ret` is finite. */
  readonly output?: KvOutput;
}

export type CheckResult =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly key: string;
      /** Operations of that key, for the report. */
      readonly operations: readonly Operation[];
      readonly message: string;
    }
  /** The search budget ran out before an answer: neither proven nor refuted. */
  | { readonly ok: 'unknown'; readonly key: string; readonly message: string };
