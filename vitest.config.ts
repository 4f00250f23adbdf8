import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Browser and real-VS-Code tests need Debian packages: `npm run test:ui` / `test:vscode` (CI).
    exclude: ['test/ui/**', 'test/vscode/**', '**/node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
