import { defineConfig, mergeConfig } from 'vitest/config';
import shared from '../../vitest.shared.ts';

// Real servers on loopback ports, real flows, a real Chromium: generous timeouts, one file at a time
// (the machine has two cores and other suites share them).
export default mergeConfig(shared, defineConfig({ test: { testTimeout: 120_000, fileParallelism: false } }));
