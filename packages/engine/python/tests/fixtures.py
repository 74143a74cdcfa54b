"""Fixtures built offline from configs: tiny random targets (Qwen2-Audio and a text causal LM),
prepared Arrow shards written per the contract (@eaglet/core schemas/prepared.ts), vocab files,
train configs with every default the TS side fills in."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import torch

from eaglet_engine import config as config_mod
from eaglet_engine.config import TrainConfig
from eaglet_engine.vocab import save_vocab

from .tiny import qwen2_audio_config

REPO = Path(__file__).resolve().parents[4]
QWEN2_AUDIO_PYTHON = REPO / "plugins" / "qwen2-audio" / "python"

TEXT_VOCAB = 300
AUDIO_TOKEN = 290


def tiny_qwen2_audio(folder: Path, seed: int = 0) -> Path:
    """A Qwen2AudioForConditionalGeneration with the real audio geometry (128 mel bins, 1500
    encoder positions, 30 s window) and tiny widths; 8 text layers so the aux layers (2, 4, 5) differ."""
    from transformers import Qwen2AudioForConditionalGeneration, WhisperFeatureExtractor

    if (folder / "config.json").is_file():
        return folder
    torch.manual_seed(seed)
    cfg = qwen2_audio_config(vocab=TEXT_VOCAB, audio_token=AUDIO_TOKEN, hidden=32, layers=8, d_model=16, max_positions=4096)
    model = Qwen2AudioForConditionalGeneration(cfg)
    # Sharper logits than the default init: a target whose argmax depends on its input.
    with torch.no_grad():
        model.lm_head.weight.mul_(25.0)
    model.save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=128).save_pretrained(folder)
    return folder


def tiny_causal_lm(folder: Path, seed: int = 0) -> Path:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    if (folder / "config.json").is_file():
        return folder
    torch.manual_seed(seed)
    cfg = Qwen2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=8, num_attention_heads=4, num_key_value_heads=2, vocab_size=TEXT_VOCAB, max_position_embeddings=4096)
    model = Qwen2ForCausalLM(cfg)
    with torch.no_grad():
        model.lm_head.weight.mul_(25.0)
    model.save_pretrained(folder)
    return folder


def audio_tokens(samples: int) -> int:
    """What the data says a clip costs (prepared data carries counts the TS plugin computed); the
    adapter checks them against transformers' own formula."""
    frames = -(-samples // 160)  # the feature extractor marks ceil(samples / hop) frames
    return (((frames - 1) // 2 + 1) - 2) // 2 + 1


def make_records(n: int, seed: int = 0, audio_every: int = 3, min_len: int = 24, max_len: int = 64) -> list[dict[str, Any]]:
    """Conversations as token ids: a prompt (with a short clip every `audio_every` records), then an
    assistant reply that is the loss-masked part (its last two tokens included)."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        prompt = list(rng.integers(0, 200, rng.integers(4, 10)))
        clips, counts = [], []
        if audio_every and i % audio_every == 0:
            samples = int(rng.integers(8000, 24000))
            clip = (0.1 * rng.standard_normal(samples)).astype(np.float32)
            count = audio_tokens(samples)
            prompt = prompt[:2] + [AUDIO_TOKEN] * count + prompt[2:]
            clips.append(clip)
            counts.append(count)
        reply = list(rng.integers(0, 256, rng.integers(min_len, max_len)))
        ids = prompt + reply
        mask = [0] * len(prompt) + [1] * len(reply)
        records.append({"id": f"r{i}", "input_ids": ids, "loss_mask": mask, "audio": clips, "audio_token_counts": counts, "line": i + 1})
    return records


def write_prepared(folder: Path, records: list[dict[str, Any]], *, target: str = "qwen2-audio", chat_template: str = "qwen2-audio", shard_size: int = 16) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shards = []
    content = hashlib.sha256(f"{target} {chat_template}".encode())  # prepare's fingerprint: what the rows depend on
    for s, start in enumerate(range(0, len(records), shard_size)):
        part = records[start : start + shard_size]
        table = pa.table(
            {
                "id": pa.array([r["id"] for r in part], pa.utf8()),
                "source_file": pa.array([str(folder / "data.jsonl")] * len(part), pa.utf8()),
                "source_line": pa.array([r["line"] for r in part], pa.int32()),
                "input_ids": pa.array([r["input_ids"] for r in part], pa.list_(pa.int32())),
                "loss_mask": pa.array([r["loss_mask"] for r in part], pa.list_(pa.uint8())),
                "num_tokens": pa.array([len(r["input_ids"]) for r in part], pa.int32()),
                "audio": pa.array([[c.tolist() for c in r["audio"]] for r in part], pa.list_(pa.list_(pa.float32()))),
                "audio_token_counts": pa.array([r["audio_token_counts"] for r in part], pa.list_(pa.int32())),
            }
        )
        name = f"shard-{s:05d}.arrow"
        with ipc.new_file(str(folder / name), table.schema) as writer:
            writer.write_table(table)
        shards.append({"file": name, "records": len(part), "sha256": "0" * 64})
        content.update((folder / name).read_bytes())
    manifest = {
        "schemaVersion": 1,
        "fingerprint": content.hexdigest(),
        "target": target,
        "chatTemplate": chat_template,
        "tokenizerHash": "tiny",
        "maxLength": 4096,
        "maxLengthPolicy": "reject",
        "longAudioPolicy": "segment",
        "sampleRate": 16000,
        "inputs": [],
        "shards": shards,
        "counts": {"records": len(records), "written": len(records), "rejected": 0},
        "stats": {"tokens": 0, "lossTokens": 0, "audioSeconds": 0, "audioClips": 0, "lengthHistogram": {"edges": [], "counts": []}},
        "audioActions": [],
        "createdWith": "tests",
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def write_vocab(path: Path, records: list[dict[str, Any]], vocab_size: int = TEXT_VOCAB, draft_vocab_size: int = 256) -> Path:
    """The mapping `eaglet data vocab` would build: the most frequent assistant tokens, filled up
    with unused ids when there are fewer, sorted by id."""
    freq = np.zeros(vocab_size, dtype=np.int64)
    for r in records:
        ids = np.asarray(r["input_ids"])[np.asarray(r["loss_mask"], dtype=bool)]
        np.add.at(freq, ids, 1)
    order = sorted(range(vocab_size), key=lambda t: (-freq[t], t))[:draft_vocab_size]
    ids = torch.tensor(sorted(order), dtype=torch.int64)
    t2d = torch.zeros(vocab_size, dtype=torch.bool)
    t2d[ids] = True
    save_vocab(path, ids - torch.arange(draft_vocab_size), t2d, torch.from_numpy(freq))
    return path


# The tiny Qwen2-Audio's facts as its plugin declares them (8 layers: vLLM's aux layers 2, 4, 5).
TINY_AUX_LAYER_IDS = [2, 4, 5]


def engine_target(model: Path) -> dict[str, Any]:
    """The target block `eaglet train` builds from the Qwen2-Audio plugin for the tiny model."""
    return {
        "id": "qwen2-audio",
        "adapter": "eaglet_qwen2_audio",
        "model": str(model),
        "architecture": "Qwen2AudioForConditionalGeneration",
        "auxLayerIds": TINY_AUX_LAYER_IDS,
        "audioTokenId": AUDIO_TOKEN,
    }


def resolved_draft_config(draft_vocab_size: int = 256, **over: Any) -> dict[str, Any]:
    """A tiny draft config as `eaglet train` resolves it for the tiny model and a mapping of
    ``draft_vocab_size`` (the vocab sizes, aux layer ids and target width filled in)."""
    return {
        "architectures": ["LlamaForCausalLMEagle3"],
        "model_type": "llama",
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "hidden_act": "silu",
        "vocab_size": TEXT_VOCAB,
        "draft_vocab_size": draft_vocab_size,
        "rope_theta": 10000,
        "max_position_embeddings": 8192,
        "rms_norm_eps": 1e-6,
        "attention_bias": False,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "eagle_aux_hidden_state_layer_ids": TINY_AUX_LAYER_IDS,
        **over,
    }


def train_config(tmp: Path, model: Path, train: list[Path], vocab: Path, **over: Any) -> TrainConfig:
    """A train config as the TS side writes it for the tiny model, parsed like the engine does."""
    cfg: dict[str, Any] = {
        "target": engine_target(model),
        "draftConfig": resolved_draft_config(),
        "trainData": [str(p) for p in train],
        "evalData": [],
        "outputDir": str(tmp / "out"),
        "maxLength": 4096,
        "vocab": str(vocab),
        "ttt": {"steps": 3, "lossDecay": 0.8, "attention": "flash"},
        "optimizer": {"lr": 3e-3, "weightDecay": 0.0, "betas": [0.9, 0.999], "eps": 1e-8, "gradClip": 1.0},
        "schedule": {"kind": "constant", "warmupSteps": 0, "minLrRatio": 0.0},
        "batching": {"maxTokens": 256, "maxRecords": 2, "gradAccumulation": 1},
        "epochs": 1,
        "logEvery": 5,
        "evalEvery": 0,
        "saveEvery": 0,
        "keepCheckpoints": 2,
        "precision": "fp32",
        "compile": "off",
        "device": "cpu",
        "nprocPerNode": 1,
        "parallel": "ddp",
        "nnodes": 1,
        "rdzvId": "eaglet",
        "rdzvTimeoutSeconds": 900,
        "distTimeoutSeconds": 1800,
        "resume": False,
        "overwrite": False,
        "export": {"formats": ["vllm"], "speculativeTokens": 3},
        "plot": False,
        "seed": 0,
    }
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return config_mod.parse(cfg, "train")


def capture_config(model: Path, data: list[Path], out: Path, **over: Any):
    """A capture config as `eaglet data capture` writes it for the tiny model (CPU, fp32 forward)."""
    cfg: dict[str, Any] = {
        "target": engine_target(model),
        "data": [str(p) for p in data],
        "out": str(out),
        "shardTokens": 200,
        "batchTokens": 256,
        "precision": "fp32",
        "compile": "off",
        "device": "cpu",
        "nprocPerNode": 1,
        "distTimeoutSeconds": 120,
        "overwrite": False,
    }
    cfg.update(over)
    return config_mod.parse(cfg, "capture")
