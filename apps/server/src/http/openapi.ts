import { z } from 'zod';
import { ApiError } from '../schemas.js';
import type { AnyRoute } from './route.js';

type Json = Record<string, unknown>;

export interface OpenApiInfo {
  title: string;
  version: string;
  description: string;
}

/**
 * The OpenAPI 3.1 document of a route table, generated from the same zod schemas that validate
 * the requests. Named schemas (`named`) become components; request bodies use the schemas' input
 * side (defaults optional), responses their output side (defaults filled in).
 */
export function openApiDocument(
  routes: readonly AnyRoute[],
  info: OpenApiInfo,
  named: ReadonlyMap<z.ZodType, string>,
): Json {
  const components: Record<string, Json> = {};
  const registry = z.registry<{ id: string }>();
  for (const [schema, id] of named) registry.add(schema, { id });

  const convert = (schema: z.ZodType, io: 'input' | 'output'): Json => {
    const json = z.toJSONSchema(schema, {
      io,
      unrepresentable: 'any',
      metadata: registry,
      target: 'draft-2020-12',
    }) as Json;
    const ownId = named.get(schema);
    const defs = (json.$defs ?? {}) as Record<string, Json>;
    delete json.$defs;
    delete json.$schema;
    const renames = new Map<string, string>();
    // A named root comes back either whole or as a $ref to its own entry in $defs.
    const rootIsRef = ownId !== undefined && json.$ref === `#/$defs/${ownId}`;
    const all = ownId && !rootIsRef ? { ...defs, [ownId]: json } : defs;
    for (const [id, def] of Object.entries(all)) renames.set(id, place(id, def, io));
    const fix = (node: unknown): unknown => {
      if (Array.isArray(node)) return node.map(fix);
      if (!node || typeof node !== 'object') return node;
      const out: Json = {};
      for (const [k, v] of Object.entries(node)) {
        if (k === '$ref' && typeof v === 'string' && v.startsWith('#/$defs/')) {
          const id = v.slice('#/$defs/'.length);
          out.$ref = `#/components/schemas/${renames.get(id) ?? id}`;
        } else out[k] = fix(v);
      }
      return out;
    };
    for (const [id, target] of renames) components[target] = fix(all[id]) as Json;
    return ownId ? { $ref: `#/components/schemas/${renames.get(ownId)}` } : (fix(json) as Json);
  };

  /** Components are keyed by id; where a schema's input and output sides differ, the input one is `<id>Input`. */
  const byId = new Map([...named].map(([schema, id]) => [id, schema]));
  const differs = new Map<string, boolean>();
  const place = (id: string, _def: Json, io: 'input' | 'output'): string => {
    if (io === 'output') return id;
    let d = differs.get(id);
    if (d === undefined) {
      const schema = byId.get(id);
      const side = (which: 'input' | 'output') =>
        schema ? JSON.stringify(z.toJSONSchema(schema, { io: which, unrepresentable: 'any' })) : '';
      d = side('input') !== side('output');
      differs.set(id, d);
    }
    return d ? `${id}Input` : id;
  };

  const paths: Record<string, Record<string, Json>> = {};
  for (const route of routes) {
    const path = route.url.replace(/:([A-Za-z_]+)/g, '{$1}');
    const parameters: Json[] = [];
    for (const [where, schema] of [
      ['path', route.params],
      ['query', route.query],
    ] as const) {
      if (!schema) continue;
      for (const [name, field] of Object.entries(
        (schema as z.ZodObject).shape as Record<string, z.ZodType>,
      )) {
        const json = convert(field, 'input');
        const { description, ...fieldSchema } = json as { description?: string };
        parameters.push({
          name,
          in: where,
          required: where === 'path' || !field.safeParse(undefined).success,
          ...(description ? { description } : {}),
          schema: fieldSchema,
        });
      }
    }
    const bodySchema = route.bodyDoc ?? route.body;
    const responses: Json = {
      [route.response.status]: {
        description: route.response.description,
        ...(route.response.schema
          ? { content: { 'application/json': { schema: convert(route.response.schema, 'output') } } }
          : route.response.mediaType
            ? { content: { [route.response.mediaType]: { schema: {} } } }
            : {}),
      },
    };
    const errorRef = convert(ApiError, 'output');
    for (const status of [400, 401, 403, ...(route.errors ?? [])].sort()) {
      responses[status] = {
        description: ERROR_TEXT[status] ?? 'error',
        content: { 'application/json': { schema: errorRef } },
      };
    }
    paths[path] ??= {};
    paths[path]![route.method.toLowerCase()] = {
      operationId: route.operationId,
      summary: route.summary,
      ...(route.description ? { description: route.description } : {}),
      tags: [route.tag],
      ...(route.public ? { security: [] } : {}),
      ...(parameters.length ? { parameters } : {}),
      ...(bodySchema
        ? {
            requestBody: {
              required: true,
              content: { 'application/json': { schema: convert(bodySchema, 'input') } },
            },
          }
        : {}),
      responses,
    };
  }

  return {
    openapi: '3.1.0',
    info,
    servers: [{ url: '/' }],
    security: [{ bearer: [] }, { cookie: [] }, {}],
    paths,
    components: {
      schemas: Object.fromEntries(Object.entries(components).sort(([a], [b]) => (a < b ? -1 : 1))),
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'The server token (required when the server listens beyond 127.0.0.1).',
        },
        cookie: {
          type: 'apiKey',
          in: 'cookie',
          name: 'eaglet_token',
          description: 'Set by POST /api/session; what the dashboard and EventSource use.',
        },
      },
    },
  };
}

const ERROR_TEXT: Record<number, string> = {
  400: 'invalid request: the error names each bad field (`issues`)',
  401: 'missing or wrong token',
  403: 'refused: a path outside the roots, a foreign Origin or Host',
  404: 'no such job, artifact or file',
  409: 'the job is in a state that does not allow this',
  413: 'request body too large',
  415: 'the body must be application/json',
  429: 'too many jobs waiting',
  503: 'the server is shutting down',
};
