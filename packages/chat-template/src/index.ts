/**
 * @eaglet/chat-template: a model folder's own chat template, rendered with @huggingface/jinja and
 * tokenized with its own tokenizer (tokenizers.js), token-exact against transformers'
 * `apply_chat_template`, with the assistant loss mask and audio placeholders expanded to the
 * processor's counts. Target plugins build their ChatTemplate on `checkpointChatTemplate`.
 */
export { type CheckpointTemplateOptions, checkpointChatTemplate } from './checkpoint-template.js';
export { CompiledTemplate, type FolderTemplate, type Rendered, readFolderTemplate } from './jinja.js';
export { CheckpointTemplateSession, type TemplateAudio, templateMessages } from './session.js';
export { type LoadTokenizerOptions, loadModelTokenizer, type ModelTokenizer } from './tokenizer.js';
