import { existsSync, readdirSync, readFileSync, truncateSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, join, relative } from 'node:path';
import { type Conversation, type DataFormat, EagletError } from '@eaglet/core';

/**
 * Where `eaglet data regenerate` writes: one output set per input file, so that train and dev
 * splits stay apart and each can be prepared on its own. With one input the set is the output
 * folder itself (the seed's layout, `data_{start}-{end}.jsonl`); with several, a sub-folder named
 * after each input (`train.jsonl` -> `train/`). Shards count records within their own input.
 */
export interface OutputSet {
  /** The input jsonl file. */
  file: string;
  /** The folder its shards go to. */
  dir: string;
  /** Its records (non-blank lines). */
  records: number;
  /** Position of its first record among all inputs' records. */
  offset: number;
}

export function outputSets(
  outputDir: string,
  files: readonly string[],
  records: readonly number[],
): OutputSet[] {
  const names = files.map((f) => basename(f, extname(f)));
  names.forEach((name, i) => {
    const j = names.indexOf(name);
    if (files.length > 1 && j !== i)
      throw new EagletError(
        'EAGLET_CONFIG_INVALID',
        `${files[j]} and ${files[i]} would share the output folder "${name}/" (one per input, named after it)`,
        { hint: 'rename one of them, or regenerate them in two runs' },
      );
  });
  let offset = 0;
  return files.map((file, i) => {
    const set = {
      file,
      dir: files.length > 1 ? join(outputDir, names[i]!) : outputDir,
      records: records[i]!,
      offset,
    };
    offset += records[i]!;
    return set;
  });
}

/** Output shard of a set's record `index` (counted within the set): `data_{start}-{end}.jsonl`, end exclusive. */
export function shardName(index: number, shardSize: number, total: number): string {
  const start = Math.floor(index / shardSize) * shardSize;
  return `data_${start}-${Math.min(start + shardSize, total)}.jsonl`;
}

/** A set's shard files, in record order. */
export function shardFiles(set: OutputSet): string[] {
  if (!existsSync(set.dir)) return [];
  return readdirSync(set.dir)
    .filter((f) => /^data_\d+-\d+\.jsonl$/.test(f))
    .sort((a, b) => Number(a.split(/[_-]/)[1]) - Number(b.split(/[_-]/)[1]))
    .map((f) => join(set.dir, f));
}

/** Lines of a jsonl file that are complete; a partial last line (a killed writer) is cut off. */
export function completeLines(path: string): string[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, 'utf8');
  const end = text.lastIndexOf('\n') + 1;
  if (end < Buffer.byteLength(text)) truncateSync(path, Buffer.byteLength(text.slice(0, end)));
  return text.slice(0, end).split('\n').filter(Boolean);
}

/**
 * The audio references of a record that its input gave as relative paths (resolved, as the
 * parsed conversation holds them). The format resolves relative paths against the folder it is
 * told: parsing the record again against another folder moves exactly those.
 */
export function relativeAudioRefs(
  format: DataFormat,
  value: unknown,
  where: { file: string; line: number },
  conversation: Conversation,
): Set<string> {
  const elsewhere = format.parse(value, {
    ...where,
    baseDir: join(dirname(where.file), '.eaglet-elsewhere'),
  });
  const refs = new Set<string>();
  if (!elsewhere.ok) return refs;
  const audio = (c: Conversation) => c.messages.flatMap((m) => m.content.filter((p) => p.type === 'audio'));
  const moved = audio(elsewhere.conversation);
  audio(conversation).forEach((p, i) => {
    if (moved[i] && moved[i].audio !== p.audio) refs.add(p.audio);
  });
  return refs;
}

/**
 * The conversation with the audio its input named by relative path made relative to `dir` (where
 * the output shard goes), so the output resolves to the same files and moves with the dataset;
 * absolute paths, URLs and inline audio stay as they were.
 */
export function relativeTo(
  conversation: Conversation,
  relativeRefs: ReadonlySet<string>,
  dir: string,
): Conversation {
  if (relativeRefs.size === 0) return conversation;
  return {
    ...conversation,
    messages: conversation.messages.map((m) => ({
      ...m,
      content: m.content.map((p) => {
        if (p.type !== 'audio' || !relativeRefs.has(p.audio) || !isAbsolute(p.audio)) return p;
        const rel = relative(dir, p.audio);
        return { ...p, audio: rel.startsWith('..') ? rel : `./${rel}` };
      }),
    })),
  };
}
