import { formatPath } from '@eaglet/core';
import type { z } from 'zod';
import type { ApiError, RequestIssue } from '../schemas.js';

/** An error the API answers with a 4xx: a stable code, a message naming the field, and a hint. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly options: { hint?: string; issues?: RequestIssue[]; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }

  body(): ApiError {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.options.hint ? { hint: this.options.hint } : {}),
        ...(this.options.issues?.length ? { issues: this.options.issues } : {}),
      },
    };
  }
}

/** zod issues of one part of a request as RequestIssues; the message lists them, field first. */
export function invalidRequest(where: RequestIssue['in'], error: z.ZodError, prefix = ''): HttpError {
  const issues: RequestIssue[] = error.issues.flatMap((issue) =>
    // One issue per unknown key, each naming its own field.
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({
          in: where,
          path: formatPath([...issue.path, key], prefix),
          reason: 'unknown field',
        }))
      : [{ in: where, path: formatPath(issue.path, prefix), reason: readable(issue) }],
  );
  const shown = issues
    .slice(0, 5)
    .map((i) => `${i.path || '(whole)'}: ${i.reason}`)
    .join('; ');
  const more = issues.length > 5 ? ` (and ${issues.length - 5} more)` : '';
  return new HttpError(400, 'EAGLET_BAD_REQUEST', `invalid ${where}: ${shown}${more}`, { issues });
}

function readable(issue: z.core.$ZodIssue): string {
  const m = /^Invalid input: expected (.+), received undefined$/.exec(issue.message);
  if (m) return `missing (expected ${m[1]})`;
  return issue.message;
}

export const notFound = (what: string, hint?: string) =>
  new HttpError(404, 'EAGLET_NOT_FOUND', what, hint ? { hint } : {});
