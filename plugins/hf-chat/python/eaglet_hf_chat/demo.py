"""The hf-chat plugin's quickstart target (``TargetDemo.builder``): a tiny Llama 3 that transformers
loads offline.

    python -m eaglet_hf_chat.demo OUT_DIR [--seed N]

What is real and what is tiny:
- The architecture is transformers' ``LlamaForCausalLM`` from a real ``LlamaConfig`` (rope theta
  500000, grouped-query attention, untied head, Llama 3 Instruct's two end ids), with hidden 128,
  8 decoder layers (so Eagle3's aux layers 2, 4, 5 differ), 2 heads of 64 (a head size vLLM's CPU
  attention takes, so vLLM serves it and its draft) and random (seeded) weights.
- The chat template is Meta-Llama-3-Instruct's (``demo/chat_template.jinja``, the published
  tokenizer_config.json's), with its special tokens ``<|begin_of_text|>``, ``<|start_header_id|>``,
  ``<|end_header_id|>``, ``<|eot_id|>``.
- The tokenizer is a faithful small one: a byte-level BPE with Llama 3's split regex, trained on
  the demo's own conversations (about 1000 tokens instead of 128256), so the model stays tiny.
- The output head is scaled (x25): a random model's next-token distributions are nearly flat, so
  its greedy answers are arbitrary and no draft could learn them.

Deterministic for a given seed and library versions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from eaglet_engine.demo_tokenizer import byte_level_bpe

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
# Llama 3's pre-tokenizer split regex (its tokenizer.json), before byte-level.
LLAMA3_SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
SPECIAL_TOKENS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
VOCAB = 1024  # learnt pieces and bytes; the special tokens follow
HEAD_SCALE = 25.0


def corpus() -> list[str]:
    """The demo's conversations (what the tokenizer learns its pieces from)."""
    data = json.loads((DEMO_DIR / "demo.json").read_text(encoding="utf-8"))
    return [t for r in data["records"] for t in (r["prompt"], r["answer"])] * 4


def build(out: str | Path, seed: int = 0, head_scale: float = HEAD_SCALE) -> dict[str, Any]:
    """Writes the tiny checkpoint folder into ``out``; returns a summary."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    backend = byte_level_bpe(corpus(), split_regex=LLAMA3_SPLIT, special_tokens=SPECIAL_TOKENS, vocab_size=VOCAB)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>", clean_up_tokenization_spaces=False)
    tokenizer.chat_template = (DEMO_DIR / "chat_template.jinja").read_text(encoding="utf-8")
    tokenizer.save_pretrained(out)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    vocab_size = len(tokenizer)  # every id the head can choose decodes

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=8,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=64,  # a head size vLLM's CPU attention takes
        max_position_embeddings=8192,
        rms_norm_eps=1e-5,
        rope_theta=500000.0,
        bos_token_id=ids["<|begin_of_text|>"],
        eos_token_id=[ids["<|end_of_text|>"], ids["<|eot_id|>"]],
        tie_word_embeddings=False,
    )
    config.architectures = ["LlamaForCausalLM"]
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(head_scale)
    model.save_pretrained(out)
    return {"out": str(out), "seed": seed, "tokenizer_size": len(tokenizer), "vocab_size": vocab_size, "headScale": head_scale}


def build_demo(out: str, seed: int) -> dict[str, Any]:
    """The quickstart's demo target (``TargetDemo.builder``)."""
    return build(out, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(build(args.out_dir, args.seed)))


if __name__ == "__main__":
    sys.exit(main())
