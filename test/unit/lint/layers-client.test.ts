/**
 * The client library's layer rule bites: src/client imports its own files, src/wire, the error
 * base class and only types of src/api; never another folder of the engine, a package or a Node
 * module, so `iroh-raft/client` loads nothing heavy (no lmdb, iroh, pino, prom-client). Each case
 * lints a line as if it were src/client/client.ts.
 */
import { ESLint } from 'eslint';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const eslint = new ESLint({ cwd: root });

async function restricted(code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${root}src/client/client.ts` });
  const messages = result?.messages ?? [];
  expect(messages.filter((m) => m.fatal === true)).toEqual([]);
  return messages.filter((m) => m.ruleId === '@typescript-eslint/no-restricted-imports').map((m) => m.message);
}

const valueImport = (from: string): string => `import { x } from '${from}';\nexport const y = x;\n`;
const typeImport = (from: string): string => `import type { X } from '${from}';\nexport type Y = X;\n`;
const reExport = (from: string): string => `export { x } from '${from}';\n`;

describe('src/client imports only its own files, src/wire, src/errors.ts and types of src/api', () => {
  test('forbidden: other folders of the engine, packages, Node modules', async () => {
    for (const from of [
      '../router/router.js',
      '../io/http/index.js',
      '../shards/kv/index.js',
      '../workers/pool.js',
      '../main/cli.js',
      '../wire/../router/router.js',
      'lmdb',
      '@number0/iroh',
      'pino',
      'prom-client',
      'node:http',
      'http',
    ]) {
      for (const code of [valueImport(from), typeImport(from), reExport(from)]) {
        const hits = await restricted(code);
        expect(hits, `${from}: ${code}`).toHaveLength(1);
        expect(hits[0]).toMatch(/src\/client imports only/);
      }
    }
  });

  test('src/api: types only', async () => {
    for (const from of ['../api/errors.js', '../api/index.js']) {
      expect(await restricted(typeImport(from)), from).toEqual([]);
      for (const code of [valueImport(from), reExport(from)]) {
        const hits = await restricted(code);
        expect(hits, code).toHaveLength(1);
        expect(hits[0]).toMatch(/only types from src\/api/);
      }
    }
  });

  test('allowed: its own files, src/wire, the error base class', async () => {
    for (const from of ['./errors.js', '../wire/shard-hash.js', '../wire/session.js', '../errors.js']) {
      for (const code of [valueImport(from), typeImport(from), reExport(from)]) expect(await restricted(code), `${from}: ${code}`).toEqual([]);
    }
  });
});
