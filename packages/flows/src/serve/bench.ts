import { writeFileSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import {
  BenchConfig,
  type BenchConfigInput,
  type BenchPrompt,
  type BenchReport,
  benchReportMarkdown,
  buildBenchReport,
  EagletError,
  type PluginRegistry,
  readJsonl,
} from '@eaglet/core';
import type { FlowContext } from '../context.js';
import { type AudioAccess, refusedAudio } from '../data/audio-access.js';
import { detectFormat } from '../data/detect-format.js';
import { makeOutputFolder } from '../util/output-folder.js';
import { choosePlugins } from './backend-choice.js';
import { benchPlotPng } from './bench-plot.js';
import { measureRounds } from './bench-rounds.js';

export interface BenchFiles {
  json: string;
  markdown: string;
  plot: string;
}

export interface BenchOutcome {
  report: BenchReport;
  files: BenchFiles;
  /** Records of the test data that could not be used as prompts, with why. */
  skipped: Array<{ file: string; line: number; reason: string }>;
}

/**
 * Reads benchmark prompts: each record's messages up to its last user turn (a trailing assistant
 * reply, the reference answer, is dropped), the first `limit` usable records in file order.
 */
export async function loadBenchPrompts(
  registry: PluginRegistry,
  file: string,
  options: { format?: string; limit: number; audioAccess?: AudioAccess },
): Promise<{ prompts: BenchPrompt[]; skipped: BenchOutcome['skipped'] }> {
  const path = resolve(file);
  const prompts: BenchPrompt[] = [];
  const skipped: BenchOutcome['skipped'] = [];
  let format = options.format && options.format !== 'auto' ? registry.format(options.format) : undefined;
  for await (const rec of readJsonl(path)) {
    if (prompts.length >= options.limit) break;
    const skip = (reason: string) => skipped.push({ file: path, line: rec.line, reason });
    if (!rec.ok) {
      skip(rec.error);
      continue;
    }
    format ??= detectFormat(registry, rec.value);
    if (!format) {
      skip('no known format recognises this record');
      continue;
    }
    const parsed = format.parse(rec.value, { file: path, line: rec.line, baseDir: dirname(path) });
    if (!parsed.ok) {
      skip(parsed.issues.map((i) => `${i.path}: ${i.reason}`).join('; '));
      continue;
    }
    const refused = refusedAudio(parsed.conversation, format.messagesField, options.audioAccess);
    if (refused.length) {
      skip(refused.map((i) => `${i.path}: ${i.reason}`).join('; '));
      continue;
    }
    const messages = parsed.conversation.messages;
    const lastUser = messages.map((m) => m.role).lastIndexOf('user');
    if (lastUser < 0) {
      skip('no user turn');
      continue;
    }
    prompts.push({ id: parsed.conversation.id, messages: messages.slice(0, lastUser + 1) });
  }
  return { prompts, skipped };
}

/**
 * `eaglet bench`: baseline and Eagle3 on the same prompts through a backend, in alternating rounds
 * (see measureRounds); writes the report as JSON (`outputFile`), Markdown (same name, .md) and a
 * plot (same name, .png). The report says whether the measured speed is trustworthy.
 */
export async function bench(
  registry: PluginRegistry,
  input: BenchConfigInput,
  ctx: FlowContext = {},
): Promise<BenchOutcome> {
  const parsed = BenchConfig.parse(input);
  if (!parsed.baseline && !parsed.useEagle)
    throw new EagletError('EAGLET_CONFIG_INVALID', 'nothing to run: baseline and useEagle are both off');
  if (parsed.useEagle && !parsed.draftModel)
    throw new EagletError('EAGLET_CONFIG_INVALID', 'useEagle needs draftModel (seed: --draft_model)', {
      hint: 'pass --draft-model DIR, or --no-use-eagle for the baseline alone',
    });
  const { backend, target, config, sources } = await choosePlugins(registry, parsed, ctx);
  const template = registry.template(target.chatTemplate);
  const { prompts, skipped } = await loadBenchPrompts(registry, config.testDataPath, {
    format: config.format,
    limit: config.numPrompts,
    ...(ctx.audioAccess ? { audioAccess: ctx.audioAccess } : {}),
  });
  for (const s of skipped)
    ctx.events?.({ type: 'log', level: 'warn', message: `${s.file}:${s.line}: skipped: ${s.reason}` });
  if (!prompts.length)
    throw new EagletError('EAGLET_NO_PROMPTS', `no usable prompt in ${config.testDataPath}`);
  if (prompts.length < config.numPrompts) {
    ctx.events?.({
      type: 'log',
      level: 'info',
      message: `${config.testDataPath} has ${prompts.length} usable prompts (num_prompts ${config.numPrompts})`,
    });
  }
  // The report names the target that ran (the one the checkpoint's architecture chose, when unnamed).
  const resolved = { ...config, target: target.id };
  const session = await backend.openBench(resolved, prompts, {
    events: ctx.events ?? (() => {}),
    signal: ctx.signal ?? new AbortController().signal,
    target,
    template,
    audioDecoder: registry.service('audioDecoder'),
  });
  let report: BenchReport;
  try {
    const rounds = await measureRounds(session, config, ctx);
    report = buildBenchReport({
      config: resolved,
      device: session.device,
      engineVersions: session.engineVersions,
      rounds,
    });
  } finally {
    await session.close();
  }
  if (report.trustworthy === false)
    ctx.events?.({
      type: 'log',
      level: 'warn',
      message: `the measured speed is not trustworthy: ${report.trustReasons.join('; ')}`,
    });
  const json = resolve(config.outputFile);
  const stem = json.slice(0, json.length - extname(json).length);
  const files: BenchFiles = { json, markdown: `${stem}.md`, plot: `${stem}.png` };
  makeOutputFolder(dirname(json));
  writeFileSync(files.plot, benchPlotPng(report));
  const final: BenchReport = {
    ...report,
    files: { ...files },
    ...(Object.keys(sources).length ? { sources } : {}),
  };
  writeFileSync(json, `${JSON.stringify(final, null, 2)}\n`);
  writeFileSync(files.markdown, benchReportMarkdown(final));
  for (const [kind, path] of Object.entries(files))
    ctx.events?.({ type: 'artifact', kind: `report-${kind}`, path });
  return { report: final, files, skipped };
}
