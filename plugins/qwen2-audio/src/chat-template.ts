import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type AudioInfo,
  type ChatTemplate,
  type ChatTemplateSession,
  type Conversation,
  EagletError,
  type Message,
  type RenderedConversation,
  type RenderedPrompt,
  readJsonFile,
} from '@eaglet/core';
import { QWEN2_AUDIO_PLACEHOLDER, qwen2AudioTokenCount } from './audio-tokens.js';
import { loadModelTokenizer, type ModelTokenizer } from './tokenizer.js';

export const QWEN2_AUDIO_TEMPLATE_ID = 'qwen2-audio';
export const DEFAULT_SYSTEM_PROMPT = 'You are a helpful assistant.';

/**
 * The chat templates Qwen2-Audio ships: the model folder's own (Qwen/Qwen2-Audio-7B-Instruct)
 * and transformers' `Qwen2AudioProcessor.default_chat_template`, which also accepts
 * `content['type'] == 'audio'`. Both render eaglet's canonical conversations identically, and
 * this module reproduces that rendering token for token.
 */
export const KNOWN_TEMPLATES: readonly string[] = [
  "{% set audio_count = namespace(value=0) %}{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}{% if 'audio' in content or 'audio_url' in content %}{% set audio_count.value = audio_count.value + 1 %}Audio {{ audio_count.value }}: <|audio_bos|><|AUDIO|><|audio_eos|>\n{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
  "{% set audio_count = namespace(value=0) %}{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}{% if 'audio' in content or 'audio_url' in content or message['type'] == 'audio' or content['type'] == 'audio' %}{% set audio_count.value = audio_count.value + 1 %}Audio {{ audio_count.value }}: <|audio_bos|><|AUDIO|><|audio_eos|>\n{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
];

/** The chat template a model folder declares (chat_template.jinja/.json or tokenizer_config.json), if any. */
export function folderChatTemplate(modelDir: string): string | undefined {
  const jinja = join(modelDir, 'chat_template.jinja');
  if (existsSync(jinja)) return readFileSync(jinja, 'utf8');
  for (const f of ['chat_template.json', 'processor_config.json', 'tokenizer_config.json']) {
    const p = join(modelDir, f);
    if (!existsSync(p)) continue;
    const t = (readJsonFile(p, `the model's ${f}`) as { chat_template?: unknown }).chat_template;
    if (typeof t === 'string') return t;
  }
  return undefined;
}

/** A rendering error of one record: the flows reject the record with this reason. */
const recordError = (message: string) => new EagletError('EAGLET_TEMPLATE_INPUT', message);

/** Accumulates ids and the loss mask. Text between special tokens is tokenized as one chunk, as the HF tokenizer does. */
class Builder {
  readonly ids: number[] = [];
  readonly mask: number[] = [];
  private chunk = '';
  /** UTF-8 offset in `chunk` from which tokens are trained; undefined = nothing in this chunk. */
  private trainFrom: number | undefined;

  constructor(private readonly tok: ModelTokenizer) {}

  text(s: string, train: boolean): void {
    if (train && this.trainFrom === undefined) this.trainFrom = Buffer.byteLength(this.chunk);
    this.chunk += s;
  }

  token(id: number, train: boolean, repeat = 1): void {
    this.flush();
    for (let i = 0; i < repeat; i++) {
      this.ids.push(id);
      this.mask.push(train ? 1 : 0);
    }
  }

  flush(): void {
    if (this.chunk) {
      const { ids, byteEnds } = this.tok.encodeWithOffsets(this.chunk);
      const from = this.trainFrom;
      ids.forEach((id, i) => {
        this.ids.push(id);
        // A token is trained when it holds any trained byte (a merge across the header's
        // newline and the reply belongs to the reply).
        this.mask.push(from !== undefined && byteEnds[i]! > from ? 1 : 0);
      });
    }
    this.chunk = '';
    this.trainFrom = undefined;
  }
}

/** Qwen2-Audio's template bound to one model folder's tokenizer. */
class Qwen2AudioSession implements ChatTemplateSession {
  readonly templateId = QWEN2_AUDIO_TEMPLATE_ID;
  private readonly id: Record<'imStart' | 'imEnd' | 'audio' | 'audioBos' | 'audioEos', number>;

