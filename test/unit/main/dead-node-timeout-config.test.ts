/** The dead-node timeout as a setting: 5 minutes by default, in milliseconds or with a unit, bad values refused. */
import { describe, expect, test } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/main/config.js';

describe('--dead-node-timeout and --dead-node-timeout-ms', () => {
  test('default 5 minutes; a duration with its unit, or milliseconds; a flag wins over the environment', () => {
    expect(loadConfig([], {}).deadNodeTimeoutMs).toBe(300_000);
    expect(loadConfig(['--dead-node-timeout', '10m'], {}).deadNodeTimeoutMs).toBe(600_000);
    expect(loadConfig(['--dead-node-timeout=90s'], {}).deadNodeTimeoutMs).toBe(90_000);
    expect(loadConfig(['--dead-node-timeout', '2h'], {}).deadNodeTimeoutMs).toBe(7_200_000);
    expect(loadConfig(['--dead-node-timeout', '1500ms'], {}).deadNodeTimeoutMs).toBe(1500);
    expect(loadConfig(['--dead-node-timeout-ms', '4000'], {}).deadNodeTimeoutMs).toBe(4000);
    expect(loadConfig([], { IROH_RAFT_DEAD_NODE_TIMEOUT: '1d' }).deadNodeTimeoutMs).toBe(86_400_000);
    expect(loadConfig(['--dead-node-timeout', '3m'], { IROH_RAFT_DEAD_NODE_TIMEOUT: '1d' }).deadNodeTimeoutMs).toBe(180_000);
  });

  test.each([['5'], ['5 minutes'], ['0s'], ['999ms'], ['31d'], ['-1m'], ['1.5m'], ['m']])('--dead-node-timeout %s is InvalidConfig naming the flag', (v) => {
    expect(() => loadConfig(['--dead-node-timeout', v], {})).toThrow(ConfigError);
    expect(() => loadConfig(['--dead-node-timeout', v], {})).toThrow(
      expect.objectContaining({ code: 'InvalidConfig', message: expect.stringContaining('--dead-node-timeout') as unknown }),
    );
  });

  test('both flags at once are refused: they are one setting', () => {
    expect(() => loadConfig(['--dead-node-timeout', '5m', '--dead-node-timeout-ms', '300000'], {})).toThrow(expect.objectContaining({ code: 'InvalidFlag' }));
  });
});
