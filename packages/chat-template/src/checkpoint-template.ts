import type { ChatTemplate, ChatTemplateSession } from '@eaglet/core';
import { EagletError } from '@eaglet/core';
import { CompiledTemplate, readFolderTemplate } from './jinja.js';
import { CheckpointTemplateSession, type TemplateAudio } from './session.js';
import { type LoadTokenizerOptions, loadModelTokenizer } from './tokenizer.js';

export interface CheckpointTemplateOptions {
  /** The template's id (a target plugin's `chatTemplate`). */
  id: string;
  /** One line shown by `eaglet plugins`. */
  description: string;
  /** For audio targets: the placeholder the template writes per clip and the processor's token count. */
  audio?: TemplateAudio;
  /** How the tokenizer loads (slow-file folders need the family's split regex). */
  tokenizer?: LoadTokenizerOptions;
}

/** A one-turn conversation every chat template must be able to mask (checked when a template loads). */
const PROBE = [
  { role: 'user' as const, content: [{ type: 'text' as const, text: 'Hello' }] },
  { role: 'assistant' as const, content: [{ type: 'text' as const, text: 'Hi' }] },
];

/**
 * A ChatTemplate that renders whatever template the model folder ships (`chat_template.jinja`,
 * `chat_template.json` or `tokenizer_config.json`'s `chat_template`), with its tokenizer: one
 * path for every target, token-exact against transformers' `apply_chat_template`. Loading refuses
 * a folder without a template and a template that cannot mark a one-turn assistant reply.
 */
export function checkpointChatTemplate(options: CheckpointTemplateOptions): ChatTemplate {
  return {
    id: options.id,
    description: options.description,
    async load(modelDir: string): Promise<ChatTemplateSession> {
      const tokenizer = loadModelTokenizer(modelDir, options.tokenizer);
      const source = readFolderTemplate(modelDir);
      if (!source)
        throw new EagletError('EAGLET_TEMPLATE_MISSING', `${modelDir} declares no chat template`, {
          hint: 'the model folder needs chat_template.jinja, or chat_template in tokenizer_config.json (as the published checkpoint has it)',
        });
      const session = new CheckpointTemplateSession(
        options.id,
        tokenizer,
        new CompiledTemplate(source, tokenizer.specialTokens),
        options.audio,
      );
      session.render({ id: 'probe', messages: PROBE, source: { file: source.file, line: 1 } }, []);
      return session;
    },
  };
}
