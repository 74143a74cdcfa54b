import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EagletError, type HubSource } from '@eaglet/core';
import { type LocalSource, localSource } from '@eaglet/engine';
import type { FlowContext } from '../context.js';

export type { LocalSource } from '@eaglet/engine';

/**
 * A model input (targetModel, draftModel, --model) on this machine: the folder as it is, or a Hub
 * id fetched into the Hub cache (download progress reaches the flow's events).
 */
export function modelSource(value: string, ctx: FlowContext, field: string): Promise<LocalSource> {
  return localSource(value, 'model', {
    field,
    ...(ctx.events ? { events: ctx.events } : {}),
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  });
}

/** The jsonl files under a folder (a dataset folder or a Hub dataset snapshot), sorted. */
function jsonlFiles(folder: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(folder, { withFileTypes: true }).sort((a, b) =>
    a.name.localeCompare(b.name),
  )) {
    if (entry.name.startsWith('.')) continue;
    const path = join(folder, entry.name);
    if (entry.isDirectory()) out.push(...jsonlFiles(path));
    else if (entry.name.endsWith('.jsonl')) out.push(path);
  }
  return out;
}

/**
 * Dataset inputs (DATA_NAME_OR_PATH) on this machine: files as they are, folders as the jsonl files
 * in them, Hub dataset ids as the jsonl files of their snapshot (audio they name relative to
 * themselves comes with the snapshot). Returns the files in order and the Hub snapshots used.
 */
export async function dataFiles(
  values: readonly string[],
  ctx: FlowContext,
  field: string,
): Promise<{ files: string[]; hub: HubSource[] }> {
  const files: string[] = [];
  const hub: HubSource[] = [];
  for (const [i, value] of values.entries()) {
    const source = await localSource(value, 'dataset', {
      field: `${field}[${i}]`,
      ...(ctx.events ? { events: ctx.events } : {}),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
    if (source.hub) hub.push(source.hub);
    if (!statSync(source.path).isDirectory()) {
      files.push(source.path);
      continue;
    }
    const found = jsonlFiles(source.path);
    if (found.length === 0)
      throw new EagletError('EAGLET_INPUT_MISSING', `${field}[${i}]: ${value} holds no .jsonl file`, {
        hint: 'a dataset folder (or Hub dataset) holds seed-format .jsonl files and the audio they name',
      });
    files.push(...found);
  }
  return { files, hub };
}
