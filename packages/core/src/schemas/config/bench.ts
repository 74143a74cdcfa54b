import { z } from 'zod';
import {
  BackendOptions,
  Device,
  Dtype,
  MaxModelLen,
  NumSpecTokens,
  PathOrHubId,
  PathString,
} from './common.js';

/**
 * `eaglet bench`: baseline vs Eagle3 on the same prompts. Every flag of the user's benchmark
 * script (the document's vLLM offline benchmark) has a home here (seed name in each comment)
 * with the script's default; the rest are eaglet's own and say so.
 */
export const BenchConfig = z.strictObject({
  /**
   * Backend plugin id (`torch`: the embedded engine; `vllm` where installed). Absent: the
   * registry's default backend, the first one registered (eaglet's built-ins register the embedded
   * torch backend first).
   */
  backend: z.string().min(1).optional(),
  /** Target plugin id. Absent: the target whose `architectures` claim the checkpoint's config.json. */
  target: z.string().min(1).optional(),
  /** seed: --target_model */
  targetModel: PathOrHubId,
  /** seed: --draft_model (required when useEagle). */
  draftModel: PathOrHubId.optional(),
  /**
   * seed: --use_eagle. The seed script runs one mode per call (its default is the baseline);
   * eaglet runs both on the same prompts by default and reports the speedup: `useEagle: false`
   * runs the baseline alone, `baseline: false` Eagle3 alone.
   */
  useEagle: z.boolean().default(true),
  /** eaglet: run the baseline (target alone). */
  baseline: z.boolean().default(true),
  /** seed: --output_file (JSON report; `.md` and `.png` are written beside it). */
  outputFile: PathString,
  /** seed: --test_data_path (jsonl in any registered format; the last user turn of each record is the prompt). */
  testDataPath: PathString,
  /** eaglet: format of the test data (`auto` detects it). */
  format: z.string().default('auto'),
  /** seed: --num_prompts */
  numPrompts: z.number().int().positive().default(100),
  /** seed: --temp */
  temperature: z.number().min(0).default(0),
  /** eaglet: nucleus sampling for temperature > 0 (1 = off, as in the seed). */
  topP: z.number().gt(0).max(1).default(1),
  /** seed: --max_model_len */
  maxModelLen: MaxModelLen,
  /** seed: --output_len (max new tokens per prompt). */
  outputLen: z.number().int().positive().default(1024),
  /** eaglet: stop at the end-of-turn token (the seed's vLLM runs do); false forces outputLen tokens. */
  stopAtEos: z.boolean().default(true),
  /** seed: --max_num_seqs (sequences decoded together; the embedded backend decodes one at a time). */
  maxNumSeqs: z.number().int().positive().default(1),
  /** seed: --num_spec_tokens (draft chain length). */
  numSpecTokens: NumSpecTokens,
  /** seed: --tp (tensor-parallel size). */
  tp: z.number().int().positive().default(1),
  /** seed: --seed */
  seed: z.number().int().nonnegative().default(0),
  /** eaglet: prompts run, unmeasured and a few tokens each, before every measured pass of a mode (kernels, caches). */
  warmupPrompts: z.number().int().nonnegative().default(1),
  /**
   * eaglet: measured rounds. Each round runs every mode once over the same prompts, the order
   * alternating from round to round (baseline first, then Eagle3 first, ...), so load on the
   * machine or a drift over time hits both modes rather than one. The report gives each round's
   * speedup and their spread; 3 is the fewest that can single out one disturbed round.
   */
  rounds: z.number().int().positive().default(3),
  /** eaglet: where the model runs (`auto`: CUDA when present; a vLLM build decides this itself). */
  device: Device.default('auto'),
  /** eaglet: weights and activations (`auto`: bf16 on CUDA, fp32 on CPU; vLLM: the model's own). */
  dtype: Dtype.default('auto'),
  /** eaglet: the chosen backend's own settings, validated by its schema (see BackendOptions). */
  backendOptions: BackendOptions,
});
export type BenchConfig = z.infer<typeof BenchConfig>;
export type BenchConfigInput = z.input<typeof BenchConfig>;
