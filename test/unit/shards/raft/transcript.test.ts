/**
 * Runs every scenario in testdata/*.txt (see transcript.ts) and compares the log each command
 * produces with the one written under it. `REWRITE=1 npx vitest run test/unit/shards/raft/transcript`
 * writes the actual logs back into the files instead; review the diff before committing it.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { runTranscript } from './transcript.js';

const dir = join(import.meta.dirname, 'testdata');
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.txt'))
  .sort();

describe('raft transcripts (testdata/*.txt)', () => {
  test('there are scenarios to run', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  for (const f of files) {
    test(f, () => {
      const path = join(dir, f);
      const expected = readFileSync(path, 'utf8');
      const actual = runTranscript(expected);
      if (process.env['REWRITE'] === '1') {
        if (actual !== expected) writeFileSync(path, actual);
        return;
      }
      expect(actual, `${f} differs from what the core does now (REWRITE=1 rewrites it)`).toBe(expected);
    });
  }
});
