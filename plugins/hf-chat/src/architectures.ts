/**
 * The decoder-only chat architectures this plugin claims: transformers loads each with
 * `AutoModelForCausalLM`, its decoder holds its layers as `model.layers`, its embedding is
 * `model.embed_tokens`, and its logits are `lm_head(norm(h))` with nothing after (no soft-capping
 * or scaling, which the engine's target logits would miss). `vllmEagle3`: whether vLLM's class
 * for it implements `SupportsEagle3` (checked in vLLM 0.32.0's source: `supports_eagle3(cls)`),
 * i.e. whether `vllm serve` runs an Eagle3 draft for it without a plugin.
 */
export const ARCHITECTURES: Readonly<Record<string, { family: string; vllmEagle3: boolean }>> = {
  LlamaForCausalLM: { family: 'Llama (Llama 3.x)', vllmEagle3: true },
  MistralForCausalLM: { family: 'Mistral', vllmEagle3: true },
  Qwen2ForCausalLM: { family: 'Qwen2 / Qwen2.5', vllmEagle3: true },
  Qwen3ForCausalLM: { family: 'Qwen3', vllmEagle3: true },
  Qwen3MoeForCausalLM: { family: 'Qwen3 MoE', vllmEagle3: true },
  Phi3ForCausalLM: { family: 'Phi-3', vllmEagle3: true },
  Gemma3ForCausalLM: { family: 'Gemma 3 (text)', vllmEagle3: false },
};
