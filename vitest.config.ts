import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Browser, real-VS-Code and PyTorch tests need Debian packages: `npm run test:ui` / `test:vscode` (CI).
    exclude: ['test/ui/**', 'test/vscode/**', 'test/python/**', '**/node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
