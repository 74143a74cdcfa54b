import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import {
  audioParts,
  conversationIssues,
  EagletError,
  isEagletError,
  type PluginRegistry,
  type ProblemKind,
  type RecordProblem,
  readJsonl,
  type ValidationReport,
} from '@eaglet/core';
import type { FlowContext } from '../context.js';
import { Limiter } from '../util/limit.js';
import { throttledProgress } from '../util/progress.js';
import { audioPath, refusedAudio } from './audio-access.js';
import { detectFormat } from './detect-format.js';
import { dataFiles } from './sources.js';

export interface ValidateOptions {
  files: string[];
  /** A format name or `auto` (detected per file from its first parseable record). */
  format?: string;
  /** `train` requires an assistant reply in every record; `regenerate` does not. */
  purpose?: 'train' | 'regenerate';
  /**
   * Check every audio file (default true): decoded to its end, as prepare will, so a refused
   * container, an unreadable file or a truncated one is reported here and not only at prepare.
   */
  checkAudio?: boolean;
}

/**
 * `eaglet data validate`: reads every record of every file, never stopping at the first error, and
 * reports each problem with file, line, field path and reason; checks each audio file once.
 */
export async function validateData(
  registry: PluginRegistry,
  options: ValidateOptions,
  ctx: FlowContext = {},
): Promise<ValidationReport> {
  const purpose = options.purpose ?? 'train';
  const checkAudio = options.checkAudio ?? true;
  const problems: RecordProblem[] = [];
  const files: ValidationReport['files'] = [];
  const audio = registry.service('audioDecoder')();
  const checks = new Map<string, Promise<{ seconds: number }>>();
  const inFlight = new Limiter(256); // records waiting on their audio checks
  const emitProgress = throttledProgress(ctx.events, 'validate', 'byte');
  const fixed = options.format && options.format !== 'auto' ? registry.format(options.format) : undefined;

  // Each input on this machine (a folder's jsonl files, a Hub dataset's snapshot); one that cannot
  // be found is reported as a problem of its own, as a missing file always was.
  const inputs: Array<{ file: string; unreadable?: string }> = [];
  for (const value of options.files) {
    try {
      inputs.push(...(await dataFiles([value], ctx, 'files')).files.map((file) => ({ file })));
    } catch (e) {
      if (!isEagletError(e) || e.code === 'EAGLET_CANCELLED') throw e;
      inputs.push({ file: resolve(value), unreadable: `${e.message}${e.hint ? ` (${e.hint})` : ''}` });
    }
  }
  for (const { file, unreadable } of inputs) {
    const summary = {
      file,
      format: fixed?.name ?? null,
      records: 0,
      valid: 0,
      invalid: 0,
      audioFiles: 0,
      audioSeconds: 0,
    };
    files.push(summary);
    let size: number;
    try {
      if (unreadable) throw new Error(unreadable);
      const st = statSync(file);
      if (!st.isFile()) throw new Error('not a regular file');
      size = st.size;
    } catch (e) {
      problems.push({
        kind: 'format',
        file,
        line: 0,
        path: '',
        reason: `cannot read file: ${(e as Error).message}`,
      });
      continue;
    }
    let format = fixed;
    const seenIds = new Map<string, number>();
    const fileAudio = new Set<string>();
    const pending = new Set<Promise<void>>();
    // Progress counts the bytes of records whose checks (audio probes included) are finished,
    // so the bar does not run ahead of the probing.
    let checkedBytes = 0;
    const finish = (recordProblems: RecordProblem[], recordBytes: number) => {
      problems.push(...recordProblems);
      if (recordProblems.length) summary.invalid++;
      else summary.valid++;
      checkedBytes += recordBytes;
      emitProgress(Math.min(checkedBytes, size), size, file);
    };

    for await (const rec of readJsonl(file)) {
      if (ctx.signal?.aborted) throw new EagletError('EAGLET_CANCELLED', 'validation cancelled');
      summary.records++;
      const recordBytes = Buffer.byteLength(rec.raw) + 1;
      const recordProblems: RecordProblem[] = [];
      const add = (kind: ProblemKind, path: string, reason: string, id?: string) =>
        recordProblems.push({ kind, file, line: rec.line, ...(id ? { id } : {}), path, reason });

      if (!rec.ok) add('json', '', rec.error);
      else if (!rec.value || typeof rec.value !== 'object' || Array.isArray(rec.value)) {
        add(
          'json',
          '',
          `a record must be a JSON object, got ${Array.isArray(rec.value) ? 'an array' : typeof rec.value}`,
        );
      } else {
        format ??= detectFormat(registry, rec.value);
        if (!format) {
          add(
            'format',
            '',
            `no known format recognises this record (known: ${registry.ids('format').join(', ')}); pass --format`,
          );
        } else {
          summary.format = format.name;
          const parsed = format.parse(rec.value, { file, line: rec.line, baseDir: dirname(file) });
          if (!parsed.ok) {
            for (const issue of parsed.issues) add('field', issue.path, issue.reason, parsed.id);
          } else {
            const conv = parsed.conversation;
            const messagesField = format.messagesField;
            for (const issue of conversationIssues(conv, { requireAssistant: purpose === 'train' })) {
              add('conversation', issue.path.replace(/^messages/, messagesField), issue.reason, conv.id);
            }
            const first = seenIds.get(conv.id);
            if (first !== undefined)
              add('duplicate', 'id', `duplicate id "${conv.id}" (first at line ${first})`, conv.id);
            else seenIds.set(conv.id, rec.line);
            const refused = refusedAudio(conv, messagesField, ctx.audioAccess);
            for (const issue of refused) add('audio', issue.path, issue.reason, conv.id);
            if (checkAudio) {
              const refusedRefs = new Set(refused.map((i) => i.ref));
              const audioChecks = audioParts(conv).map(async (part, k) => {
                if (/^https?:/i.test(part.audio)) return; // remote audio is checked where it is fetched
                if (refusedRefs.has(part.audio)) return; // refused above: never opened
                const key = part.audio.startsWith('data:') ? `${rec.line}#${k}` : part.audio;
                let check = checks.get(key);
                if (!check) {
                  check = audio.check(part.audio, ctx.signal ? { signal: ctx.signal } : {});
                  if (!part.audio.startsWith('data:')) checks.set(key, check);
                }
                try {
                  const info = await check;
                  if (!fileAudio.has(key)) {
                    fileAudio.add(key);
                    summary.audioFiles++;
                    summary.audioSeconds += info.seconds;
                  }
                } catch (e) {
                  add('audio', audioPath(conv, part.audio, messagesField), (e as Error).message, conv.id);
                }
              });
              const release = await inFlight.acquire(); // bounds memory on huge files
              const settled: Promise<void> = Promise.all(audioChecks).then(() => {
                finish(recordProblems, recordBytes);
                pending.delete(settled);
                release();
              });
              pending.add(settled);
              continue;
            }
          }
        }
      }
      finish(recordProblems, recordBytes);
    }
    await Promise.all(pending);
    // An abort also ends the audio checks in flight: their "cancelled" is no finding.
    if (ctx.signal?.aborted) throw new EagletError('EAGLET_CANCELLED', 'validation cancelled');
    ctx.events?.({
      type: 'progress',
      task: 'validate',
      done: size,
      total: size,
      unit: 'byte',
      message: file,
    });
  }

  problems.sort((a, b) => (a.file === b.file ? a.line - b.line : a.file < b.file ? -1 : 1));
  const byKind: Record<string, number> = {};
  for (const p of problems) byKind[p.kind] = (byKind[p.kind] ?? 0) + 1;
  const totals = {
    records: files.reduce((n, f) => n + f.records, 0),
    valid: files.reduce((n, f) => n + f.valid, 0),
    invalid: files.reduce((n, f) => n + f.invalid, 0),
    problems: problems.length,
  };
  return { ok: problems.length === 0, files, totals, byKind, problems };
}
