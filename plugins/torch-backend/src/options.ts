import { z } from 'zod';

/** The embedded backend's own settings (`backendOptions` of bench and serve, `--backend-option key=value`). */
export const TorchBackendOptions = z.strictObject({
  /** CPU threads of the engine (0: torch's default; tiny models decode faster on 1). */
  cpuThreads: z.number().int().nonnegative().default(0),
});
export type TorchBackendOptions = z.infer<typeof TorchBackendOptions>;
