// ESLint (flat config, type-aware), run by `npm run lint` inside `npm test`. A dotfile, given with
// -c, so the repository's top level stays as the README's code layout describes it.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'src/console/public/**', 'test/fixtures/**', 'test/support/*.mjs', '.build/**', 'data/**', 'workspace/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // Values from JSON, YAML and the MCP SDK are `unknown`/`any` by nature; the schema checks them.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/require-await': 'off',
      // A caught value may be rethrown as it is.
      '@typescript-eslint/only-throw-error': ['error', { allowThrowingUnknown: true, allowRethrowing: true }],
      // Messages name values the schema already checked.
      '@typescript-eslint/restrict-template-expressions': 'off',
      // An error that leaves the process says what failed in its own words; a cause could carry a URL with a password.
      'preserve-caught-error': 'off',
      '@typescript-eslint/no-floating-promises': 'error',
      // A timer's callback may return a promise that handles its own rejection.
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      // The MCP SDK's error codes are a string enum, compared with their documented values.
      '@typescript-eslint/no-unsafe-enum-comparison': 'off',
    },
  },
  {
    files: ['test/**/*.ts', 'src/**/*.spec.ts'],
    rules: { '@typescript-eslint/unbound-method': 'off', '@typescript-eslint/no-explicit-any': 'off' },
  },
);
