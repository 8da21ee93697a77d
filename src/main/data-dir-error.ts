import { CodedError } from '../errors.js';

/**
 * `DataDirLocked`: another live process holds the directory. `ClusterMismatch`: the directory
 * belongs to a cluster started with other settings. `BadKeyFile`: `node.key` cannot be read or
 * holds no key. `StoresLost`: the node's stores are gone but its identity has served (the amnesia
 * guard). `UnkeyedPlacement`: the directory's cluster places keys with the unkeyed hash, and
 * `--unkeyed-placement allow` was not given.
 */
export class DataDirError extends CodedError<'DataDirLocked' | 'ClusterMismatch' | 'BadKeyFile' | 'StoresLost' | 'UnkeyedPlacement'> {
  override readonly name = 'DataDirError';
}
