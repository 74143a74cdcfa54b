"""One draft-quality experiment: eaglet's own Trainer on a prepared dataset, one variable changed.

    OMP_NUM_THREADS=1 node tools/python.mjs tools/bench/quality/draft_experiment.py \\
        --target MODEL --train PREPARED --eval PREPARED --vocab VOCAB --out DIR \\
        [--set optimizer.lr=0.003 --set ttt.steps=3 ...] [--variant NAME ...]

``--set`` overrides any field of the train config (values are JSON, else strings; ``null`` removes
an optional field, e.g. ``--set maxSteps=null --set epochs=4`` trains whole epochs). ``--variant``
applies a named change to the engine for this run only (listed in ``VARIANTS``), so each
hypothesis in docs/perf/quality.md is one flag against the same code. Prints one JSON summary line
(final and per-eval acc_i next to the bigram baseline) and leaves metrics.jsonl in --out.

Two caches make a CPU experiment fast without changing what the objective computes: the target's
log-mel features and its audio encoder's outputs are computed once per clip (the target is frozen;
the encoder then runs one clip at a time, so only float summation order can differ from a batch).

On a GPU (``--set device=cuda``) it runs in true fp32: TF32 is off for matmuls and convolutions.
``precision fp32`` there needs ``--set ttt.attention=eager``: the flash TTT kernel calls PyTorch's
CUDA flash attention, which takes only fp16/bf16; the eager kernel computes the same function.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "plugins" / "qwen2-audio" / "python"))

from eaglet_engine import config as config_mod  # noqa: E402
from eaglet_engine import trainer as trainer_mod  # noqa: E402
from variants import VARIANTS  # noqa: E402  (beside this file)


AUX_LAYER_IDS = [2, 4, 5]  # vLLM's numbering; Eagle3's default for an 8-layer target


def draft_config(target: str, vocab: str, aux_layer_ids: list[int]) -> dict:
    """The draft config.json `eaglet train` resolves for a small Qwen2-Audio target: the plugin's
    ``draftDefaults`` (plugins/qwen2-audio/src/target.ts; for widths under 1024: head dim 16,
    intermediate 11008/4096 of the width rounded up to 8) with the vocab mapping's sizes."""
    from eaglet_engine.vocab import load_vocab

    text = json.loads((Path(target) / "config.json").read_text())["text_config"]
    mapping = load_vocab(vocab)
    hidden = text["hidden_size"]
    head_dim = 128 if hidden >= 1024 else 16
    heads = max(1, hidden // head_dim)
    return {
        "architectures": ["LlamaForCausalLMEagle3"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": 11008 if hidden == 4096 else math.ceil(hidden * 11008 / 4096 / 8) * 8,
        "num_hidden_layers": 1,
        "num_attention_heads": heads,
        "num_key_value_heads": 4 if heads % 4 == 0 else heads,
        "head_dim": head_dim,
        "hidden_act": "silu",
        "vocab_size": mapping.vocab_size,
        "draft_vocab_size": mapping.draft_vocab_size,
        "rope_theta": 10000.0,
        "max_position_embeddings": 8192,
        "rms_norm_eps": 1e-6,
        "attention_bias": False,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "bos_token_id": text.get("bos_token_id"),
        "eos_token_id": text.get("eos_token_id"),
        "eagle_aux_hidden_state_layer_ids": aux_layer_ids,
    }


def base_config(target: str, train: list[str], evals: list[str], vocab: str, out: str) -> dict:
    """The train config `eaglet train` writes for the quickstart-sized draft (every default the TS
    side fills in), with the issue's budget: batch 8, lr 3e-3, TTT 5."""
    return {
        "target": {
            "id": "qwen2-audio",
            "adapter": "eaglet_qwen2_audio",
            "model": target,
            "architecture": "Qwen2AudioForConditionalGeneration",
            "auxLayerIds": AUX_LAYER_IDS,
            "audioTokenId": json.loads((Path(target) / "config.json").read_text())["audio_token_index"],
        },
        "draftConfig": draft_config(target, vocab, AUX_LAYER_IDS),
        "trainData": train,
        "evalData": evals,
        "outputDir": out,
        "maxLength": 4096,
        "vocab": vocab,
        "ttt": {"steps": 5, "lossDecay": 0.8, "attention": "flash"},
        "optimizer": {"lr": 3e-3, "weightDecay": 0.0, "betas": [0.9, 0.999], "eps": 1e-8, "gradClip": 1.0},
        "schedule": {"kind": "constant", "warmupSteps": 0, "minLrRatio": 0.0},
        "batching": {"maxTokens": 4096, "maxRecords": 8, "gradAccumulation": 1},
        "epochs": 1000,
        "maxSteps": 300,
        "logEvery": 25,
        "evalEvery": 50,
        "saveEvery": 0,
        "keepCheckpoints": 1,
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
        "plot": True,
        "seed": 0,
    }


def set_field(cfg: dict, path: str, raw: str) -> None:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    *parents, last = path.split(".")
    node = cfg
    for key in parents:
        node = node.setdefault(key, {})
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value


# --------------------------------------------------------------------------------------------
# Caches (speed only)
# --------------------------------------------------------------------------------------------


def cache_target_audio() -> None:
    import eaglet_qwen2_audio as q

    media_inputs = q.Qwen2AudioTarget.media_inputs
    feature_cache: dict[bytes, dict[str, torch.Tensor]] = {}

    def cached_media_inputs(self, clips, device):
        keys = [hashlib.sha1(c.tobytes()).digest() for c in clips]
        missing = [i for i, k in enumerate(keys) if k not in feature_cache]
        if missing:
            made = media_inputs(self, [clips[i] for i in missing], device)
            for j, i in enumerate(missing):
                feature_cache[keys[i]] = {name: value[j : j + 1] for name, value in made.items()}
        if not keys:
            return {}
        return {name: torch.cat([feature_cache[k][name] for k in keys]) for name in feature_cache[keys[0]]}

    q.Qwen2AudioTarget.media_inputs = cached_media_inputs

    load = q.load_target

    def load_with_encoder_cache(*args, **kwargs):
        target = load(*args, **kwargs)
        tower = target.tower
        forward = tower.forward
        cache: dict[bytes, torch.Tensor] = {}

        def cached(input_features, attention_mask=None, **kw):
            host = input_features.detach().cpu()  # on a GPU the features arrive on the device
            keys = [hashlib.sha1(host[i].numpy().tobytes()).digest() for i in range(host.shape[0])]
            for i, key in enumerate(keys):  # one clip at a time: its output cannot depend on batch neighbours
                if key not in cache:
                    mask = None if attention_mask is None else attention_mask[i : i + 1]
                    cache[key] = forward(input_features[i : i + 1], attention_mask=mask, **kw).last_hidden_state
            from transformers.modeling_outputs import BaseModelOutput

            return BaseModelOutput(last_hidden_state=torch.cat([cache[k] for k in keys]))

        tower.forward = cached
        return target

    q.load_target = load_with_encoder_cache


def summarise(out: Path, wall: float) -> dict:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    evals = [r for r in rows if r["split"] == "eval"]
    accs = sorted(k for k in evals[-1] if k.startswith("acc_")) if evals else []
    return {
        "out": str(out),
        "seconds": round(wall, 1),
        "eval": [{"step": r["step"], **{k: round(r[k], 4) for k in accs}, "bigram_acc": round(r.get("bigram_acc", float("nan")), 4)} for r in evals],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", required=True)
    p.add_argument("--train", action="append", required=True)
    p.add_argument("--eval", action="append", default=[])
    p.add_argument("--vocab", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--variant", action="append", default=[], choices=sorted(VARIANTS))
    args = p.parse_args()

    torch.set_num_threads(1)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    cfg = base_config(args.target, args.train, args.eval, args.vocab, args.out)
    for item in args.set:
        key, _, value = item.partition("=")
        set_field(cfg, key, value)
    cfg["draftConfig"]["eagle_aux_hidden_state_layer_ids"] = cfg["target"]["auxLayerIds"]  # one source
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)  # --out is this run's own folder: replaced
    parsed = config_mod.parse(cfg, "train")
    cache_target_audio()
    for name in args.variant:
        VARIANTS[name]()
    started = time.perf_counter()
    trainer = trainer_mod.Trainer(parsed)
    try:
        trainer.build().train()
    finally:
        trainer.close()
    summary = summarise(out, time.perf_counter() - started)
    summary.update({"set": args.set, "variant": args.variant})
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
