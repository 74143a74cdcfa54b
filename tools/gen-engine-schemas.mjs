#!/usr/bin/env node
// Writes the JSON Schemas the Python engine validates configs and events against, generated from
// @eaglet/core's zod schemas. Run after changing a schema: `node tools/gen-engine-schemas.mjs`.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { engineJsonSchemas } from '@eaglet/core';

const out = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  'packages/engine/python/eaglet_engine/schemas',
);
mkdirSync(out, { recursive: true });
for (const [name, schema] of Object.entries(engineJsonSchemas())) {
  writeFileSync(join(out, `${name}.schema.json`), `${JSON.stringify(schema, null, 2)}\n`);
  console.log(`wrote ${name}.schema.json`);
}
