import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { HttpError, invalidRequest } from './errors.js';

type AnyObject = z.ZodObject<z.ZodRawShape>;

/** A response the route documents: its status, and a zod schema (JSON) or a media type (streams, files). */
export interface ResponseSpec {
  status: number;
  description: string;
  schema?: z.ZodType;
  /** For non-JSON responses: `text/event-stream`, `text/plain`, `application/octet-stream`, ... */
  mediaType?: string;
}

/**
 * One API route, declared once: its zod schemas validate the request (a 400 naming each bad field)
 * and generate the OpenAPI document. Handlers receive parsed, typed inputs.
 */
export interface RouteSpec<P extends AnyObject, Q extends AnyObject, B extends z.ZodType> {
  method: 'GET' | 'POST' | 'DELETE';
  url: string;
  operationId: string;
  summary: string;
  description?: string;
  tag: string;
  params?: P;
  query?: Q;
  body?: B;
  /** The body as the OpenAPI document shows it, when the handler validates it in steps itself. */
  bodyDoc?: z.ZodType;
  response: ResponseSpec;
  /** Error statuses this route can answer (beside 400/401/403 that every API route may). */
  errors?: number[];
  /** Public routes need no token (the dashboard's static files). */
  public?: boolean;
  handler(input: {
    params: z.infer<P>;
    query: z.infer<Q>;
    body: z.infer<B>;
    request: FastifyRequest;
    reply: FastifyReply;
  }): Promise<unknown> | unknown;
}

// biome-ignore lint/suspicious/noExplicitAny: a route table holds routes of every input type
export type AnyRoute = RouteSpec<any, any, any>;

export const defineRoute = <P extends AnyObject, Q extends AnyObject, B extends z.ZodType>(
  spec: RouteSpec<P, Q, B>,
): RouteSpec<P, Q, B> => spec;

/** Registers routes on Fastify with zod validation of params, query and body. */
export function registerRoutes(app: FastifyInstance, routes: readonly AnyRoute[]): void {
  for (const spec of routes) {
    app.route({
      method: spec.method,
      url: spec.url,
      config: { public: spec.public === true },
      handler: async (request, reply) => {
        const params = parse(spec.params ?? NONE, request.params ?? {}, 'params');
        const query = parse(spec.query ?? NONE, request.query ?? {}, 'query');
        const body = spec.body ? parse(spec.body, request.body, 'body') : request.body;
        if (!spec.body && !spec.bodyDoc && !isEmpty(request.body))
          throw new HttpError(400, 'EAGLET_BAD_REQUEST', 'invalid body: this route takes no body', {
            issues: [{ in: 'body', path: '', reason: 'this route takes no body' }],
          });
        const out = await spec.handler({ params, query, body, request, reply });
        // Hijacked (event streams), or answered by the handler itself (a file stream).
        if (out === reply || reply.sent) return reply;
        if (out === undefined) return reply.code(spec.response.status).send();
        return reply.code(spec.response.status).send(out);
      },
    });
  }
}

/** Routes without query fields refuse any (an unknown field is a mistake worth hearing about). */
const NONE = z.strictObject({});

const isEmpty = (body: unknown) =>
  body === undefined ||
  body === null ||
  (typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 0);

function parse(schema: z.ZodType | undefined, value: unknown, where: 'params' | 'query' | 'body'): unknown {
  if (!schema) return value;
  const r = schema.safeParse(value);
  if (!r.success) throw invalidRequest(where, r.error);
  return r.data;
}
