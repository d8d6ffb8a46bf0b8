// Shared flat config: typescript-eslint's type-aware recommended rules plus the house rules
// from STYLE.md (no console in libraries, no enums, no explicit any, no floating promises).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** @param {{ app?: boolean }} [options] */
export function config(options = {}) {
  return tseslint.config(
    { ignores: ['dist/**', 'build/**', 'coverage/**', '**/*.js', '**/*.mjs', '**/*.cjs'] },
    js.configs.recommended,
    ...tseslint.configs.recommendedTypeChecked,
    {
      languageOptions: {
        parserOptions: { projectService: true },
      },
      rules: {
        'no-console': options.app ? 'off' : 'error',
        '@typescript-eslint/no-explicit-any': 'error',
        '@typescript-eslint/no-floating-promises': 'error',
        '@typescript-eslint/consistent-type-imports': 'error',
        '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
        'no-restricted-syntax': [
          'error',
          {
            selector: 'TSEnumDeclaration',
            message: 'Use an `as const` object and a string union instead of an enum.',
          },
          { selector: 'Decorator', message: 'Decorators are not used in this codebase.' },
        ],
        'no-empty': ['error', { allowEmptyCatch: false }],
      },
    },
    {
      files: ['**/*.test.ts', 'test/**/*.ts'],
      rules: {
        'no-console': 'off',
        '@typescript-eslint/no-non-null-assertion': 'off',
        '@typescript-eslint/unbound-method': 'off',
        // Tests use vitest's asymmetric matchers (typed any) and exact RFC test vectors.
        '@typescript-eslint/no-unsafe-assignment': 'off',
        '@typescript-eslint/no-unsafe-call': 'off',
        '@typescript-eslint/no-unsafe-member-access': 'off',
        '@typescript-eslint/no-unsafe-argument': 'off',
        '@typescript-eslint/no-base-to-string': 'off',
        'no-loss-of-precision': 'off',
      },
    },
  );
}

export default config();
