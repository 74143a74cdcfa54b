import { type FieldIssue, PathString, ValidationReport } from '@eaglet/core';
import { quickstart, validateData } from '@eaglet/flows';
import { z } from 'zod';
import { defineJobKind, type JobKind } from './kind.js';

/**
 * `validate`: the config of `eaglet data validate` (its flags, as fields). The flow's own options
 * type is a TS interface; passing the parsed config to `validateData` below is what keeps the two
 * in step (the compiler refuses a mismatch).
 */
export const ValidateJobConfig = z.strictObject({
  /** jsonl files to check. */
  files: z.array(PathString).min(1, 'give at least one jsonl file'),
  /** A format name, or `auto` to detect it per file. */
  format: z.string().min(1).default('auto'),
  /** `train`: every record needs an assistant reply; `regenerate`: replies are optional. */
  purpose: z.enum(['train', 'regenerate']).default('train'),
  /** Probe every audio file with ffprobe. */
  checkAudio: z.boolean().default(true),
});

export const validateKind = defineJobKind({
  kind: 'validate',
  title: 'Validate data',
  description:
    'Checks jsonl files: every invalid record (file, line, field, reason), missing or unreadable audio, and a summary. Same flow as `eaglet data validate`.',
  resource: 'light',
  config: ValidateJobConfig,
  result: ValidationReport,
  example: () => ({
    files: ['data/train.jsonl'],
    format: 'auto',
    purpose: 'train' as const,
    checkAudio: true,
  }),
  check(config, registry) {
    const issues: FieldIssue[] = [];
    const known = registry.ids('format');
    if (config.format !== 'auto' && !known.includes(config.format))
      issues.push({
        path: 'format',
        reason: `unknown format "${config.format}" (known: auto, ${known.join(', ')})`,
      });
    return issues;
  },
  run: ({ registry, config, events, signal }) => validateData(registry, config, { events, signal }),
});

export const QuickstartJobConfig = z.strictObject({
  /** Work folder for everything the quickstart makes. */
  dir: PathString,
});

export const quickstartKind = defineJobKind({
  kind: 'quickstart',
  title: 'Quickstart',
  description:
    'The whole pipeline on CPU on real speech and a tiny random model, as `eaglet quickstart` runs it.',
  resource: 'engine',
  config: QuickstartJobConfig,
  example: () => ({ dir: 'eaglet-quickstart' }),
  run: ({ registry, config, events, signal }) => quickstart(registry, config, { events, signal }),
});

/** Every job kind the server offers, in the order the dashboard lists them. */
export const BUILTIN_JOB_KINDS: ReadonlyArray<JobKind> = [validateKind, quickstartKind] as JobKind[];
