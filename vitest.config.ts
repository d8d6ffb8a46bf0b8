import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*', 'tooling/docs'],
    globalSetup: ['./packages/sandbox/test/globalSetup.ts'],
  },
});
