// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Layers (DESIGN.md, "Folders: one role each"): each folder imports only what its row allows.
// Patterns match the import text, so relative paths from any depth are caught;
// test/unit/lint/layers-api.test.ts proves that each rule bites.
const ioForbidden = ['**/shards/**', '**/router/**', '**/workers/**'];
const ioMessage = 'src/io is the outside world: it imports wire and api, never shards, router or workers.';
const shardsForbidden = ['**/io', '**/io/**', '**/router', '**/router/**', '**/workers', '**/workers/**', '**/main', '**/main/**', '**/api', '**/api/**'];
const shardsMessage = 'src/shards runs inside a worker: it imports raft and wire, never io, router, workers, main or api.';
const workersForbidden = ['**/io', '**/io/**', '**/router', '**/router/**', '**/main', '**/main/**'];
const workersMessage = 'src/workers is the thread boundary: it imports shards and wire, never io, router or main.';

export default tseslint.config(
  { ignores: ['.scratch/**', 'dist/**', 'node_modules/**', 'bench/results/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['eslint.config.js', 'test/support/*.mjs', 'test/unit/workers/*.mjs', 'test/integration/*.cjs'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      // STYLE 17: a switch over a union names every member, or carries a `default` that says the
      // switch is partial on purpose (a role's step handles its own message types; the rest fall through).
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
    },
  },
  {
    // Size habits: warnings, not errors. What they flag is the roadmap for later splits
    // (a function that outgrew one screen, a file that outgrew one concept; STYLE 3).
    files: ['src/**/*.ts'],
    rules: {
      'max-lines-per-function': ['warn', { max: 70, skipBlankLines: true, skipComments: true }],
      'max-lines': ['warn', { max: 500, skipBlankLines: true, skipComments: true }],
    },
  },
  {
    // Plain JS bootstraps carry no types to check.
    files: ['**/*.mjs', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // CommonJS test hooks, for `node --require` (which, unlike `--import`, also runs in workers).
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', setInterval: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // The wire layer is a leaf: byte layouts that import nothing outside src/wire (no other
    // layer, no package, no Node module), so everything may build on it and it on nothing.
    files: ['src/wire/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!\\./)|(^|/)\\.\\.(/|$)',
              message: 'src/wire is a leaf: it imports only its own modules (./name.js).',
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'Buffer', message: 'src/wire is pure bytes: use Uint8Array and DataView.' },
        { name: 'process', message: 'src/wire is pure bytes: no process access.' },
      ],
    },
  },
  {
    // Listed before the raft core's rule: for src/shards/raft that later, stricter rule replaces this one
    // (test/unit/tooling/lint-purity.test.ts checks it still bites).
    files: ['src/shards/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: shardsForbidden, message: shardsMessage }] }] },
  },
  {
    // The consensus core is pure: no I/O, no clocks, no ambient randomness, no timers.
    files: ['src/shards/raft/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'src/shards/raft is pure: no Node imports.' },
            {
              // Nothing outside the core but the one error base class every layer shares.
              regex: '^\\.\\./(?!\\.\\./errors\\.js$)',
              message: 'src/shards/raft imports nothing outside itself (but src/errors.ts).',
            },
            {
              group: [
                'fs',
                'fs/*',
                'path',
                'os',
                'crypto',
                'events',
                'timers',
                'timers/*',
                'worker_threads',
                'child_process',
                'net',
                'http',
                'util',
                'stream',
                'buffer',
                'process',
              ],
              message: 'src/shards/raft is pure: no Node imports.',
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'setTimeout', message: 'Time is ticks in the raft core.' },
        { name: 'setInterval', message: 'Time is ticks in the raft core.' },
        { name: 'setImmediate', message: 'Time is ticks in the raft core.' },
        { name: 'clearTimeout', message: 'Time is ticks in the raft core.' },
        { name: 'clearInterval', message: 'Time is ticks in the raft core.' },
        { name: 'queueMicrotask', message: 'The raft core is synchronous.' },
        { name: 'performance', message: 'Time is ticks in the raft core.' },
        { name: 'process', message: 'src/shards/raft is pure: no process access.' },
        { name: 'Buffer', message: 'src/shards/raft is pure: use Uint8Array.' },
        { name: 'crypto', message: 'Randomness is a seeded PRNG passed in.' },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'Time is ticks in the raft core.' },
        { object: 'Math', property: 'random', message: 'Randomness is a seeded PRNG passed in.' },
      ],
      'no-restricted-syntax': ['error', { selector: "NewExpression[callee.name='Date']", message: 'Time is ticks in the raft core.' }],
    },
  },
  {
    files: ['src/io/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ioForbidden, message: ioMessage }] }] },
  },
  {
    files: ['src/workers/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: workersForbidden, message: workersMessage }] }] },
  },
  {
    files: ['src/router/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/io/http', '**/io/http/**'], message: 'The router never imports the HTTP layer: the contract between them is src/api.' }] },
      ],
    },
  },
  {
    // The client library (iroh-raft/client) loads in users' processes: its own files, src/wire's
    // pieces, the one error base class (src/errors.ts) and types of src/api; no package and no Node
    // module (global fetch is enough), nothing else of the engine (no lmdb, iroh, pino, prom-client).
    files: ['src/client/**/*.ts'],
    rules: {
      'no-restricted-imports': 'off',
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!\\./[^/]+$|\\.\\./wire/[^/]+$|\\.\\./errors\\.js$|\\.\\./api/[^/]+$)',
              message: 'src/client imports only its own files, src/wire, src/errors.ts and types of src/api.',
            },
            { regex: '^\\.\\./api/', allowTypeImports: true, message: 'src/client takes only types from src/api (import type).' },
          ],
        },
      ],
    },
  },
  {
    // api is the small contract between io/http and the router: its own files and src/wire, nothing else
    // (no Node modules, no packages, no other folder of src).
    files: ['src/api/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^(?!\\./(?!.*\\.\\./)|(?:\\.\\./)+wire/)', message: 'src/api imports nothing but src/wire (and its own files).' }] },
      ],
    },
  },
);
