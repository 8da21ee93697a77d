import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { summarizeProfile } from '../../../bench/profile.js';
import { casRequest, casValueOf, errorCodeOf, getRequest, parseMix, putRequest, readValue, valueOf, versionOf } from '../../../bench/workload.js';

describe('bench workload: requests per API', () => {
  it('iroh-raft: PUT with the raw value, GET with the consistency', () => {
    const v = valueOf('k1', 16);
    expect(putRequest('iroh-raft', 'k1', v)).toEqual({ method: 'PUT', path: '/v1/kv/k1', body: v, contentType: 'application/octet-stream' });
    const g = getRequest('iroh-raft', 'k1', 'lease');
    expect([g.method, g.path, g.body.length]).toEqual(['GET', '/v1/kv/k1?consistency=lease', 0]);
    expect(readValue('iroh-raft', 'abc')).toBe('abc');
  });

  it("etcd: the v3 JSON gateway's put and range with base64 key and value", () => {
    const v = valueOf('a/b', 40);
    const p = putRequest('etcd', 'a/b', v);
    expect([p.method, p.path, p.contentType]).toEqual(['POST', '/v3/kv/put', 'application/json']);
    const body = JSON.parse(p.body.toString()) as { key: string; value: string };
    expect(Buffer.from(body.key, 'base64').toString()).toBe('a/b');
    expect(Buffer.from(body.value, 'base64').equals(v)).toBe(true);
    const lin = JSON.parse(getRequest('etcd', 'a/b', 'linearizable').body.toString()) as Record<string, unknown>;
    expect(lin).toEqual({ key: Buffer.from('a/b').toString('base64') });
    const stale = JSON.parse(getRequest('etcd', 'a/b', 'stale').body.toString()) as Record<string, unknown>;
    expect(stale.serializable).toBe(true);
  });

  it("etcd: a range answer's value, and null when the key is absent", () => {
    const answer = JSON.stringify({
      header: { revision: '2' },
      kvs: [{ key: 'YS9i', value: Buffer.from('hello\u00ff', 'latin1').toString('base64') }],
      count: '1',
    });
    expect(readValue('etcd', answer)).toBe('hello\u00ff');
    expect(readValue('etcd', JSON.stringify({ header: { revision: '2' } }))).toBeNull();
    expect(() => readValue('etcd', 'not json')).toThrow();
  });

  it('error codes: ours, the gateway message, or the status alone', () => {
    expect(errorCodeOf(503, '{"error":{"code":"Overloaded","message":"x"}}')).toBe('503 Overloaded');
    expect(errorCodeOf(400, '{"error":"unexpected EOF","message":"unexpected EOF","code":3}')).toBe('400 unexpected EOF');
    expect(errorCodeOf(502, '<html>')).toBe('502');
  });

  it('compare-and-set: the expected version in the query, a value tied to the new version, versions from both answers', () => {
    const r = casRequest('k', 3, casValueOf('k', 4, 10));
    expect([r.method, r.path]).toEqual(['PUT', '/v1/kv/k?version=3']);
    expect(r.body.toString()).toBe('k#4;k#4;k#');
    expect(casValueOf('k', 4, 10).equals(casValueOf('k', 5, 10))).toBe(false);
    expect(versionOf('{"version":4}')).toBe(4);
    expect(versionOf('{"error":{"version":7,"code":"VersionMismatch","message":"x"}}')).toBe(7);
    expect(versionOf('{"error":{"code":"Overloaded"}}')).toBeUndefined();
    expect(versionOf('nope')).toBeUndefined();
  });

  it('mixes', () => {
    expect(parseMix('cas')).toEqual({ label: 'cas', readPercent: 0, cas: true });
    expect(parseMix('mixed:90/10')).toEqual({ label: 'mixed:90/10', readPercent: 90 });
    expect(parseMix('mixed:90/20')).toBeUndefined();
    expect(parseMix('puts')).toBeUndefined();
  });
});

describe('bench profile summary', () => {
  it('sums self time by area and function, inside the window only', () => {
    const dir = mkdtempSync(join(tmpdir(), 'iroh-raft-profile-'));
    const file = join(dir, 'CPU.20261126.000000.1.0.001.cpuprofile');
    const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 9, columnNumber: 0, scriptId: '1' });
    writeFileSync(
      file,
      JSON.stringify({
        nodes: [
          { id: 1, callFrame: frame('(root)', '') },
          { id: 2, callFrame: frame('writeFrame', 'file:///x/dist/io/transport.js') },
          { id: 3, callFrame: frame('(idle)', '') },
          { id: 4, callFrame: frame('finishTxn', 'file:///x/node_modules/lmdb/write.js') },
        ],
        startTime: 1000,
        endTime: 2000,
        // at 1100, 1200, 1300, 1400, 1500
        samples: [2, 2, 3, 4, 2],
        timeDeltas: [100, 100, 100, 100, 100],
      }),
    );
    const all = summarizeProfile(file);
    expect(all.busyMs).toBeCloseTo(0.4);
    expect(all.areas).toEqual([
      { area: 'transport', ms: 0.3 },
      { area: 'LMDB', ms: 0.1 },
    ]);
    expect(all.functions[0]).toEqual({ fn: 'writeFrame dist/io/transport.js:10', area: 'transport', ms: 0.3 });
    const window = summarizeProfile(file, { fromUs: 1250, toUs: 1450 });
    expect(window.areas).toEqual([{ area: 'LMDB', ms: 0.1 }]);
    expect(window.totalMs).toBeCloseTo(0.2);
  });
});
