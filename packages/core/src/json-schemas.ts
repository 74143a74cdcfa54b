import { z } from 'zod';
import { CaptureEngineConfig } from './schemas/config/capture.js';
import { DemoBuildConfig } from './schemas/config/quickstart.js';
import { ExportConfig, TrainEngineConfig } from './schemas/config/train.js';
import { EagletEvent } from './schemas/events.js';
import { GenerateRequest, GenerationEngineConfig } from './schemas/generation.js';
import { HubResolveConfig } from './schemas/hub.js';

/**
 * The schemas the Python engine validates against, as JSON Schema generated from the zod
 * schemas (the one source of truth). `tools/gen-engine-schemas.mjs` writes them into the engine
 * package; a test fails when the committed files are stale.
 */
export const ENGINE_SCHEMAS: Record<string, z.ZodType> = {
  train: TrainEngineConfig,
  capture: CaptureEngineConfig,
  export: ExportConfig,
  event: EagletEvent,
  generation: GenerationEngineConfig,
  'generate-request': GenerateRequest,
  hub: HubResolveConfig,
  'build-demo': DemoBuildConfig,
};

export function engineJsonSchemas(): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(ENGINE_SCHEMAS).map(([name, schema]) => [
      name,
      // `output`: the engine receives configs after TS parsed them, with every default filled in.
      z.toJSONSchema(schema, { io: 'output', unrepresentable: 'any' }),
    ]),
  );
}
