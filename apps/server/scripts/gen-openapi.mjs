#!/usr/bin/env node
// Writes docs/openapi.json: the OpenAPI document of eaglet's HTTP API, generated from the zod
// schemas of the routes and of every built-in job kind. Run after changing a route or a flow's
// config schema: `node apps/server/scripts/gen-openapi.mjs` (a test fails when the file is stale).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { serverOpenApi } from '@eaglet/server';

const out = join(import.meta.dirname, '..', '..', '..', 'docs', 'openapi.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(await serverOpenApi(), null, 2)}\n`);
console.log(`wrote ${out}`);
