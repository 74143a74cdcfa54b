import { PathString } from '@eaglet/core';
import { z } from 'zod';

/**
 * The vLLM backend's own settings (`backendOptions` of bench and serve, `--backend-option
 * key=value`). Where vLLM has a default of its own, the field is optional and absent means vLLM's.
 */
export const VllmBackendOptions = z.strictObject({
  /**
   * Python interpreter with vLLM installed. Absent: EAGLET_VLLM_PYTHON, the `python` of the `vllm`
   * on PATH, or eaglet's CPU test environment.
   */
  vllmPython: PathString.optional(),
  /** Fraction of GPU memory vLLM may use (`gpu_memory_utilization`; absent: vLLM's default). */
  gpuMemoryUtilization: z.number().gt(0).max(1).optional(),
  /** No CUDA graphs (slower, starts faster). */
  enforceEager: z.boolean().default(false),
  /** Audio clips allowed per prompt (`limit_mm_per_prompt`; the seed uses 1). */
  maxAudiosPerPrompt: z.number().int().positive().default(1),
  /** Extra `speculative_config` keys (e.g. draft_tensor_parallel_size), passed through. */
  speculativeConfig: z.record(z.string(), z.unknown()).default({}),
  /** bench only: extra keyword arguments for `LLM(...)`, passed through. */
  engineArgs: z.record(z.string(), z.unknown()).default({}),
  /** serve only: extra `vllm serve` arguments, passed through verbatim (e.g. `--dtype=float32`). */
  extraArgs: z.array(z.string()).default([]),
});
export type VllmBackendOptions = z.infer<typeof VllmBackendOptions>;
