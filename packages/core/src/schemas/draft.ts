import { z } from 'zod';

/**
 * The Eagle3 draft model's architecture, in the field names of the Hugging Face `config.json`
 * that vLLM's `llama_eagle3.py` reads. The sizes have no default here: they are the target's, so
 * its plugin supplies them (`TargetModel.draftDefaults`) and `eaglet train` resolves the rest (the
 * vocabulary mapping's sizes, the aux layer ids, the target's width). The defaults left are what
 * every Eagle3 Llama draft shares.
 */
export const DraftConfig = z.strictObject({
  architectures: z.array(z.string()).default(['LlamaForCausalLMEagle3']),
  model_type: z.literal('llama').default('llama'),
  hidden_size: z.number().int().positive(),
  intermediate_size: z.number().int().positive(),
  num_hidden_layers: z.literal(1).default(1),
  num_attention_heads: z.number().int().positive(),
  num_key_value_heads: z.number().int().positive(),
  head_dim: z.number().int().positive(),
  hidden_act: z.literal('silu').default('silu'),
  vocab_size: z.number().int().positive(),
  draft_vocab_size: z.number().int().positive(),
  /** Width of the target's hidden states fed to `fc` (3 x this); omitted in config.json when equal to hidden_size. */
  target_hidden_size: z.number().int().positive().optional(),
  rope_theta: z.number().positive(),
  max_position_embeddings: z.number().int().positive(),
  rms_norm_eps: z.number().positive(),
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
