import { z } from 'zod';
import { PathString } from './common.js';

/** `eaglet quickstart`: the whole pipeline on CPU in minutes, on a target plugin's demo model and data. */
export const QuickstartConfig = z.strictObject({
  /** Work folder for everything the quickstart makes. */
  dir: PathString,
  /** Target plugin whose demo runs (`TargetModel.demo`); absent: the first registered target that has one. */
  target: z.string().min(1).optional(),
  /** Draft training steps (a few hundred: minutes on CPU). */
  trainSteps: z.number().int().positive().max(100_000).default(300),
  /** Draft tokens per verification step in the benchmark. */
  numSpecTokens: z.number().int().positive().max(16).default(3),
});
export type QuickstartConfig = z.infer<typeof QuickstartConfig>;
export type QuickstartConfigInput = z.input<typeof QuickstartConfig>;

/** The engine's `build-demo` command: runs a target plugin's demo builder into a folder. */
export const DemoBuildConfig = z.strictObject({
  /** Python module with `build_demo(out: str, seed: int) -> dict` (the plugin's `TargetDemo.builder`). */
  module: z.string().min(1),
  /** Folder it writes the checkpoint into. */
  out: PathString,
  seed: z.number().int().nonnegative().default(0),
});
export type DemoBuildConfig = z.infer<typeof DemoBuildConfig>;

/** A path inside the demo build folder: relative, and never out of it. */
const BuildRelativePath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.split(/[\\/]/).includes('..'), {
    message: 'must be a path relative to the build folder, inside it',
  });

/**
 * Datasets a demo builder wrote into its build folder (seed-format jsonl files with their audio,
 * paths relative to the folder): what the quickstart trains and measures a draft on.
 */
export const DemoDatasets = z.strictObject({
  /** Conversations the draft trains on (beside the demo data folder's own). */
  train: z.array(BuildRelativePath).min(1),
  /**
   * Conversations no training file holds (other recordings or prompts): the eval split, and the
   * benchmark's prompts.
   */
  heldOut: BuildRelativePath,
});
export type DemoDatasets = z.infer<typeof DemoDatasets>;

/**
 * What a demo builder's `build_demo` returns (the `build-demo` command's result): a summary the
 * quickstart keeps with the cached build (any fields: sizes, timings, checks), and the datasets
 * it wrote, if any.
 */
export const DemoBuildResult = z.looseObject({
  datasets: DemoDatasets.optional(),
});
export type DemoBuildResult = z.infer<typeof DemoBuildResult>;

/**
 * `demo.json` in a target plugin's demo data folder (`TargetDemo.data`): the conversations the
 * quickstart runs on. Audio files are 16 kHz mono 16-bit WAV in the same folder.
 */
export const DemoData = z.strictObject({
  /** Where the recordings come from and under what terms (shown by the quickstart). */
  about: z.string(),
  records: z
    .array(
      z.strictObject({
        id: z.string().min(1),
        /** The user turn's recording (a file in the folder); absent for a text-only demo. */
        audio: z.string().min(1).optional(),
        prompt: z.string().min(1),
        answer: z.string().min(1),
      }),
    )
    .min(1),
  /** Records whose recordings are strung together, with pauses, into one longer than the audio window. */
  longRecording: z
    .strictObject({
      id: z.string().min(1),
      from: z.array(z.string().min(1)).min(1),
      seconds: z.number().positive(),
      gapSeconds: z.number().nonnegative(),
      prompt: z.string().min(1),
    })
    .optional(),
});
export type DemoData = z.infer<typeof DemoData>;
