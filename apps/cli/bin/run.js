#!/usr/bin/env node
import { execute, settings } from '@oclif/core';

// Always the compiled commands in dist/: with NODE_ENV=development or test, oclif would otherwise
// look for TypeScript sources (and warn) that an installed package does not ship.
settings.enableAutoTranspile = false;

await execute({ dir: import.meta.url });
