import { z } from 'zod';
import { PathString } from './common.js';

/** `eaglet data vocab`: token frequencies over loss-masked tokens -> d2t / t2d mapping. */
export const VocabConfig = z.strictObject({
  /** Prepared dataset folders (outputs of `data prepare`). */
  data: z.array(PathString).min(1),
  /** Output safetensors file. */
  out: PathString,
  draftVocabSize: z.number().int().positive().default(32000),
});
export type VocabConfig = z.infer<typeof VocabConfig>;
export type VocabConfigInput = z.input<typeof VocabConfig>;
