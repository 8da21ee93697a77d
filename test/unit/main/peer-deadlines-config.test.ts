/** The two deadlines on peer traffic as settings: defaults, flag over environment, bad values refused. */
import { describe, expect, test } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/main/config.js';

describe('--peer-frame-timeout-ms and --snapshot-offer-timeout-ms', () => {
  test('defaults 10000 and 5000; a flag wins over the environment', () => {
    const d = loadConfig([], {});
    expect(d.peerFrameTimeoutMs).toBe(10_000);
    expect(d.snapshotOfferTimeoutMs).toBe(5_000);
    expect(loadConfig(['--peer-frame-timeout-ms', '2500'], { IROH_RAFT_PEER_FRAME_TIMEOUT_MS: '900' }).peerFrameTimeoutMs).toBe(2500);
    expect(loadConfig([], { IROH_RAFT_PEER_FRAME_TIMEOUT_MS: '900' }).peerFrameTimeoutMs).toBe(900);
    expect(loadConfig(['--snapshot-offer-timeout-ms=1500'], { IROH_RAFT_SNAPSHOT_OFFER_TIMEOUT_MS: '700' }).snapshotOfferTimeoutMs).toBe(1500);
    expect(loadConfig([], { IROH_RAFT_SNAPSHOT_OFFER_TIMEOUT_MS: '700' }).snapshotOfferTimeoutMs).toBe(700);
  });

  test.each([
    ['--peer-frame-timeout-ms', '0'],
    ['--peer-frame-timeout-ms', '600001'],
    ['--peer-frame-timeout-ms', 'soon'],
    ['--snapshot-offer-timeout-ms', '0'],
    ['--snapshot-offer-timeout-ms', '2.5'],
    ['--snapshot-offer-timeout-ms', '-3'],
  ])('%s %s is InvalidConfig naming the flag', (flag, v) => {
    expect(() => loadConfig([flag, v], {})).toThrow(ConfigError);
    expect(() => loadConfig([flag, v], {})).toThrow(expect.objectContaining({ code: 'InvalidConfig', message: expect.stringContaining(flag) as unknown }));
  });
});
