import {
  type AudioInfo,
  type ChatTemplateSession,
  type Conversation,
  EagletError,
  type Message,
  type RenderedConversation,
  type RenderedPrompt,
} from '@eaglet/core';
import type { CompiledTemplate } from './jinja.js';
import type { ModelTokenizer } from './tokenizer.js';

/** How a target's audio becomes tokens: the placeholder the template writes once per clip and the processor's count. */
export interface TemplateAudio {
  /** The placeholder token (as the tokenizer spells it), repeated `tokenCount(samples)` times per clip. */
  placeholder: string;
  tokenCount(samples: number): number;
}

/** A rendering error of one record: the flows reject the record with this reason. */
const recordError = (message: string) => new EagletError('EAGLET_TEMPLATE_INPUT', message);

/**
 * Messages as transformers' processors and tokenizers take them: a message of text parts only has
 * its text as a string (what text-only chat templates expect); a message with audio has a list of
 * parts, `{type: 'text', text}` and `{type: 'audio', audio}` (what audio templates look for).
 * The parity tests give transformers exactly these messages.
 */
export function templateMessages(messages: readonly Message[]): unknown[] {
  return messages.map((m) =>
    m.content.every((p) => p.type === 'text')
      ? { role: m.role, content: m.content.map((p) => (p.type === 'text' ? p.text : '')).join('') }
      : {
          role: m.role,
          content: m.content.map((p) =>
            p.type === 'text' ? { type: 'text', text: p.text } : { type: 'audio', audio: p.audio },
          ),
        },
  );
}

/**
 * A model folder's chat template bound to its tokenizer. Ids are the tokenizer's encoding of the
 * rendered text (what `apply_chat_template(..., tokenize=True)` returns); the loss mask covers
 * the tokens holding any character of an assistant span: the template's `{% generation %}`
 * blocks where it has them, else, for each assistant message i, the text between the rendering
 * of messages[:i] with the generation prompt and the rendering of messages[:i+1] (the reply and
 * whatever closes its turn). A template for which those renderings are not prefixes of the whole
 * conversation's cannot mark assistant spans, and says so.
 */
export class CheckpointTemplateSession implements ChatTemplateSession {
  private readonly placeholderId: number | undefined;

  constructor(
    readonly templateId: string,
    readonly tokenizer: ModelTokenizer,
    private readonly template: CompiledTemplate,
    private readonly audio?: TemplateAudio,
  ) {
    this.placeholderId = audio ? tokenizer.requireId(audio.placeholder) : undefined;
  }

  render(conversation: Conversation, audio: AudioInfo[]): RenderedConversation {
    const messages = conversation.messages;
    this.checkText(messages);
    const full = this.template.render(templateMessages(messages), false);
    const spans = full.marked ?? this.assistantSpans(messages, full.text);
    const ids = this.tokenizer.encode(full.text);
    const mask = new Uint8Array(ids.length);
    for (const [start, end] of spans) {
      const from = this.tokenAt(full.text, ids, start, 'start');
      const to = this.tokenAt(full.text, ids, end, 'end');
      mask.fill(1, from, to);
    }
    return this.expand(ids, mask, audio, true);
  }

  renderPrompt(messages: Message[], audio: AudioInfo[]): RenderedPrompt {
    this.checkText(messages);
    const { text } = this.template.render(templateMessages(messages), true);
    const { inputIds, audioTokenCounts } = this.expand(this.tokenizer.encode(text), undefined, audio, false);
    return { inputIds, audioTokenCounts };
  }

  /** Character spans of the assistant messages in `full` (see the class comment). */
  private assistantSpans(messages: readonly Message[], full: string): Array<[number, number]> {
    const spans: Array<[number, number]> = [];
    messages.forEach((m, i) => {
      if (m.role !== 'assistant') return;
      const before = templateMessages(messages.slice(0, i));
      const prompt = this.template.render(before, true).text;
      const closed = this.template.render(templateMessages(messages.slice(0, i + 1)), false).text;
      if (!closed.startsWith(prompt) || !full.startsWith(closed))
        throw new EagletError(
          'EAGLET_TEMPLATE_NO_SPANS',
          `the chat template (${this.template.source.file}) cannot mark the assistant tokens of messages[${i}]: rendering the conversation up to that reply with the generation prompt is not a prefix of rendering it with the reply, and that of the whole conversation (the template renders earlier turns differently once later ones follow)`,
          {
            hint: 'give the template {% generation %} ... {% endgeneration %} markers around what the assistant generates (transformers reads them too), or split such conversations into one assistant reply each',
          },
        );
      spans.push([prompt.length, closed.length]);
    });
    return spans;
  }

  /**
   * The token index at character `pos` of `text` (whose encoding is `ids`): tokens before it hold
   * only characters before `pos`. A token that straddles `pos` counts as inside the span, at its
   * start (`start`) and at its end (`end`), as transformers' offset-based mask counts it.
   * Found by encoding the text up to `pos`: where that encoding stops agreeing with `ids`.
   */
  private tokenAt(text: string, ids: number[], pos: number, side: 'start' | 'end'): number {
    if (pos >= text.length) return ids.length;
    const before = this.tokenizer.encode(text.slice(0, pos));
    let k = 0;
    while (k < before.length && before[k] === ids[k]) k++;
    if (k === before.length) return k;
    return side === 'start' ? k : k + 1;
  }

  /** Refuses text that holds a special token's spelling: the tokenizer would read it as a control token. */
  private checkText(messages: readonly Message[]): void {
    messages.forEach((m, i) => {
      m.content.forEach((part, j) => {
        if (part.type === 'audio') {
          if (m.role === 'assistant')
            throw recordError(`messages[${i}].content[${j}]: audio in an assistant reply`);
          if (!this.audio) throw recordError(`messages[${i}].content[${j}]: this target takes text only`);
          return;
        }
        const special = this.tokenizer.addedTokens.find((t) => part.text.includes(t));
        if (special)
          throw recordError(
            `messages[${i}].content[${j}].text contains the special token ${special}; the tokenizer would read it as a control token`,
          );
      });
    });
  }

  /** Repeats each audio placeholder to its clip's token count (the processor's expansion). */
  private expand(
    ids: number[],
    mask: Uint8Array | undefined,
    audio: AudioInfo[],
    training: boolean,
  ): RenderedConversation {
    const counts: number[] = [];
    const outIds: number[] = [];
    const outMask: number[] = [];
    ids.forEach((id, t) => {
      if (id !== this.placeholderId) {
        outIds.push(id);
        outMask.push(mask?.[t] ?? 0);
        return;
      }
      const info = audio[counts.length];
      if (!info) throw recordError(`audio part ${counts.length + 1} has no decoded audio`);
      const n = this.audio!.tokenCount(info.samples);
      if (n < 1) throw recordError(`audio part ${counts.length + 1} is too short for one audio token`);
      if (training && mask?.[t])
        throw recordError(`audio part ${counts.length + 1} lies in an assistant span`);
      counts.push(n);
      for (let i = 0; i < n; i++) {
        outIds.push(id);
        outMask.push(0);
      }
    });
    if (counts.length !== audio.length)
      throw recordError(
        `the chat template rendered ${counts.length} audio placeholder(s) for ${audio.length} decoded audio clip(s)`,
      );
    return {
      inputIds: Int32Array.from(outIds),
      lossMask: Uint8Array.from(outMask),
      audioTokenCounts: counts,
    };
  }
}
