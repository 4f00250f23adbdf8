import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Browser, real-VS-Code, PyTorch and Slurm tests need Debian packages: `npm run test:ui` /
    // `test:vscode` / `test:cluster` (CI).
    exclude: ['test/ui/**', 'test/vscode/**', 'test/python/**', 'test/cluster/**', '**/node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
