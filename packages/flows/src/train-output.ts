import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { EagletError } from '@eaglet/core';
import { claimOutputFolder, folderContents, type OutputFolder } from './output-folder.js';

/** Files only a training run writes: a folder holding one of them holds an eaglet run. */
const RUN_MARKERS = ['train-config.json', 'metrics.jsonl', 'checkpoints'];

/**
 * Takes a training outputDir for one run (locked, see claimOutputFolder). A folder that already
 * holds a run is refused unless the config says what to do with it: `resume` continues it (the
 * engine restores the newest checkpoint), `overwrite` deletes its contents first. Without either,
 * a second run would append its metrics to the first's, prune the new checkpoints by step number
 * and leave `latest` naming a step that is gone. A folder holding other files is never deleted.
 * An empty or new folder needs neither.
 */
export function claimTrainOutput(
  outputDir: string,
  config: { resume: boolean | string; overwrite: boolean },
): OutputFolder {
  if (config.resume !== false && config.overwrite)
    throw new EagletError('EAGLET_CONFIG_INVALID', 'resume and overwrite exclude each other', {
      hint: 'resume continues the run in outputDir; overwrite deletes it and starts again: pick one',
    });
  const output = claimOutputFolder(outputDir, 'eaglet train');
  try {
    const contents = folderContents(outputDir);
    if (contents.length === 0 || config.resume !== false) return output;
    if (!contents.some((f) => RUN_MARKERS.includes(f)))
      throw new EagletError(
        'EAGLET_OUTPUT_EXISTS',
        `outputDir ${outputDir} is not empty and holds no eaglet training run (${contents.slice(0, 5).join(', ')}${contents.length > 5 ? ', ...' : ''})`,
        { hint: 'choose a new or empty outputDir; eaglet does not delete files it did not write' },
      );
    if (!config.overwrite)
      throw new EagletError(
        'EAGLET_OUTPUT_EXISTS',
        `outputDir ${outputDir} holds an earlier training run (${describeRun(outputDir)})`,
        {
          hint: 'pass --resume (resume: true) to continue it, or --overwrite (overwrite: true) to delete it and start again',
        },
      );
    for (const f of contents) rmSync(join(outputDir, f), { recursive: true, force: true });
    return output;
  } catch (e) {
    output.release();
    throw e;
  }
}

/** "checkpoints up to step N" or "no checkpoint yet", for the refusal. */
function describeRun(outputDir: string): string {
  const latest = join(outputDir, 'checkpoints', 'latest');
  if (!existsSync(latest)) return 'no checkpoint yet';
  const step = /step-0*(\d+)/.exec(readFileSync(latest, 'utf8'))?.[1];
  return step === undefined ? 'checkpoints' : `its latest checkpoint is at step ${step}`;
}
