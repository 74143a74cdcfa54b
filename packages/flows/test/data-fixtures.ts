import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ASR_PROMPT, makeSpeechDataset, type SpeechDataset } from '@eaglet/fixtures';

/**
 * Real speech in the seed format for prepare tests: LibriVox clips, espeak-ng sentences of
 * several lengths, a 45 s recording (over the 30 s window), and `rich.jsonl` with what a chat
 * template must get right: a system prompt, two audios in one turn, multi-turn with audio in both
 * user turns, string content, non-ASCII replies and a reply starting with a newline. Plus
 * `bad.jsonl`: broken JSON, a missing and an empty audio file, a record without a reply.
 */
export function prepareDataset(
  dir: string,
): SpeechDataset & { rich: string; bad: string; richRecords: number } {
  const ds = makeSpeechDataset(dir, {
    espeak: [
      'Yes.',
      'Speculative decoding makes language models faster.',
      'The draft model proposes several tokens, and the target model checks them all in one forward pass, keeping the longest prefix it agrees with.',
    ],
    longSeconds: 45,
  });
  const [a, b, c] = ds.records;
  const audio = (ref: string) => ({ type: 'audio', audio: ref });
  const text = (t: string) => ({ type: 'text', text: t });
  const rich = [
    {
      id: 'system-two-audios',
      conversations: [
        { role: 'system', content: [text('You transcribe English speech exactly.')] },
        {
          role: 'user',
          content: [audio(a!.audio), audio(b!.audio), text('Transcribe both clips, in order.')],
        },
        { role: 'assistant', content: [text(`${a!.text} / ${b!.text}`)] },
      ],
    },
    {
      id: 'multi-turn',
      conversations: [
        { role: 'user', content: [audio(c!.audio), text(ASR_PROMPT)] },
        { role: 'assistant', content: [text(c!.text)] },
        { role: 'user', content: [text('And this one?'), audio(ds.records[5]!.audio)] },
        { role: 'assistant', content: 'Speculative decoding makes language models faster.' },
      ],
    },
    {
      id: 'string-content-unicode',
      conversations: [
        { role: 'user', content: 'Wie sagt man „schneller“ auf Chinesisch? 🙂' },
        // NFC matters: 'cafe\u0301' is decomposed and the tokenizer composes it.
        { role: 'assistant', content: '\n更快 (gèng kuài) — «faster»; naïve café, cafe\u0301.' },
      ],
    },
  ];
  const richPath = join(dir, 'rich.jsonl');
  writeFileSync(richPath, `${rich.map((r) => JSON.stringify(r)).join('\n')}\n`);

  writeFileSync(join(dir, 'audios', 'empty.wav'), '');
  copyFileSync(join(dir, a!.audio), join(dir, 'audios', 'copy.flac'));
  const user = (ref: string) => ({ role: 'user', content: [audio(ref), text(ASR_PROMPT)] });
  const reply = { role: 'assistant', content: [text('HELLO')] };
  const bad = [
    '{"id": "broken", "conversations": [',
    JSON.stringify({ id: 'missing-audio', conversations: [user('./audios/missing.flac'), reply] }),
    JSON.stringify({ id: 'ok-copy', conversations: [user('./audios/copy.flac'), reply] }),
    JSON.stringify({ id: 'empty-audio', conversations: [user('./audios/empty.wav'), reply] }),
    JSON.stringify({ id: 'no-reply', conversations: [user('./audios/copy.flac')] }),
  ];
  const badPath = join(dir, 'bad.jsonl');
  writeFileSync(badPath, `${bad.join('\n')}\n`);
  return { ...ds, rich: richPath, bad: badPath, richRecords: rich.length };
}
