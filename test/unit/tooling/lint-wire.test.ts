import { ESLint } from 'eslint';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

// src/wire is a leaf: it imports nothing outside itself. These prove the lint rule bites.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const eslint = new ESLint({ cwd: root, overrideConfigFile: `${root}eslint.config.js` });

async function rulesHit(code: string, file: string): Promise<string[]> {
  // The text is linted as if it were that (existing) file, so type information is available.
  const [result] = await eslint.lintText(code, { filePath: `${root}${file}` });
  const messages = result?.messages ?? [];
  expect(messages.filter((m) => m.fatal === true)).toEqual([]);
  return messages.map((m) => m.ruleId ?? m.message);
}

describe('leaf lint rule for src/wire', () => {
  const forbidden: [string, string][] = [
    ['the raft core', "import { assert } from '../shards/raft/index.js';\nexport const a = assert;\n"],
    ['a type from the raft core', "import type { Message } from '../shards/raft/types.js';\nexport type M = Message;\n"],
    ['the error base class', "import { CodedError } from '../errors.js';\nexport const E = CodedError;\n"],
    ['a re-export from another layer', "export { Ring } from '../workers/ring.js';\n"],
    ['a path that climbs out through ./', "import { Ring } from './../workers/ring.js';\nexport const R = Ring;\n"],
    ['a Node module', "import { randomBytes } from 'node:crypto';\nexport const r = randomBytes;\n"],
    ['a package', "import { pack } from 'msgpackr';\nexport const p = pack;\n"],
  ];
  for (const [name, code] of forbidden) {
    test(`forbids importing ${name}`, async () => {
      expect(await rulesHit(code, 'src/wire/record.ts')).toContain('no-restricted-imports');
    });
  }

  test('forbids Buffer and process', async () => {
    expect(await rulesHit('export const b = Buffer.alloc(1);\n', 'src/wire/bytes.ts')).toContain('no-restricted-globals');
    expect(await rulesHit('export const p = process.pid;\n', 'src/wire/bytes.ts')).toContain('no-restricted-globals');
  });

  test('allows its own modules, and the same imports outside src/wire', async () => {
    const own = await rulesHit("import { ByteWriter } from './bytes.js';\nexport const W = ByteWriter;\n", 'src/wire/record.ts');
    expect(own.filter((r) => r.startsWith('no-restricted'))).toEqual([]);
    const outside = await rulesHit("import { assert } from '../shards/raft/index.js';\nexport const a = assert;\n", 'src/workers/pool.ts');
    expect(outside.filter((r) => r.startsWith('no-restricted'))).toEqual([]);
  });
});
