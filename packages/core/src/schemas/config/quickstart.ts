import { z } from 'zod';
import { PathString } from './common.js';

/** `eaglet quickstart`: the whole pipeline on CPU in minutes, on real speech and a small trained model. */
export const QuickstartConfig = z.strictObject({
  /** Work folder for everything the quickstart makes. */
  dir: PathString,
  /** Draft training steps of up to 8 records (150: about 2 minutes on CPU; docs/perf/quality.md). */
  trainSteps: z.number().int().positive().max(100_000).default(150),
  /** Draft tokens per verification step in the benchmark. */
  numSpecTokens: z.number().int().positive().max(16).default(3),
});
export type QuickstartConfig = z.infer<typeof QuickstartConfig>;
export type QuickstartConfigInput = z.input<typeof QuickstartConfig>;
