import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DemoData, EagletError, type TargetDemo } from '@eaglet/core';
import { spliceWavs, writeWav } from './wav.js';

export interface DemoDataset {
  jsonl: string;
  about: string;
  records: number;
  /** The long recording's length (s), when the demo has one. */
  longSeconds?: number;
}

/**
 * Writes a target's demo conversations into `dir` in the seed format (`data.jsonl` with relative
 * audio paths, the recordings under `audios/`), splicing the long recording when the demo has one.
 */
export function writeDemoDataset(demo: TargetDemo, dir: string): DemoDataset {
  const file = join(demo.data, 'demo.json');
  const parsed = DemoData.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success)
    throw new EagletError(
      'EAGLET_PLUGIN_INVALID',
      `${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  const data = parsed.data;
  mkdirSync(join(dir, 'audios'), { recursive: true });
  const rows: Array<{ id: string; audio?: string; prompt: string; answer: string }> = [];
  for (const r of data.records) {
    if (r.audio) copyFileSync(join(demo.data, r.audio), join(dir, 'audios', r.audio));
    rows.push({
      id: r.id,
      ...(r.audio ? { audio: `./audios/${r.audio}` } : {}),
      prompt: r.prompt,
      answer: r.answer,
    });
  }
  let longSeconds: number | undefined;
  if (data.longRecording) {
    const long = data.longRecording;
    const sources = long.from.map((id) => {
      const r = data.records.find((x) => x.id === id);
      if (!r?.audio)
        throw new EagletError(
          'EAGLET_PLUGIN_INVALID',
          `${file}: longRecording.from names ${id}, which has no audio`,
        );
      return r;
    });
    const spliced = spliceWavs(
      sources.map((r) => join(demo.data, r.audio!)),
      long.seconds,
      long.gapSeconds,
    );
    writeWav(join(dir, 'audios', `${long.id}.wav`), spliced);
    longSeconds = spliced.seconds;
    rows.push({
      id: long.id,
      audio: `./audios/${long.id}.wav`,
      prompt: long.prompt,
      answer: spliced.order.map((k) => sources[k]!.answer).join(' '),
    });
  }
  const jsonl = join(dir, 'data.jsonl');
  writeFileSync(
    jsonl,
    rows
      .map((r) =>
        JSON.stringify({
          id: r.id,
          conversations: [
            {
              role: 'user',
              content: [
                ...(r.audio ? [{ type: 'audio', audio: r.audio }] : []),
                { type: 'text', text: r.prompt },
              ],
            },
            { role: 'assistant', content: [{ type: 'text', text: r.answer }] },
          ],
        }),
      )
      .map((line) => `${line}\n`)
      .join(''),
  );
  return { jsonl, about: data.about, records: rows.length, ...(longSeconds ? { longSeconds } : {}) };
}
