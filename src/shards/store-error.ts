import { CodedError } from '../errors.js';

/**
 * An operating error of the store: `WorkerCountMismatch` (the data directory was laid out for
 * another worker count), `ShardNotFound`, `ShardExists`, `BadSnapshot` (a snapshot dump that does
 * not decode), `StoreClosed`.
 */
export class StoreError extends CodedError<'WorkerCountMismatch' | 'ShardNotFound' | 'ShardExists' | 'BadSnapshot' | 'StoreClosed'> {
  override readonly name = 'StoreError';
}
