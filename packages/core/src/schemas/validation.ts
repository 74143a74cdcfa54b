import { z } from 'zod';

/** Problem families, for the summary. */
export const ProblemKind = z.enum(['json', 'format', 'field', 'conversation', 'audio', 'duplicate']);
export type ProblemKind = z.infer<typeof ProblemKind>;

/** One invalid record (or unreadable audio) found by `data validate`, and where. */
export const RecordProblem = z.strictObject({
  kind: ProblemKind,
  file: z.string(),
  /** 1-based line in the file; 0 for problems with the file itself. */
  line: z.number().int().nonnegative(),
  /** Record id where one could be read. */
  id: z.string().optional(),
  /** Field path inside the record (`conversations[0].content[1].audio`); empty for the whole line. */
  path: z.string(),
  reason: z.string(),
});
export type RecordProblem = z.infer<typeof RecordProblem>;

export const FileSummary = z.strictObject({
  file: z.string(),
  format: z.string().nullable(),
  records: z.number().int().nonnegative(),
  valid: z.number().int().nonnegative(),
  invalid: z.number().int().nonnegative(),
  audioFiles: z.number().int().nonnegative(),
  audioSeconds: z.number().nonnegative(),
});

/** `eaglet data validate` result: counts and every problem found. */
export const ValidationReport = z.strictObject({
  ok: z.boolean(),
  files: z.array(FileSummary),
  totals: z.strictObject({
    records: z.number().int().nonnegative(),
    valid: z.number().int().nonnegative(),
    invalid: z.number().int().nonnegative(),
    problems: z.number().int().nonnegative(),
  }),
  /** Problem counts by kind, for the summary table. */
  byKind: z.record(z.string(), z.number().int()),
  problems: z.array(RecordProblem),
});
export type ValidationReport = z.infer<typeof ValidationReport>;

/** A record that did not make it into an output, with the original line so nothing is lost. */
export const RejectRecord = z.strictObject({
  file: z.string(),
  line: z.number().int().nonnegative(),
  id: z.string().optional(),
  path: z.string(),
  reason: z.string(),
  /** The original jsonl line, verbatim. */
  raw: z.string(),
});
export type RejectRecord = z.infer<typeof RejectRecord>;
