// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

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
    // The consensus core is pure: no I/O, no clocks, no ambient randomness, no timers.
    files: ['src/shards/raft/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'src/shards/raft is pure: no Node imports.' },
            {
              group: ['fs', 'fs/*', 'path', 'os', 'crypto', 'events', 'timers', 'timers/*', 'worker_threads', 'child_process', 'net', 'http', 'util', 'stream', 'buffer', 'process'],
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
      'no-restricted-syntax': [
        'error',
        { selector: "NewExpression[callee.name='Date']", message: 'Time is ticks in the raft core.' },
      ],
    },
  },
);
