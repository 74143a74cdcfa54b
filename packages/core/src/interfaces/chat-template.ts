import type { Conversation, Message } from '../schemas/conversation.js';
import type { TokenizerHandle } from './tokenizer.js';

/** What the template needs to know of each audio part, in reading order. */
export interface AudioInfo {
  /** Length in samples at the target's sample rate (after any segmentation or truncation). */
  samples: number;
}

/** A conversation rendered for training. All arrays have one entry per token. */
export interface RenderedConversation {
  inputIds: Int32Array;
  /** 1 on tokens the draft learns to predict: assistant replies, the closing end-of-turn tokens included. */
  lossMask: Uint8Array;
  /** Placeholder tokens per audio part, in reading order. */
  audioTokenCounts: number[];
}

/** A prompt rendered for generation: ends with the assistant header. */
export interface RenderedPrompt {
  inputIds: Int32Array;
  audioTokenCounts: number[];
}

/** A chat template bound to one model folder's tokenizer. */
export interface ChatTemplateSession {
  readonly templateId: string;
  readonly tokenizer: TokenizerHandle;
  /** Renders a whole conversation with its assistant loss mask. */
  render(conversation: Conversation, audio: AudioInfo[]): RenderedConversation;
  /** Renders messages up to and including the header of the next assistant turn. */
  renderPrompt(messages: Message[], audio: AudioInfo[]): RenderedPrompt;
}

/** A chat template. Must reproduce the model's own template token for token. */
export interface ChatTemplate {
  /** Id used in configs (seed: CHAT_TEMPLATE_TYPE). Unique across plugins. */
  readonly id: string;
  /** One line shown by `eaglet plugins`. */
  readonly description: string;
  /** Loads the tokenizer files of a model folder and binds the template to them. */
  load(modelDir: string): Promise<ChatTemplateSession>;
}
