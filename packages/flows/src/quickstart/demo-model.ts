import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EagletError, type EventSink, type TargetModel } from '@eaglet/core';
import { eagletHome, runEngine } from '@eaglet/engine';

/**
 * A target's demo model, built once by its plugin's Python builder (the engine's `build-demo`
 * command) and cached under `$EAGLET_HOME/demo`, keyed by the builder's inputs: a second
 * quickstart, or one from another folder, reuses it. Written to a temporary folder and renamed,
 * so an interrupted build is never used.
 */
export async function demoModel(
  target: TargetModel,
  ctx: { events?: EventSink; signal?: AbortSignal; python?: string } = {},
): Promise<string> {
  const demo = target.demo;
  if (!demo) throw new EagletError('EAGLET_QUICKSTART', `target ${target.id} has no demo model`);
  const hash = createHash('sha256').update(demo.builder);
  for (const file of demo.builderInputs ?? []) hash.update(readFileSync(file));
  const cache = join(eagletHome(), 'demo');
  const dir = join(cache, `${target.id}-${hash.digest('hex').slice(0, 12)}`);
  if (existsSync(join(dir, '.complete'))) return dir;
  mkdirSync(cache, { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
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
    renameSync(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    // Another quickstart finished the same build first: use its folder.
    if (!existsSync(join(dir, '.complete'))) throw e;
  }
  return dir;
}
