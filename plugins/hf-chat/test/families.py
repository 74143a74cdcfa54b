"""Tiny checkpoints of every architecture hf-chat claims, and its adapter checked on each.

    node tools/python.mjs plugins/hf-chat/test/families.py OUT_DIR

For each family: a model from transformers' real config class (hidden 64, 8 layers, random
weights) saved to OUT_DIR/<architecture> with a tokenizer-less config, loaded through the plugin's
``load_target``, and checked against transformers' own forward:
- the aux states the engine hooks (vLLM's numbering: id k = the state after k layers) equal
  ``output_hidden_states``' ``hidden_states[k]`` for k in (0, 2, 4, 5),
- the decoder's final state through the head equals the model's logits,
- generation's cached path (``TargetRunner``: a prefill, then one token at a time) gives the same
  next-token logits as the full forward.
Prints one JSON line {architecture: {...}}; exits non-zero on a difference.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from eaglet_engine.config import EngineTarget  # noqa: E402
from eaglet_engine.generate.target import TargetRunner  # noqa: E402
from eaglet_engine.targets import AuxStates  # noqa: E402
from eaglet_hf_chat import load_target  # noqa: E402

COMMON = dict(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=8, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)


def configs():
    import transformers as t

    return {
        "LlamaForCausalLM": (t.LlamaConfig(**COMMON, rope_theta=500000.0), t.LlamaForCausalLM),
        "MistralForCausalLM": (t.MistralConfig(**COMMON, sliding_window=None), t.MistralForCausalLM),
        "Qwen2ForCausalLM": (t.Qwen2Config(**COMMON), t.Qwen2ForCausalLM),
        "Qwen3ForCausalLM": (t.Qwen3Config(**COMMON, head_dim=16), t.Qwen3ForCausalLM),
        "Qwen3MoeForCausalLM": (t.Qwen3MoeConfig(**COMMON, head_dim=16, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32), t.Qwen3MoeForCausalLM),
        "Phi3ForCausalLM": (t.Phi3Config(**COMMON, pad_token_id=0), t.Phi3ForCausalLM),
        "Gemma3ForCausalLM": (t.Gemma3TextConfig(**COMMON, head_dim=16, sliding_window=4, final_logit_softcapping=None), t.Gemma3ForCausalLM),
    }


def check(arch: str, out: Path) -> dict:
    config, cls = configs()[arch]
    config.architectures = [arch]
    torch.manual_seed(0)
    model = cls(config).eval()
    folder = out / arch
    model.save_pretrained(folder)
    target = EngineTarget(id="hf-chat", adapter="eaglet_hf_chat", model=str(folder), architecture=arch, aux_layer_ids=(2, 4, 5), audio_token_id=None)
    adapter = load_target(target, device=torch.device("cpu"), dtype=torch.float32)
    ids = torch.randint(0, config.vocab_size, (1, 12))
    with torch.no_grad():
        ref = model(ids, output_hidden_states=True)
        ks = (0, 2, 4, 5)
        aux = AuxStates(adapter.layers, ks)
        final = adapter.decoder(inputs_embeds=adapter.input_embeddings(ids, {}), use_cache=False).last_hidden_state
        taps = aux.take().split(config.hidden_size, dim=-1)
        aux.remove()
    worst = 0.0
    for k, tap in zip(ks, taps):
        d = float((tap - ref.hidden_states[k]).abs().max())
        if d > 1e-4:
            raise SystemExit(f"{arch}: aux state {k} differs from hidden_states[{k}] by {d}")
        worst = max(worst, d)
    logits = final @ adapter.lm_head_weight().t()
    d_logits = float((logits - ref.logits).abs().max())
    if d_logits > 1e-3:
        raise SystemExit(f"{arch}: lm_head(final state) differs from the model's logits by {d_logits}")
    runner = TargetRunner(adapter, (2, 4, 5))
    runner.reset()
    step = runner.forward(ids[0, :8].tolist(), logits_for="last")
    cached = [step.logits[-1]]
    for t in range(8, 12):
        cached.append(runner.forward([int(ids[0, t])]).logits[-1])
    d_cache = max(float((c - ref.logits[0, 7 + j]).abs().max()) for j, c in enumerate(cached))
    if d_cache > 1e-3:
        raise SystemExit(f"{arch}: cached generation logits differ from the full forward by {d_cache}")
    return {"layers": len(adapter.layers), "aux_max_diff": worst, "logits_max_diff": d_logits, "cached_max_diff": d_cache}


def main(out_dir: str) -> None:
    torch.set_num_threads(1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    print(json.dumps({arch: check(arch, out) for arch in configs()}))


if __name__ == "__main__":
    main(sys.argv[1])
