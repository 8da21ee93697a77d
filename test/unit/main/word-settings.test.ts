import { describe, expect, test } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/main/config.js';

// Settings that take one word of a fixed set: each accepts exactly its words, by flag and by
// environment, and refuses anything else with InvalidConfig naming where it came from, the words
// it takes and what it got.
const WORDS = [
  { flag: '--auth', env: 'IROH_RAFT_AUTH', key: 'auth', words: ['on', 'off'] },
  { flag: '--unkeyed-placement', env: 'IROH_RAFT_UNKEYED_PLACEMENT', key: 'unkeyedPlacement', words: ['refuse', 'allow'] },
  { flag: '--log-level', env: 'IROH_RAFT_LOG_LEVEL', key: 'logLevel', words: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
  { flag: '--log-format', env: 'IROH_RAFT_LOG_FORMAT', key: 'logFormat', words: ['json', 'pretty'] },
  { flag: '--helper-threads', env: 'IROH_RAFT_HELPER_THREADS', key: 'helperThreads', words: ['batch', 'normal'] },
] as const;

function refusal(argv: string[], env: Record<string, string>): ConfigError {
  try {
    loadConfig(argv, env);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error(`accepted ${JSON.stringify(argv)} ${JSON.stringify(env)}`);
}

describe.each(WORDS)('$flag', ({ flag, env, key, words }) => {
  test('takes each of its words by flag and by environment', () => {
    for (const w of words) {
      expect(loadConfig([flag, w], {})[key]).toBe(w);
      expect(loadConfig([], { [env]: w })[key]).toBe(w);
    }
  });

  test('an empty flag is refused; an empty variable counts as unset; spaces around a word are trimmed', () => {
    expect(refusal([`${flag}=`], {}).message).toContain(`flag ${flag}: expected one of ${words.join(', ')}, got ""`);
    expect(loadConfig([], { [env]: '' })[key]).toBe(loadConfig([], {})[key]);
    expect(loadConfig([`${flag}= ${words[1]} `], {})[key]).toBe(words[1]);
  });

  test.each(['yes', words[0].toUpperCase(), `${words[0]}x`, `${words[0]},${words[1]}`])('refuses %j', (bad) => {
    const byFlag = refusal([`${flag}=${bad}`], {});
    expect(byFlag.code).toBe('InvalidConfig');
    expect(byFlag.message).toContain(`flag ${flag}: expected one of ${words.join(', ')}, got ${JSON.stringify(bad)}`);
    const byEnv = refusal([], { [env]: bad });
    expect(byEnv.code).toBe('InvalidConfig');
    expect(byEnv.message).toContain(`environment ${env}: expected one of ${words.join(', ')}`);
  });
});
