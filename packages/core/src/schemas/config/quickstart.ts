import { z } from 'zod';
import { PathString } from './common.js';

/** `eaglet quickstart`: the whole pipeline on CPU in minutes, on real speech and a tiny random model. */
export const QuickstartConfig = z.strictObject({
  /** Work folder for everything the quickstart makes. */
  dir: PathString,
  /** Draft training steps (a few hundred: minutes on CPU). */
  trainSteps: z.number().int().positive().max(100_000).default(300),
  /** Draft tokens per verification step in the benchmark. */
  numSpecTokens: z.number().int().positive().max(16).default(3),
});
export type QuickstartConfig = z.infer<typeof QuickstartConfig>;
export type QuickstartConfigInput = z.input<typeof QuickstartConfig>;
