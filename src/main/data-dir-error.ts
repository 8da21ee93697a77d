import { CodedError } from '../errors.js';

/**
 * `DataDirLocked`: another live process holds the directory. `ClusterMismatch`: the directory
 * belongs to a cluster started with other settings. `BadKeyFile`: `node.key` cannot be read or
 * holds no key.
 */
export class DataDirError extends CodedError<'DataDirLocked' | 'ClusterMismatch' | 'BadKeyFile' | 'StoresLost'> {
  override readonly name = 'DataDirError';
}
