import { defineConfig } from 'vitest/config';

// Tests against a real single-node Slurm cluster that scripts/slurm-tools.sh installs and starts
// (`npm run test:cluster`; CI runs it).
export default defineConfig({
  test: {
    include: ['test/cluster/**/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
