import { z } from 'zod';
import { PathString } from './common.js';

/**
 * `eaglet bench`: baseline vs Eagle3 on the same prompts. Every flag of the user's benchmark
 * script has a home here (seed name in each comment); defaults are the script's.
 */
export const BenchConfig = z.strictObject({
  /** Backend plugin id (`torch` is the embedded default, `vllm` where installed). */
  backend: z.string().default('torch'),
  /** Target plugin id. */
  target: z.string().default('qwen2-audio'),
  /** seed: --target_model */
  targetModel: PathString,
  /** seed: --draft_model (required when useEagle). */
  draftModel: PathString.optional(),
  /** seed: --use_eagle. When both is true (the default), runs baseline and Eagle3 and reports the speedup. */
  useEagle: z.boolean().default(true),
  baseline: z.boolean().default(true),
  /** seed: --output_file (JSON report; .md and .png are written beside it). */
  outputFile: PathString,
  /** seed: --test_data_path */
  testDataPath: PathString,
  /** seed: --num_prompts */
  numPrompts: z.number().int().positive().default(100),
  /** seed: --temp */
  temperature: z.number().min(0).default(0),
  /** seed: --max_model_len */
  maxModelLen: z.number().int().positive().default(16384),
  /** seed: --output_len */
  outputLen: z.number().int().positive().default(1024),
  /** seed: --max_num_seqs */
  maxNumSeqs: z.number().int().positive().default(1),
  /** seed: --num_spec_tokens */
  numSpecTokens: z.number().int().positive().default(2),
  /** seed: --tp */
  tp: z.number().int().positive().default(1),
  /** seed: --seed */
  seed: z.number().int().nonnegative().default(0),
});
export type BenchConfig = z.infer<typeof BenchConfig>;
export type BenchConfigInput = z.input<typeof BenchConfig>;
