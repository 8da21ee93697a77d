/**
 * The layering rules bite: src/io never imports shards, router or workers; src/shards and src/workers
 * stay on their side of the thread boundary; the raft core imports nothing outside itself;
 * the router never imports io/http; src/api imports nothing but src/wire. Each case lints a line
 * of code as if it were an existing file of that folder (so the typed rules have their project),
 * and checks that an offending import is an error and a legal one is not.
 */
import { ESLint } from 'eslint';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const eslint = new ESLint({ cwd: root });

/** Messages of no-restricted-imports for `code` linted as `file`. */
async function restricted(code: string, file: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${root}${file}` });
  const messages = result?.messages ?? [];
  expect(messages.filter((m) => m.fatal === true)).toEqual([]);
  return messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

/** An import of `from`, as a type import and as a re-export: both forms must be judged alike. */
const importsOf = (from: string): string[] => [`import type { X } from '${from}';\nexport type Y = X;\n`, `export { x } from '${from}';\n`];

type Case = readonly [file: string, from: string];

async function expectForbidden(cases: readonly Case[], message: RegExp): Promise<void> {
  for (const [file, from] of cases) {
    for (const code of importsOf(from)) {
      const hits = await restricted(code, file);
      expect(hits, `${file} importing ${from}`).toHaveLength(1);
      expect(hits[0]).toMatch(message);
    }
  }
}

async function expectAllowed(cases: readonly Case[]): Promise<void> {
  for (const [file, from] of cases) {
    for (const code of importsOf(from)) expect(await restricted(code, file), `${file} importing ${from}`).toEqual([]);
  }
}

describe('src/io never imports shards, router or workers', () => {
  test('forbidden', async () => {
    await expectForbidden(
      [
        ['src/io/http/routes.ts', '../../shards/raft/index.js'],
        ['src/io/http/server.ts', '../../shards/host.js'],
        ['src/io/http/server.ts', '../../router/router.js'],
        ['src/io/http/request.ts', '../../workers/pool.js'],
        ['src/io/ticket.ts', '../shards/codec.js'],
        ['src/io/ticket.ts', '../router/placement.js'],
        ['src/io/transport.ts', '../shards/kv.js'],
        ['src/io/transport.ts', '../workers/ring.js'],
      ],
      /src\/io is the outside world/,
    );
  });

  test('allowed: api, wire, its own files, Node', async () => {
    await expectAllowed([
      ['src/io/http/server.ts', '../../api/index.js'],
      ['src/io/http/server.ts', '../../wire/frame.js'],
      ['src/io/http/server.ts', './errors.js'],
      ['src/io/ticket.ts', 'node:net'],
      ['src/io/transport.ts', '../wire/frame.js'],
    ]);
  });

  test('the transport is no exception: it may not import the shards either', async () => {
    await expectForbidden([['src/io/transport.ts', '../shards/kv.js']], /shards/);
  });
});

describe('src/router never imports io/http', () => {
  test('forbidden', async () => {
    await expectForbidden(
      [
        ['src/router/router.ts', '../io/http/index.js'],
        ['src/router/router.ts', '../io/http/server.js'],
        ['src/router/placement.ts', '../io/http/errors.js'],
      ],
      /never imports the HTTP layer/,
    );
  });

  test('allowed: api, wire, workers', async () => {
    await expectAllowed([
      ['src/router/router.ts', '../api/index.js'],
      ['src/router/router.ts', '../wire/frame.js'],
      ['src/router/router.ts', '../workers/pool.js'],
    ]);
  });
});

describe('src/api imports nothing but src/wire', () => {
  test('forbidden: other folders, the shared errors module, Node, packages, a way round through ./..', async () => {
    await expectForbidden(
      [
        ['src/api/service.ts', '../shards/host.js'],
        ['src/api/service.ts', '../io/http/index.js'],
        ['src/api/service.ts', '../router/router.js'],
        ['src/api/service.ts', '../workers/pool.js'],
        ['src/api/service.ts', '../errors.js'],
        ['src/api/errors.ts', 'node:buffer'],
        ['src/api/errors.ts', 'msgpackr'],
        ['src/api/errors.ts', './../shards/kv.js'],
        ['src/api/errors.ts', '../wirex/frame.js'],
      ],
      /src\/api imports nothing but src\/wire/,
    );
  });

  test('allowed: wire and its own files', async () => {
    await expectAllowed([
      ['src/api/service.ts', '../wire/frame.js'],
      ['src/api/service.ts', './consistency.js'],
      ['src/api/index.ts', './errors.js'],
    ]);
  });
});

describe('src/shards never imports io, router, workers, main or api', () => {
  test('forbidden', async () => {
    await expectForbidden(
      [
        ['src/shards/host.ts', '../io/http/server.js'],
        ['src/shards/host.ts', '../router/router.js'],
        ['src/shards/store.ts', '../workers/pool.js'],
        ['src/shards/store.ts', '../main/config.js'],
        ['src/shards/kv/machine.ts', '../../api/index.js'],
      ],
      /src\/shards runs inside a worker/,
    );
  });

  test('allowed: raft, wire, its own files, Node', async () => {
    await expectAllowed([
      ['src/shards/host.ts', './raft/index.js'],
      ['src/shards/host.ts', '../wire/index.js'],
      ['src/shards/kv/machine.ts', '../state-machine.js'],
      ['src/shards/store.ts', 'node:fs'],
    ]);
  });
});

describe('the raft core imports nothing outside itself', () => {
  test('forbidden: the rest of src/shards, other folders', async () => {
    await expectForbidden(
      [
        ['src/shards/raft/raft.ts', '../host.js'],
        ['src/shards/raft/raft.ts', '../kv/index.js'],
        ['src/shards/raft/log.ts', '../../wire/index.js'],
        ['src/shards/raft/log.ts', '../../io/ticket.js'],
      ],
      /src\/shards\/raft imports nothing outside itself/,
    );
  });

  test('allowed: its own files and the shared error base', async () => {
    await expectAllowed([
      ['src/shards/raft/raft.ts', './log.js'],
      ['src/shards/raft/errors.ts', '../../errors.js'],
    ]);
  });
});

describe('src/workers never imports io, router or main', () => {
  test('forbidden', async () => {
    await expectForbidden(
      [
        ['src/workers/pool.ts', '../io/transport/index.js'],
        ['src/workers/worker.ts', '../router/router.js'],
        ['src/workers/pool.ts', '../main/config.js'],
      ],
      /src\/workers is the thread boundary/,
    );
  });

  test('allowed: shards, wire, its own files', async () => {
    await expectAllowed([
      ['src/workers/worker.ts', '../shards/host.js'],
      ['src/workers/pool.ts', '../wire/index.js'],
      ['src/workers/pool.ts', './ring.js'],
    ]);
  });
});
