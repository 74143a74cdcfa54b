import { z } from 'zod';

/**
 * The Eagle3 draft model's architecture, in the field names of the Hugging Face `config.json`
 * that vLLM's `llama_eagle3.py` reads. Defaults are the Qwen2-Audio-7B draft (REFERENCE.md);
 * target plugins supply their own through `TargetModel.draftDefaults`.
 */
export const DraftConfig = z.strictObject({
  architectures: z.array(z.string()).default(['LlamaForCausalLMEagle3']),
  model_type: z.literal('llama').default('llama'),
  hidden_size: z.number().int().positive().default(4096),
  intermediate_size: z.number().int().positive().default(11008),
  num_hidden_layers: z.literal(1).default(1),
  num_attention_heads: z.number().int().positive().default(32),
  num_key_value_heads: z.number().int().positive().default(4),
  head_dim: z.number().int().positive().default(128),
  hidden_act: z.literal('silu').default('silu'),
  vocab_size: z.number().int().positive().default(156032),
  draft_vocab_size: z.number().int().positive().default(32000),
  /** Width of the target's hidden states fed to `fc` (3 x this); omitted in config.json when equal to hidden_size. */
  target_hidden_size: z.number().int().positive().optional(),
  rope_theta: z.number().positive().default(10000),
  max_position_embeddings: z.number().int().positive().default(8192),
  rms_norm_eps: z.number().positive().default(1e-6),
  attention_bias: z.boolean().default(false),
  tie_word_embeddings: z.literal(false).default(false),
  torch_dtype: z.enum(['bfloat16', 'float16', 'float32']).default('bfloat16'),
  bos_token_id: z.number().int().nonnegative().optional(),
  eos_token_id: z.number().int().nonnegative().optional(),
  /** vLLM's aux layer ids: the state after k target layers (0 = embeddings). */
  eagle_aux_hidden_state_layer_ids: z.array(z.number().int().nonnegative()).length(3).optional(),
});
export type DraftConfig = z.infer<typeof DraftConfig>;
export type DraftConfigInput = z.input<typeof DraftConfig>;
