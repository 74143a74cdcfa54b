import { configNumber as num } from './checkpoint.js';
import type { TargetInfo } from './interfaces/target-model.js';
import type { DraftConfigInput } from './schemas/draft.js';

/**
 * A text config's rope theta: `rope_theta`, or `rope_parameters.rope_theta` (transformers 5's
 * layout; older files name the block `rope_scaling`).
 */
export function textConfigRopeTheta(config: Readonly<Record<string, unknown>>): number | undefined {
  const block = (config.rope_parameters ?? config.rope_scaling) as
    | { rope_theta?: unknown }
    | null
    | undefined;
  return num(config, 'rope_theta') ?? (typeof block?.rope_theta === 'number' ? block.rope_theta : undefined);
}

/** What a family's text config may leave out, and the draft vocabulary size. */
export interface TextConfigDraftDefaults {
  draftVocabSize: number;
  ropeTheta: number;
  maxPositionEmbeddings: number;
}

/**
 * The Eagle3 draft of a decoder whose text config uses transformers' common names: one layer that
 * copies the target's attention shape (num_attention_heads, num_key_value_heads, head_dim), MLP
 * width, rope theta, positions and norm eps from `info.textConfig`, as the published Eagle3 drafts
 * of such targets do. What the config leaves out falls back to `defaults` (heads: one per 128 of
 * width). Target plugins whose text model is of this kind return it from `draftDefaults`.
 */
export function draftFromTextConfig(info: TargetInfo, defaults: TextConfigDraftDefaults): DraftConfigInput {
  const c = info.textConfig ?? {};
  const heads = num(c, 'num_attention_heads') ?? Math.max(1, Math.floor(info.hiddenSize / 128));
  return {
    hidden_size: info.hiddenSize,
    intermediate_size: num(c, 'intermediate_size') ?? info.hiddenSize * 4,
    num_attention_heads: heads,
    num_key_value_heads: num(c, 'num_key_value_heads') ?? heads,
    head_dim: num(c, 'head_dim') ?? Math.floor(info.hiddenSize / heads),
    vocab_size: info.vocabSize,
    draft_vocab_size: Math.min(defaults.draftVocabSize, info.vocabSize),
    rope_theta: textConfigRopeTheta(c) ?? defaults.ropeTheta,
    max_position_embeddings: num(c, 'max_position_embeddings') ?? defaults.maxPositionEmbeddings,
    rms_norm_eps: num(c, 'rms_norm_eps') ?? 1e-6,
    ...(info.bosTokenId === undefined ? {} : { bos_token_id: info.bosTokenId }),
    ...(info.eosTokenIds[0] === undefined ? {} : { eos_token_id: info.eosTokenIds[0] }),
  };
}
