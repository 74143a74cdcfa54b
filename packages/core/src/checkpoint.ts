import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { EagletError } from './errors.js';
import { readJsonFile } from './json-file.js';

/**
 * Reading a local Hugging Face checkpoint folder without loading it: config.json, the tensor
 * names of its safetensors, the end-of-sequence ids. Target plugins build their `inspect` on these.
 */

/** config.json of a model folder, with an error that says what a model folder must hold. */
export function readModelConfig(modelDir: string): Record<string, unknown> {
  const path = join(modelDir, 'config.json');
  if (!existsSync(path))
    throw new EagletError('EAGLET_TARGET_CONFIG', `no config.json in ${modelDir}`, {
      hint: 'pass the local folder of a Hugging Face checkpoint (config.json, tokenizer files, safetensors)',
    });
  return readJsonFile(path, "the model's config.json") as Record<string, unknown>;
}

/** A numeric field of a config object (config.json or one of its sub-configs); undefined otherwise. */
export function configNumber(config: Readonly<Record<string, unknown>>, key: string): number | undefined {
  const value = config[key];
  return typeof value === 'number' ? value : undefined;
}

/** The `architectures[0]` of a model folder's config.json (undefined when it names none). */
export function modelArchitecture(modelDir: string): string | undefined {
  const archs = readModelConfig(modelDir).architectures;
  return Array.isArray(archs) && typeof archs[0] === 'string' ? archs[0] : undefined;
}

/** Tensor names in a folder's safetensors: the sharded index's weight_map, or the single file's header. */
export function checkpointTensorNames(modelDir: string): Set<string> {
  const index = join(modelDir, 'model.safetensors.index.json');
  if (existsSync(index))
    return new Set(
      Object.keys((readJsonFile(index, "the model's weight index") as { weight_map: object }).weight_map),
    );
  const file = join(modelDir, 'model.safetensors');
  if (!existsSync(file)) return new Set();
  const fd = openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    readSync(fd, len, 0, 8, 0);
    const header = Buffer.alloc(Number(len.readBigUInt64LE()));
    readSync(fd, header, 0, header.length, 8);
    return new Set(Object.keys(JSON.parse(header.toString('utf8'))).filter((k) => k !== '__metadata__'));
  } finally {
    closeSync(fd);
  }
}

/**
 * The first of `candidates` that the checkpoint holds: the embedding key the engine will read. An
 * error names the folder and the keys looked for when it holds none of them.
 */
export function findTensorKey(modelDir: string, candidates: readonly string[], what: string): string {
  const names = checkpointTensorNames(modelDir);
  const found = candidates.find((k) => names.has(k));
  if (found === undefined)
    throw new EagletError(
      'EAGLET_TARGET_CONFIG',
      `${modelDir}: its safetensors hold no ${what} (looked for ${candidates.join(', ')})`,
      { hint: 'pass a checkpoint folder with model.safetensors (or model.safetensors.index.json)' },
    );
  return found;
}

const idList = (value: unknown): number[] | undefined =>
  typeof value === 'number'
    ? [value]
    : Array.isArray(value)
      ? value.filter((v) => typeof v === 'number')
      : undefined;

/**
 * Every id that ends generation: generation_config.json's `eos_token_id` (a number or a list), else
 * `fallback` (the model config's).
 */
export function eosTokenIds(modelDir: string, fallback: unknown): number[] {
  const path = join(modelDir, 'generation_config.json');
  const fromGeneration = existsSync(path)
    ? idList(
        (readJsonFile(path, "the model's generation_config.json") as { eos_token_id?: unknown }).eos_token_id,
      )
    : undefined;
  return [...new Set(fromGeneration ?? idList(fallback) ?? [])];
}
