import { z } from 'zod';

/** A non-empty path string (file or folder); resolved against the config file's folder by the loader. */
export const PathString = z.string().min(1, 'path is empty');

/**
 * A model or dataset input (the user's document's *_NAME_OR_PATH): a local path, resolved like a
 * PathString, or a Hugging Face Hub id (`org/name`, `org/name@revision`, `hf://...`) that the
 * flows bring into the Hub cache. A local path that exists wins over a Hub id of that spelling.
 */
export const PathOrHubId = z.string().min(1, 'path or Hub id is empty');

/** Device placement for engine work. `auto` picks CUDA when present. */
export const Device = z.enum(['auto', 'cpu', 'cuda']);
export type Device = z.infer<typeof Device>;

export const Seed = z.number().int().nonnegative().default(0);

/** Weights and activations of a served model (`auto`: bf16 on CUDA, fp32 on CPU). */
export const Dtype = z.enum(['auto', 'bf16', 'fp16', 'fp32']);
export type Dtype = z.infer<typeof Dtype>;

/** Draft chain length: tokens the Eagle3 draft proposes per verification step (seed: --num_spec_tokens). */
export const NumSpecTokens = z.number().int().positive().default(2);

/** Longest prompt + output in tokens (seed: --max_model_len). */
export const MaxModelLen = z.number().int().positive().default(16384);

/**
 * Settings only one backend understands (`gpuMemoryUtilization` for vLLM, `cpuThreads` for the
 * embedded engine, ...). Core cannot know them: the chosen backend validates them with its own
 * schema (`Backend.optionsSchema`), and errors name `backendOptions.<field>` and the backend.
 */
export const BackendOptions = z.record(z.string(), z.unknown()).default({});
export type BackendOptions = z.infer<typeof BackendOptions>;
