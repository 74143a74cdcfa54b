import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  CAPTURE_FILES,
  CaptureConfig,
  type CaptureConfigInput,
  CaptureEngineConfig,
  CaptureEngineResult,
  CaptureManifest,
  checkAuxLayerIds,
  EagletError,
  engineTarget,
  type PluginRegistry,
  PREPARED_FILES,
  PreparedManifest,
  readJsonFile,
  resolveTarget,
} from '@eaglet/core';
import { runEngine } from '@eaglet/engine';
import type { FlowContext } from '../context.js';
import { claimOutputFolder } from '../util/output-folder.js';
import { modelSource } from './sources.js';

/** What `eaglet data capture` returns. */
export interface CaptureResult extends CaptureEngineResult {
  manifest: CaptureManifest;
}

/**
 * `eaglet data capture`: the frozen target runs once over prepared data; the aux layers' hidden
 * states and the final hidden state on the loss rows go to bf16 safetensors shards with a manifest
 * (`CaptureManifest`) that ties them to the target and the prepared data. A train config whose
 * trainData and evalData name capture folders then trains without loading the target.
 *
 * Like prepare, a capture commits shard by shard: killed at any moment (or stopped by a full
 * disk), the same command continues from the last commit and writes byte-identical files; a
 * folder holding another capture is refused. Under `nprocPerNode` > 1 torchrun runs one rank per
 * GPU, each writing every n-th shard. The output folder is locked for the run.
 */
export async function captureData(
  registry: PluginRegistry,
  input: CaptureConfigInput,
  ctx: FlowContext = {},
): Promise<CaptureResult> {
  const config = CaptureConfig.parse(input);
  const model = await modelSource(config.model, ctx, 'model');
  const target = resolveTarget(registry, config.target, model.path);
  const info = await target.inspect(model.path);
  const data = config.data.map((folder, i) => {
    const path = join(folder, PREPARED_FILES.manifest);
    if (!existsSync(path))
      throw new EagletError(
        'EAGLET_DATA_INVALID',
        `data[${i}]: ${folder} is not a prepared dataset (no manifest.json)`,
        {
          hint: existsSync(join(folder, PREPARED_FILES.progress))
            ? 'its `eaglet data prepare` run did not finish: rerun it to resume'
            : 'make it with `eaglet data prepare`',
        },
      );
    const manifest = PreparedManifest.parse(readJsonFile(path, 'the prepared folder (prepare it again)'));
    if (manifest.target !== target.id)
      throw new EagletError(
        'EAGLET_DATA_INVALID',
        `data[${i}]: ${folder} was prepared for target ${manifest.target}, the model is a ${target.id} target`,
      );
    return resolve(folder);
  });
  const auxLayerIds = checkAuxLayerIds(config.auxLayerIds ?? info.auxLayerIds, info.numLayers, 'auxLayerIds');
  const { target: _id, model: _model, auxLayerIds: _aux, ...rest } = config;
  const engineConfig = CaptureEngineConfig.parse({
    ...rest,
    data,
    out: resolve(config.out),
    target: engineTarget(target, info, model.path, auxLayerIds, model.hub),
  });
  const output = claimOutputFolder(engineConfig.out, 'eaglet data capture');
  try {
    let done: { stopped: boolean; result?: unknown } | undefined;
    try {
      done = (
        await runEngine({
          command: 'capture',
          config: engineConfig,
          nprocPerNode: engineConfig.nprocPerNode,
          pythonPath: target.enginePath ? [target.enginePath] : [],
          onEvent: (event) => {
            if (event.type === 'done') done = event;
            ctx.events?.(event);
          },
          onSpawn: (pid) => output.share(pid),
          ...(ctx.signal ? { signal: ctx.signal } : {}),
        })
      ).done;
    } catch (e) {
      // Under torchrun a stop ends the launcher with a signal exit code after the ranks stopped cleanly.
      if (!(done?.stopped && ctx.signal?.aborted)) throw e;
    }
    if (done?.stopped)
      throw new EagletError(
        'EAGLET_CANCELLED',
        `capture stopped; the shards written so far are committed in ${engineConfig.out}`,
        {
          hint: 'run the same command again to resume from there',
        },
      );
    const result = CaptureEngineResult.safeParse(done?.result);
    if (!result.success)
      throw new EagletError(
        'EAGLET_ENGINE_PROTOCOL',
        `engine capture returned an unexpected result: ${result.error.message}`,
      );
    const manifest = CaptureManifest.parse(
      readJsonFile(join(engineConfig.out, CAPTURE_FILES.manifest), 'the capture (capture it again)'),
    );
    return { ...result.data, manifest };
  } finally {
    output.release();
  }
}

/** What a data folder of a train config holds: prepared data (online) or a capture (offline). */
export function dataFolderKind(folder: string): 'prepared' | 'capture' | undefined {
  if (existsSync(join(folder, CAPTURE_FILES.manifest))) return 'capture';
  if (existsSync(join(folder, PREPARED_FILES.manifest))) return 'prepared';
  return undefined;
}
