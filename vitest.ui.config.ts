import { defineConfig } from 'vitest/config';

/** Headless-Chromium tests of the panel page and the real-VS-Code test (see .ci/run). */
export default defineConfig({
  test: {
    include: ['test/ui/**/*.test.ts', 'test/vscode/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 600_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
