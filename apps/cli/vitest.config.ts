import { defineConfig, mergeConfig } from 'vitest/config';
import shared from '../../vitest.shared.ts';

// CLI tests run the built `eaglet` binary (bin/run.js -> dist), as users do; nx builds first.
export default mergeConfig(shared, defineConfig({ test: { testTimeout: 120_000 } }));
