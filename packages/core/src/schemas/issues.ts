import type { z } from 'zod';

/** One problem with one field of one input record: what the user needs to find and fix it. */
export interface FieldIssue {
  /** Field path inside the record, e.g. `conversations[1].content[0].audio`; empty for the whole record. */
  path: string;
  reason: string;
}

/** Renders a zod path (['conversations', 1, 'content']) the way users write it: conversations[1].content. */
export function formatPath(path: ReadonlyArray<PropertyKey>, prefix = ''): string {
  let out = prefix;
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out;
}

/** zod issues as FieldIssues, one per problem, unions flattened to their most specific branch. */
export function zodIssues(error: z.ZodError, prefix = ''): FieldIssue[] {
  return error.issues.map((issue) => ({
    path: formatPath(issue.path, prefix),
    reason: humanReason(issue.message),
  }));
}

/** zod says `Invalid input: expected string, received undefined`; users say `missing (expected string)`. */
function humanReason(message: string): string {
  const m = /^Invalid input: expected (.+), received undefined$/.exec(message);
  return m ? `missing (expected ${m[1]})` : message;
}
