import { z } from 'zod';

/**
 * Message content that is either a string or a list of parts. A plain `z.union` would report a
 * bad part as "content is invalid"; this reports it at the part (`content[2].type`).
 */
export function stringOrParts<P extends z.ZodType>(part: P) {
  const parts = z.array(part);
  return z.unknown().transform((value, ctx): string | z.output<P>[] => {
    if (typeof value === 'string') return value;
    if (!Array.isArray(value)) {
      ctx.addIssue({ code: 'custom', message: 'content must be a string or a list of parts', input: value });
      return z.NEVER;
    }
    const result = parts.safeParse(value);
    if (result.success) return result.data;
    for (const issue of result.error.issues)
      ctx.addIssue({ ...issue, input: value } as Parameters<typeof ctx.addIssue>[0]);
    return z.NEVER;
  });
}
