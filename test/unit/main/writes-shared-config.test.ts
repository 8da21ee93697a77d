/** `--writes-shared-max`: a number or `auto`, from the flag, the environment or a config file; anything else refused. */
import { describe, expect, test } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/main/config.js';

describe('--writes-shared-max', () => {
  test('a number, or auto; the flag wins over the environment', () => {
    expect(loadConfig(['--writes-shared-max', '8'], {}).writesSharedMax).toBe(8);
    expect(loadConfig(['--writes-shared-max', 'auto'], {}).writesSharedMax).toBe('auto');
    expect(loadConfig([], { IROH_RAFT_WRITES_SHARED_MAX: ' auto ' }).writesSharedMax).toBe('auto');
    expect(loadConfig(['--writes-shared-max=16'], { IROH_RAFT_WRITES_SHARED_MAX: 'auto' }).writesSharedMax).toBe(16);
  });

  test.each(['0', 'AUTO', 'automatic', '-1', '1.5', ''])('%j is InvalidConfig naming the flag', (v) => {
    expect(() => loadConfig(['--writes-shared-max', v], {})).toThrow(ConfigError);
    expect(() => loadConfig(['--writes-shared-max', v], {})).toThrow(
      expect.objectContaining({ code: 'InvalidConfig', message: expect.stringContaining('--writes-shared-max') as unknown }),
    );
  });
});
