import { defineConfig } from 'vitest/config';

/**
 * Headless-Chromium tests of the panel page, the real-VS-Code test (see .ci/run) and the PyTorch
 * example's tests under Debian's python3-torch (scripts/python-tools.sh installs it).
 */
export default defineConfig({
  test: {
    include: ['test/ui/**/*.test.ts', 'test/vscode/**/*.test.ts', 'test/python/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 600_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
