/**
 * The bearer token of a client command (`kv`, `tenants`, `status`): `--token <t>`, or
 * `--token-file <path>` (a node's admin token is in `<data>/admin.token`), else the
 * `IROH_RAFT_TOKEN` environment variable. One helper, so every command reads it the same way.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from './config.js';

/** The environment variable read when neither flag is given. */
export const TOKEN_ENV = 'IROH_RAFT_TOKEN';

/**
 * The token named by `--token` (`given`) or `--token-file` (`file`: its content, surrounding
 * whitespace dropped, so the file as a node wrote it works), else by `IROH_RAFT_TOKEN` in `env`;
 * undefined when none is (or the variable is empty). Throws ConfigError `InvalidFlag` when both
 * flags are given, the file cannot be read, or the token it holds is empty or not one line of
 * printable ASCII (an HTTP header could not carry it).
 */
export function tokenOf(given: string | undefined, file: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (given !== undefined && file !== undefined) throw new ConfigError('InvalidFlag', '--token and --token-file: give one');
  let token: string | undefined;
  let from: string;
  if (file !== undefined) {
    try {
      token = readFileSync(file, 'utf8').trim();
    } catch (e) {
      throw new ConfigError('InvalidFlag', `--token-file ${file}: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (token === '') throw new ConfigError('InvalidFlag', `--token-file ${file}: the file is empty`);
    from = `--token-file ${file}`;
  } else if (given !== undefined) {
    token = given.trim();
    from = '--token';
  } else {
    token = env[TOKEN_ENV]?.trim();
    if (token === '') return undefined;
    from = TOKEN_ENV;
  }
  if (token !== undefined && !/^[\x21-\x7e]+$/.test(token)) throw new ConfigError('InvalidFlag', `${from}: a token is one word of printable ASCII`);
  return token;
}
