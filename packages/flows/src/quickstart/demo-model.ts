import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DemoBuildResult, EagletError, type EventSink, type TargetModel } from '@eaglet/core';
import { eagletHome, runEngine } from '@eaglet/engine';

/** A built demo: the checkpoint folder and what its builder returned. */
export interface DemoBuild {
  /** The checkpoint folder (datasets the builder wrote are inside it). */
  dir: string;
  result: DemoBuildResult;
  /** Whether this call built it (false: the cached build was used). */
  built: boolean;
}

/**
 * A target's demo model, built once by its plugin's Python builder (the engine's `build-demo`
 * command) and cached under `$EAGLET_HOME/demo`, keyed by the builder's inputs: a second
 * quickstart, or one from another folder, reuses it. Written to a temporary folder and renamed,
 * so an interrupted build is never used; `.complete` holds the builder's result.
 */
export async function demoModel(
  target: TargetModel,
  ctx: { events?: EventSink; signal?: AbortSignal; python?: string } = {},
): Promise<DemoBuild> {
  const demo = target.demo;
  if (!demo) throw new EagletError('EAGLET_QUICKSTART', `target ${target.id} has no demo model`);
  const hash = createHash('sha256').update(demo.builder);
  for (const file of demo.builderInputs ?? []) hash.update(readFileSync(file));
  const cache = join(eagletHome(), 'demo');
  const dir = join(cache, `${target.id}-${hash.digest('hex').slice(0, 12)}`);
  const complete = join(dir, '.complete');
  if (existsSync(complete)) return { dir, result: readResult(target, complete), built: false };
  mkdirSync(cache, { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  let built = true;
  try {
    const { done } = await runEngine({
      command: 'build-demo',
      config: { module: demo.builder, out: tmp, seed: 0 },
      pythonPath: target.enginePath ? [target.enginePath] : [],
      env: { HF_HUB_OFFLINE: '1' },
      ...(ctx.events ? { onEvent: ctx.events } : {}),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      ...(ctx.python ? { python: ctx.python } : {}),
    });
    writeFileSync(join(tmp, '.complete'), `${JSON.stringify(done.result)}\n`);
    readResult(target, join(tmp, '.complete'));
    renameSync(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    // Another quickstart finished the same build first: use its folder.
    if (!existsSync(complete)) throw e;
    built = false;
  }
  return { dir, result: readResult(target, complete), built };
}

/** The builder's result, checked against `DemoBuildResult`, and its datasets present. */
function readResult(target: TargetModel, complete: string): DemoBuildResult {
  const parsed = DemoBuildResult.safeParse(JSON.parse(readFileSync(complete, 'utf8')));
  const fail = (message: string) =>
    new EagletError(
      'EAGLET_PLUGIN_INVALID',
      `the ${target.id} demo builder (${target.demo?.builder}) returned ${message}`,
      { hint: "build_demo's result must match @eaglet/core's DemoBuildResult" },
    );
  if (!parsed.success)
    throw fail(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  const datasets = parsed.data.datasets;
  const folder = join(complete, '..');
  for (const file of datasets ? [...datasets.train, datasets.heldOut] : [])
    if (!existsSync(join(folder, file))) throw fail(`datasets naming ${file}, which it did not write`);
  return parsed.data;
}
