/**
 * No merge-conflict markers in tracked text files: neither the compiler nor Prettier sees one in a
 * README or a comment, so this is where a half-resolved merge is caught.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';

const ROOT = join(import.meta.dirname, '../../..');
const TEXT = /\.(ts|mts|cts|js|mjs|cjs|json|md|yml|yaml|sh|txt)$|(^|\/)\.ci\/run$/;
/** A marker starts a line: seven of <, = or > (the = line alone), as git writes them. */
const MARKER = /^(<{7} |={7}$|>{7} )/m;

export function conflictMarkers(text: string): string[] {
  return text.split('\n').filter((l) => MARKER.test(l));
}

describe('merge-conflict markers', () => {
  test('the check finds each kind of marker and nothing else', () => {
    expect(conflictMarkers('a\n<<<<<<< HEAD\nb\n=======\nc\n>>>>>>> main\n')).toHaveLength(3);
    expect(conflictMarkers('a ======= b\n<<<<<<<x\n== heading\n')).toEqual([]);
  });

  test('no tracked text file holds one', () => {
    const files = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' })
      .split('\n')
      .filter((f) => TEXT.test(f));
    expect(files.length).toBeGreaterThan(50);
    const found = files.flatMap((f) => conflictMarkers(readFileSync(join(ROOT, f), 'utf8')).map((l) => `${f}: ${l}`));
    expect(found).toEqual([]);
  });
});
