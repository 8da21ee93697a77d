/**
 * `peers.json` (src/main/peers-file.ts): what is written reads back, atomically replaced (no
 * temporary file left, mode 0600), and a missing, unreadable or malformed file is no file (with
 * the reason), never a crash: the addresses are a cache and tickets remain.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { PEERS_FILE, readPeersFile, writePeersFile } from '../../../src/main/peers-file.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function dir(): string {
  const d = mkdtempSync(join(tmpdir(), 'peers-file-'));
  dirs.push(d);
  return d;
}
const A = 'a'.repeat(64);

test('what is written reads back; the write leaves no temporary file and is private', () => {
  const d = dir();
  expect(readPeersFile(d)).toEqual({ stored: undefined });
  const stored = { generation: 1_765_000_000_000, members: { [A]: { generation: 3, addrs: ['127.0.0.1:7001', '[::1]:7001'] } } };
  writePeersFile(d, stored);
  expect(readPeersFile(d)).toEqual({ stored });
  writePeersFile(d, { ...stored, generation: stored.generation + 1 });
  expect(readPeersFile(d).stored?.generation).toBe(stored.generation + 1);
  expect(existsSync(join(d, `${PEERS_FILE}.tmp`))).toBe(false);
  expect(statSync(join(d, PEERS_FILE)).mode & 0o777).toBe(0o600);
  expect(JSON.parse(readFileSync(join(d, PEERS_FILE), 'utf8'))).toMatchObject({ version: 1 });
});

test('a malformed file is ignored with its reason', () => {
  const cases: [string, RegExp][] = [
    ['{not json', /JSON/],
    [JSON.stringify({ version: 2, generation: 1, members: {} }), /version 1/],
    [JSON.stringify({ version: 1, generation: 0, members: {} }), /generation/],
    [JSON.stringify({ version: 1, generation: 1, members: [] }), /members/],
    [JSON.stringify({ version: 1, generation: 1, members: { nothex: { generation: 1, addrs: ['1.1.1.1:1'] } } }), /malformed/],
    [JSON.stringify({ version: 1, generation: 1, members: { [A]: { generation: 1.5, addrs: ['1.1.1.1:1'] } } }), /bad generation/],
    [JSON.stringify({ version: 1, generation: 1, members: { [A]: { generation: 1, addrs: [] } } }), /non-empty/],
    [JSON.stringify({ version: 1, generation: 1, members: { [A]: { generation: 1, addrs: ['example.com:1'] } } }), /host names/],
  ];
  for (const [text, why] of cases) {
    const d = dir();
    writeFileSync(join(d, PEERS_FILE), text);
    const r = readPeersFile(d);
    expect(r.stored, text).toBeUndefined();
    expect(r.why, text).toMatch(why);
  }
});
