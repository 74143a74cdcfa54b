import { existsSync } from 'node:fs';
import {
  EagletError,
  ExportConfig,
  type ExportConfigInput,
  ExportEngineResult,
  loadRunConfig,
} from '@eaglet/core';
import { runEngine } from '@eaglet/engine';
import type { FlowContext } from '../context.js';

export type ExportResult = ExportEngineResult;

/** `eaglet export`: a training checkpoint (or an output folder's newest) -> exported draft folder(s). */
export async function exportDraft(
  input: ExportConfigInput & { cwd?: string; python?: string },
  ctx: FlowContext = {},
): Promise<ExportResult> {
  const { cwd, python, ...fields } = input;
  const config = loadRunConfig(ExportConfig, { fields, cwd: cwd ?? process.cwd() });
  if (!existsSync(config.checkpoint))
    throw new EagletError('EAGLET_CHECKPOINT_INVALID', `${config.checkpoint} does not exist`);
  const { done } = await runEngine({
    command: 'export',
    config,
    ...(python ? { python } : {}),
    ...(ctx.events ? { onEvent: ctx.events } : {}),
  });
  const parsed = ExportEngineResult.safeParse(done.result);
  if (!parsed.success)
    throw new EagletError(
      'EAGLET_ENGINE_PROTOCOL',
      `engine export returned an unexpected result: ${parsed.error.message}`,
    );
  return parsed.data;
}
