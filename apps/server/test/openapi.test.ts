import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { describe, expect, it } from 'vitest';
import { serverOpenApi } from '../src/index.js';
import { http, startTestServer } from './helpers.js';

const COMMITTED = join(import.meta.dirname, '..', '..', '..', 'docs', 'openapi.json');

describe('the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    const doc = await serverOpenApi();
    const result = await new Validator().validate(structuredClone(doc));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    const ids = Object.values(doc.paths as Record<string, Record<string, { operationId: string }>>).flatMap(
      (p) => Object.values(p).map((op) => op.operationId),
    );
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('describes every API route the server answers, and every $ref resolves', async () => {
    const s = await startTestServer();
    try {
      const served = (await http(s.url, 'GET', '/api/openapi.json')).json;
      const documented = new Set(
        Object.entries(served.paths as Record<string, object>).flatMap(([path, ops]) =>
          Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
        ),
      );
      const api = s.server.routes.filter((r) => r.url.startsWith('/api') && r.method !== 'HEAD');
      expect(api.length).toBeGreaterThanOrEqual(15);
      for (const r of api) {
        const key = `${r.method} ${r.url.replace(/:([A-Za-z]+)/g, '{$1}')}`;
        expect(documented.has(key), key).toBe(true);
      }
      expect(documented.size).toBe(api.length);
      const text = JSON.stringify(served);
      for (const [, name] of text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g))
        expect(served.components.schemas[name!], name).toBeDefined();
      for (const [name, schema] of Object.entries(served.components.schemas))
        expect(JSON.stringify(schema), name).not.toBe(
          JSON.stringify({ $ref: `#/components/schemas/${name}` }),
        );
    } finally {
      await s.close();
    }
  });

  it('is committed up to date in docs/openapi.json (node apps/server/scripts/gen-openapi.mjs)', async () => {
    const fresh = JSON.stringify(await serverOpenApi(), null, 2);
    expect(readFileSync(COMMITTED, 'utf8').trimEnd()).toBe(fresh);
  });
});
