// Three suites: unit (default `npm test`), integration (needs a Supabase stack
// via SUPABASE_URL) and e2e (a real Chromium via playwright-core). Both stack
// suites start the real Python worker in a globalSetup.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['tests/unit/**/*.test.ts'],
          environment: 'node',
          // Some unit tests spawn tsc or the type generator: seconds on a busy 2-core machine.
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['tests/integration/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // The real worker (python -m worker run) against the stack, when SUPABASE_URL is set.
          globalSetup: ['tests/support/worker-global-setup.ts'],
          // One stack, shared rate limits: run files one after another.
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['tests/e2e/**/*.test.ts'],
          environment: 'node',
          testTimeout: 90_000,
          hookTimeout: 60_000,
          globalSetup: ['tests/support/worker-global-setup.ts'],
          fileParallelism: false,
        },
      },
    ],
  },
});
