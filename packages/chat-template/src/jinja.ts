import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EagletError, readJsonFile } from '@eaglet/core';
import { Template } from '@huggingface/jinja';

/** A model folder's chat template: its Jinja source and the file it came from. */
export interface FolderTemplate {
  source: string;
  file: string;
}

/**
 * The chat template a model folder declares, looked for where transformers saves it:
 * `chat_template.jinja`, then `chat_template.json` and `processor_config.json` (a processor's),
 * then `tokenizer_config.json` (a string, or a list of named templates of which `default` is used).
 */
export function readFolderTemplate(modelDir: string): FolderTemplate | undefined {
  const jinja = join(modelDir, 'chat_template.jinja');
  if (existsSync(jinja)) return { source: readFileSync(jinja, 'utf8'), file: jinja };
  for (const name of ['chat_template.json', 'processor_config.json', 'tokenizer_config.json']) {
    const file = join(modelDir, name);
    if (!existsSync(file)) continue;
    const t = (readJsonFile(file, `the model's ${name}`) as { chat_template?: unknown }).chat_template;
    if (typeof t === 'string') return { source: t, file };
    if (Array.isArray(t)) {
      const named = t.find((x) => (x as { name?: unknown })?.name === 'default') as
        | { template?: unknown }
        | undefined;
      if (typeof named?.template === 'string') return { source: named.template, file };
    }
  }
  return undefined;
}

// transformers' `{% generation %}...{% endgeneration %}` marks what the assistant generates
// (`return_assistant_tokens_mask`). @huggingface/jinja has no such tag: each becomes an output of
// a private-use character (keeping the tag's whitespace control), found and removed after rendering.
const OPEN = '\uE000';
const CLOSE = '\uE001';
const GENERATION_TAG = /\{%(-?)\s*(end)?generation\s*(-?)%\}/g;

/** A rendering and, for templates with generation markers, the spans they mark (string indices). */
export interface Rendered {
  text: string;
  /** The `{% generation %}` spans, in order; undefined when the template has no markers. */
  marked?: Array<[number, number]>;
}

/** A chat template compiled once, rendered with the variables transformers passes. */
export class CompiledTemplate {
  readonly hasGenerationMarkers: boolean;
  private readonly template: Template;

  constructor(
    readonly source: FolderTemplate,
    private readonly specialTokens: Readonly<Record<string, string>>,
  ) {
    this.hasGenerationMarkers = GENERATION_TAG.test(source.source);
    GENERATION_TAG.lastIndex = 0;
    const jinja = source.source.replace(
      GENERATION_TAG,
      (_, left: string, end: string | undefined, right: string) =>
        `{{${left} '${end ? CLOSE : OPEN}' ${right}}}`,
    );
    try {
      this.template = new Template(jinja);
    } catch (e) {
      throw new EagletError(
        'EAGLET_TEMPLATE_INVALID',
        `${source.file}: the chat template does not parse: ${(e as Error).message}`,
        { hint: 'restore the chat template the model was published with' },
      );
    }
  }

  /**
   * Renders `messages` as transformers' `apply_chat_template` does: the special tokens of
   * tokenizer_config.json as variables, no tools or documents. A template's own
   * `raise_exception(...)` becomes an error with its message.
   */
  render(messages: unknown[], addGenerationPrompt: boolean): Rendered {
    let out: string;
    try {
      out = this.template.render({
        ...this.specialTokens,
        messages,
        add_generation_prompt: addGenerationPrompt,
        tools: null,
        documents: null,
      });
    } catch (e) {
      throw new EagletError(
        'EAGLET_TEMPLATE_INPUT',
        `the chat template (${this.source.file}) refused the conversation: ${(e as Error).message}`,
      );
    }
    if (!this.hasGenerationMarkers) return { text: out };
    let text = '';
    const marked: Array<[number, number]> = [];
    let open: number | undefined;
    for (const ch of out) {
      if (ch === OPEN) open = text.length;
      else if (ch === CLOSE) {
        if (open !== undefined && text.length > open) marked.push([open, text.length]);
        open = undefined;
      } else text += ch;
    }
    return { text, marked };
  }
}
