import { CodedError } from '../errors.js';

/**
 * An operating error of the store: `WorkerCountMismatch` (the data directory was laid out for
 * another worker count), `ShardNotFound`, `ShardExists`, `BadSnapshot` (a snapshot dump that does
 * not decode), `StoreClosed`, `BadWal` (a write-ahead log record that passed its checksum and does
 * not decode), `StoreFailed` (a logged turn threw half way: its memory no longer matches the disk).
 */
export class StoreError extends CodedError<'WorkerCountMismatch' | 'ShardNotFound' | 'ShardExists' | 'BadSnapshot' | 'StoreClosed' | 'BadWal' | 'StoreFailed'> {
  override readonly name = 'StoreError';
}
