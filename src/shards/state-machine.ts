import type { LogIndex, Term } from './raft/index.js';

/**
 * The shard's data database as a state machine sees it while applying: reads see the writes
 * made earlier in the same transaction. Keys are compared bytewise. Keys starting with byte 0xff
 * are reserved for the shard host (client sessions) and must not be written by a state machine.
 */
export interface DataTxn extends DataReader {
  put(key: Uint8Array, value: Uint8Array): void;
  remove(key: Uint8Array): void;
}

/** A read-only view of the shard's data database, consistent as of one applied index. */
export interface DataReader {
  get(key: Uint8Array): Uint8Array | undefined;
  /** Entries with `start <= key < end` in ascending key order, at most `limit` of them. */
  range(start: Uint8Array, end: Uint8Array, limit: number): Iterable<{ readonly key: Uint8Array; readonly value: Uint8Array }>;
}

/** One committed entry handed to {@link StateMachine.apply}. */
export interface AppliedCommand {
  readonly index: LogIndex;
  readonly term: Term;
  /** The command bytes as proposed (client session header already removed). */
  readonly command: Uint8Array;
}

/**
 * A replicated state machine. It must be deterministic: the same commands in the same order give
 * the same state and replies on every replica. It sees each entry's index and term, never the wall
 * clock, randomness or anything outside its data database. Its state lives in the shard's data
 * database, so snapshots (a consistent copy of that database) and restores are done by the host.
 *
 * Errors caused by a command (a failed compare-and-set, a malformed command) are replies, never
 * exceptions: an exception while applying is a bug and crashes the worker.
 */
export interface StateMachine {
  /**
   * Checks a command before it is proposed, so malformed input is refused without entering the
   * log. Returns an error (code and message) or undefined when the command may be proposed.
   */
  validateCommand(command: Uint8Array): { code: string; message: string } | undefined;
  /** Applies one committed command inside the apply transaction; returns the reply bytes. */
  apply(txn: DataTxn, cmd: AppliedCommand): Uint8Array;
  /**
   * Answers a read-only request from the state as of the current applied index. Malformed
   * requests are answered with an error reply, not an exception.
   */
  query(view: DataReader, request: Uint8Array): Uint8Array;
}
