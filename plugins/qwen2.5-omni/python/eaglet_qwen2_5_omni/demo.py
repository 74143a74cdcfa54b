"""The Qwen2.5-Omni plugin's quickstart target (``TargetDemo.builder``) and test model: a tiny
Qwen2.5-Omni checkpoint that transformers loads offline, laid out as the hub's.

    python -m eaglet_qwen2_5_omni.demo OUT_DIR [--seed N]

What is real and what is tiny:
- The layout is the hub checkpoint's (Qwen/Qwen2.5-Omni-7B): a whole-model ``Qwen2_5OmniConfig``
  (``architectures: ["Qwen2_5OmniModel"]``, thinker, talker and token2wav configs) whose
  safetensors hold the thinker's weights under the hub's names (``thinker.model.*``,
  ``thinker.audio_tower.*``, ``thinker.visual.*``, ``thinker.lm_head.weight``); eaglet and vLLM
  read the thinker alone, so the talker and token2wav carry no weights here.
- The feature extractor is the hub's: WhisperFeatureExtractor with 128 mel bins, 16 kHz, hop 160
  and a 300 s window (``chunk_length`` 300, ``n_samples`` 4800000), in preprocessor_config.json
  with the processor class, so audio token counts equal the real model's (25 per second).
- The chat template is Qwen2.5-Omni's (``demo/chat_template.jinja``: ChatML, its default system
  prompt, ``<|audio_bos|><|AUDIO|><|audio_eos|>`` per clip), with its special tokens in the
  hub's order.
- The tokenizer is a faithful small one: a byte-level BPE with Qwen2's split regex, trained on the
  demo's transcripts and prompts (about 600 tokens instead of 151643).
- The thinker's audio encoder keeps 128 mel bins, 1500 source positions and its 100-frame
  windows; every width is tiny. The text model has hidden 128, 8 layers (Eagle3's aux layers 2,
  4, 5), 2 heads of 64 (a head size vLLM's CPU attention takes) with multimodal rope sections
  [8, 12, 12] (the 7B's [16, 24, 24] for half its head size).
- Weights are random (seeded); the output head is scaled (x25) so greedy answers are peaked.

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
# Qwen2's pre-tokenizer split regex (its tokenizer.json), before byte-level.
QWEN2_SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
# Qwen2.5-Omni's added tokens, in the hub tokenizer's order (ids 151643.. there).
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|AUDIO|>",
    "<|audio_bos|>",
    "<|audio_eos|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_bos|>",
    "<|vision_eos|>",
    "<|vision_pad|>",
    "<|IMAGE|>",
    "<|VIDEO|>",
]
# The processor reads these attributes of the tokenizer (tokenizer_config.json's named tokens).
NAMED_TOKENS = {
    "audio_token": "<|AUDIO|>",
    "audio_bos_token": "<|audio_bos|>",
    "audio_eos_token": "<|audio_eos|>",
    "image_token": "<|IMAGE|>",
    "video_token": "<|VIDEO|>",
    "vision_bos_token": "<|vision_bos|>",
    "vision_eos_token": "<|vision_eos|>",
}
VOCAB = 1024
HEAD_SCALE = 25.0
# The hub's preprocessor_config.json: the Whisper feature extractor and the image processor it shares.
PREPROCESSOR = {
    "chunk_length": 300,
    "dither": 0.0,
    "feature_extractor_type": "WhisperFeatureExtractor",
    "feature_size": 128,
    "hop_length": 160,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_processor_type": "Qwen2VLImageProcessor",
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "max_pixels": 12845056,
    "merge_size": 2,
    "min_pixels": 3136,
    "n_fft": 400,
    "n_samples": 4800000,
    "nb_max_frames": 30000,
    "padding_side": "right",
    "padding_value": 0.0,
    "patch_size": 14,
    "processor_class": "Qwen2_5OmniProcessor",
    "return_attention_mask": True,
    "sampling_rate": 16000,
    "temporal_patch_size": 2,
}


def corpus() -> list[str]:
    data = json.loads((DEMO_DIR / "demo.json").read_text(encoding="utf-8"))
    texts = [t for r in data["records"] for t in (r["prompt"], r["answer"])]
    template = (DEMO_DIR / "chat_template.jinja").read_text(encoding="utf-8")
    return (texts + [template]) * 4


def hub_name(key: str) -> str:
    """A thinker state-dict key as the hub checkpoint names it."""
    if key.startswith("model.language_model."):
        return "thinker.model." + key[len("model.language_model.") :]
    if key.startswith("model."):
        return "thinker." + key[len("model.") :]
    return "thinker." + key


def build(out: str | Path, seed: int = 0, head_scale: float = HEAD_SCALE) -> dict[str, Any]:
    """Writes the tiny checkpoint folder into ``out``; returns a summary."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from safetensors.torch import save_file
    from transformers import PreTrainedTokenizerFast, Qwen2_5OmniConfig, Qwen2_5OmniThinkerForConditionalGeneration

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    backend = byte_level_bpe(corpus(), split_regex=QWEN2_SPLIT, special_tokens=SPECIAL_TOKENS, vocab_size=VOCAB)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=NAMED_TOKENS,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = (DEMO_DIR / "chat_template.jinja").read_text(encoding="utf-8")
    tokenizer.save_pretrained(out)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    (out / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    rope = {"rope_type": "default", "type": "default", "mrope_section": [8, 12, 12], "rope_theta": 1000000.0}
    config = Qwen2_5OmniConfig(
        thinker_config={
            "audio_config": {
                "num_mel_bins": 128,
                "encoder_layers": 2,
                "encoder_attention_heads": 2,
                "encoder_ffn_dim": 64,
                "d_model": 32,
                "output_dim": 128,
                "n_window": 100,
                "max_source_positions": 1500,
            },
            "vision_config": {"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 128, "fullatt_block_indexes": [0]},
            "text_config": {
                "vocab_size": len(tokenizer),
                "hidden_size": 128,
                "intermediate_size": 384,
                "num_hidden_layers": 8,
                "num_attention_heads": 2,
                "num_key_value_heads": 1,
                "max_position_embeddings": 32768,
                "rms_norm_eps": 1e-6,
                "rope_scaling": rope,
                "bos_token_id": ids["<|im_start|>"],
                "eos_token_id": ids["<|im_end|>"],
                "tie_word_embeddings": False,
            },
            "audio_token_index": ids["<|AUDIO|>"],
            "image_token_index": ids["<|IMAGE|>"],
            "video_token_index": ids["<|VIDEO|>"],
            "audio_start_token_id": ids["<|audio_bos|>"],
            "audio_end_token_id": ids["<|audio_eos|>"],
            "vision_start_token_id": ids["<|vision_bos|>"],
            "vision_end_token_id": ids["<|vision_eos|>"],
            "tie_word_embeddings": False,
        },
        talker_config={
            "vocab_size": 8448,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "embedding_size": 128,
            "rope_scaling": {**rope, "mrope_section": [2, 3, 3]},
        },
        enable_audio_output=False,
    )
    config.architectures = ["Qwen2_5OmniModel"]
    config.save_pretrained(out)
    torch.manual_seed(seed)
    thinker = Qwen2_5OmniThinkerForConditionalGeneration(config.thinker_config).eval()
    with torch.no_grad():
        thinker.lm_head.weight.mul_(head_scale)
    tensors = {hub_name(k): v.detach().contiguous().clone() for k, v in thinker.state_dict().items()}
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "generation_config.json").write_text(json.dumps({"eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]]}, indent=2) + "\n", encoding="utf-8")
    return {
        "out": str(out),
        "seed": seed,
        "parameters": sum(v.numel() for v in tensors.values()),
        "tokenizer_size": len(tokenizer),
        "headScale": head_scale,
    }


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
