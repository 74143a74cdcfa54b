import { z } from 'zod';
import { runEngine } from './run.js';

/** Result of `python -m eaglet_engine env`. */
export const EngineEnv = z.object({
  python: z.string(),
  executable: z.string(),
  platform: z.string(),
  packages: z.record(z.string(), z.string()),
  cuda: z.object({ available: z.boolean(), version: z.string().nullable(), bf16: z.boolean() }),
  gpus: z.array(
    z.object({ index: z.number(), name: z.string(), memoryGiB: z.number(), capability: z.string() }),
  ),
  cpuThreads: z.number(),
});
export type EngineEnv = z.infer<typeof EngineEnv>;

export async function engineEnv(options: { python?: string } = {}): Promise<EngineEnv> {
  const { done } = await runEngine({ command: 'env', ...(options.python ? { python: options.python } : {}) });
  return EngineEnv.parse(done.result);
}
