// Shared vitest settings: tests import workspace packages from source (the `@eaglet/source`
// export condition), so no build is needed before `vitest run`.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['@eaglet/source'] },
  ssr: { resolve: { conditions: ['@eaglet/source'] } },
  test: { testTimeout: 60_000, hookTimeout: 120_000, include: ['src/**/*.test.ts', 'test/**/*.test.ts'] },
});
