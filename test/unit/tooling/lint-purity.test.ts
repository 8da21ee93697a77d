import { ESLint } from 'eslint';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

// The raft core must stay pure; these prove the lint rule bites on each forbidden thing.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const eslint = new ESLint({ cwd: root });

async function rulesHit(code: string, file: string): Promise<string[]> {
  // The text is linted as if it were that (existing) file, so type information is available.
  const [result] = await eslint.lintText(code, { filePath: `${root}${file}` });
  const messages = result?.messages ?? [];
  expect(messages.filter((m) => m.fatal === true)).toEqual([]);
  return messages.map((m) => m.ruleId ?? m.message);
}

describe('purity lint rule for src/shards/raft', () => {
  const cases: [string, string, string][] = [
    ['Date.now', 'export const t = Date.now();\n', 'no-restricted-properties'],
    ['Math.random', 'export const r = Math.random();\n', 'no-restricted-properties'],
    ['new Date()', 'export const d = new Date();\n', 'no-restricted-syntax'],
    ['setTimeout', 'setTimeout(() => 0, 1);\n', 'no-restricted-globals'],
    ['node:fs', "import { readFileSync } from 'node:fs';\nexport const f = readFileSync;\n", 'no-restricted-imports'],
    ['bare fs', "import { readFileSync } from 'fs';\nexport const f = readFileSync;\n", 'no-restricted-imports'],
    ['process', 'export const p = process.pid;\n', 'no-restricted-globals'],
  ];
  for (const [name, code, rule] of cases) {
    test(`forbids ${name} in the core`, async () => {
      expect(await rulesHit(code, 'src/shards/raft/prng.ts')).toContain(rule);
    });
  }

  test('allows the same code outside the core', async () => {
    const hits = await rulesHit('export const t = Date.now() + Math.random();\n', 'src/main/cli.ts');
    expect(hits.filter((r) => r.startsWith('no-restricted'))).toEqual([]);
  });
});
