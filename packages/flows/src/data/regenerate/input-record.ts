import { dirname } from 'node:path';
import type { Conversation, DataFormat, JsonlLine, PluginRegistry } from '@eaglet/core';
import type { AudioAccess } from '../audio-access.js';
import { refusedAudio } from '../audio-access.js';
import { detectFormat } from '../detect-format.js';
import { relativeAudioRefs } from './regenerate-output.js';

/** One input record as regenerate reads it: a conversation to answer again, or the problem that stops it. */
export interface InputRecord {
  index: number;
  file: string;
  line: number;
  format?: DataFormat;
  conversation?: Conversation;
  /** Audio the input named by relative path (kept relative in the output). */
  relativeAudio?: Set<string>;
  problem?: string;
  id?: string;
}

/**
 * Parses input line `rec` of `file` (record `index` over all inputs) with `format`, or with the
 * format detected from it when the file's is not known yet (the caller keeps the one found).
 */
export function readInputRecord(
  registry: PluginRegistry,
  rec: JsonlLine,
  where: { file: string; index: number; format: DataFormat | undefined },
  audioAccess?: AudioAccess,
): InputRecord {
  const { file, index } = where;
  const item: InputRecord = { index, file, line: rec.line };
  if (!rec.ok) {
    item.problem = rec.error;
    return item;
  }
  const format = where.format ?? detectFormat(registry, rec.value);
  if (!format) {
    item.problem = `no known format recognises this record (known: ${registry.ids('format').join(', ')})`;
    return item;
  }
  const parsed = format.parse(rec.value, { file, line: rec.line, baseDir: dirname(file) });
  item.format = format;
  if (!parsed.ok) {
    item.problem = parsed.issues.map((i) => `${i.path || '(record)'}: ${i.reason}`).join('; ');
    if (parsed.id) item.id = parsed.id;
    return item;
  }
  item.id = parsed.conversation.id;
  const refused = refusedAudio(parsed.conversation, format.messagesField, audioAccess);
  if (refused.length) {
    item.problem = refused.map((i) => `${i.path}: ${i.reason}`).join('; ');
    return item;
  }
  item.conversation = parsed.conversation;
  item.relativeAudio = relativeAudioRefs(format, rec.value, { file, line: rec.line }, parsed.conversation);
  return item;
}