  constructor(readonly tokenizer: ModelTokenizer) {
    this.id = {
      imStart: tokenizer.requireId('<|im_start|>'),
      imEnd: tokenizer.requireId('<|im_end|>'),
      audio: tokenizer.requireId(QWEN2_AUDIO_PLACEHOLDER),
      audioBos: tokenizer.requireId('<|audio_bos|>'),
      audioEos: tokenizer.requireId('<|audio_eos|>'),
    };
  }

  render(conversation: Conversation, audio: AudioInfo[]): RenderedConversation {
    const b = new Builder(this.tokenizer);
    const audioTokenCounts = this.messages(b, conversation.messages, audio);
    b.flush();
    return { inputIds: Int32Array.from(b.ids), lossMask: Uint8Array.from(b.mask), audioTokenCounts };
  }

  renderPrompt(messages: Message[], audio: AudioInfo[]): RenderedPrompt {
    const b = new Builder(this.tokenizer);
    const audioTokenCounts = this.messages(b, messages, audio);
    b.token(this.id.imStart, false);
    b.text('assistant\n', false);
    b.flush();
    return { inputIds: Int32Array.from(b.ids), audioTokenCounts };
  }

  private messages(b: Builder, messages: Message[], audio: AudioInfo[]): number[] {
    const counts: number[] = [];
    messages.forEach((message, i) => {
      if (i === 0 && message.role !== 'system') {
        b.token(this.id.imStart, false);
        b.text(`system\n${DEFAULT_SYSTEM_PROMPT}`, false);
        b.token(this.id.imEnd, false);
        b.text('\n', false);
      }
      const train = message.role === 'assistant';
      b.token(this.id.imStart, false);
      b.text(`${message.role}\n`, false);
      for (const [j, part] of message.content.entries()) {
        if (part.type === 'text') {
          const special = this.tokenizer.addedTokens.find((t) => part.text.includes(t));
          if (special) {
            throw recordError(
              `messages[${i}].content[${j}].text contains the special token ${special}; the tokenizer would read it as a control token`,
            );
          }
          b.text(part.text, train);
        } else {
          if (train) throw recordError(`messages[${i}].content[${j}]: audio in an assistant reply`);
          const info = audio[counts.length];
          if (!info) throw recordError(`audio part ${counts.length + 1} has no decoded audio`);
          const n = qwen2AudioTokenCount(info.samples);
          if (n < 1)
            throw recordError(`messages[${i}].content[${j}]: audio is too short for one audio token`);
          counts.push(n);
          b.text(`Audio ${counts.length}: `, false);
          b.token(this.id.audioBos, false);
          b.token(this.id.audio, false, n);
          b.token(this.id.audioEos, false);
          b.text('\n', false);
        }
      }
      b.token(this.id.imEnd, train);
      b.text('\n', train);
    });
    if (counts.length !== audio.length)
      throw recordError(`${audio.length} decoded audio clips for ${counts.length} audio parts`);
    return counts;
  }
}

/**
 * Qwen2-Audio's ChatML template: a default system prompt when the conversation has none,
 * `Audio N: <|audio_bos|><|AUDIO|><|audio_eos|>\n` per audio part (numbered across the
 * conversation), `<|AUDIO|>` expanded to the processor's count, and a loss mask over assistant
 * replies including their closing `<|im_end|>\n`.
 */
export const qwen2AudioChatTemplate: ChatTemplate = {
  id: QWEN2_AUDIO_TEMPLATE_ID,
  description: "Qwen2-Audio's ChatML template (system prompt, 'Audio N:' parts, multi-turn), token-exact",
  async load(modelDir: string): Promise<ChatTemplateSession> {
    const declared = folderChatTemplate(modelDir);
    if (declared !== undefined && !KNOWN_TEMPLATES.includes(declared)) {
      throw new EagletError(
        'EAGLET_TEMPLATE_MISMATCH',
        `the chat template in ${modelDir} differs from Qwen2-Audio's; training on it with the ${QWEN2_AUDIO_TEMPLATE_ID} template would not match serving`,
        {
          hint: 'use the chat template the model was served with (a plugin can register one), or restore the original',
        },
      );
    }
    return new Qwen2AudioSession(loadModelTokenizer(modelDir));
  },
};
