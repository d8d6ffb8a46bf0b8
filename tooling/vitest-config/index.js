// Per-package vitest project defaults. Tests import workspace packages through the
// "@opdbus/source" export condition, so they run against src/ without a build.
import { defineProject } from 'vitest/config';

/** @param {string} name @param {import('vitest/config').UserWorkspaceConfig['test']} [test] */
export function project(name, test = {}) {
  return defineProject({
    resolve: { conditions: ['@opdbus/source'] },
    ssr: { resolve: { conditions: ['@opdbus/source'] } },
    test: {
      name,
      include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
      testTimeout: 60_000,
      hookTimeout: 120_000,
      ...test,
    },
  });
}
