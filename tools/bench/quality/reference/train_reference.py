"""Train an Eagle3 draft with the reference trainer, AngelSlim's own online Eagle3 trainer for
Qwen2-Audio (PyPI `angelslim`, pinned in requirements.txt), on the same target, data, draft vocabulary and
budget as an eaglet run of tools/bench/quality/draft_experiment.py.

    tools/bench/quality/reference/setup.sh          # once: ~/.cache/eaglet/angelslim-venv
    ~/.cache/eaglet/angelslim-venv/bin/python tools/bench/quality/reference/train_reference.py \\
        --target MODEL --train CONVERSATIONS.jsonl --eval CONVERSATIONS.jsonl \\
        --vocab VOCAB.safetensors --out DIR [--seed 0]

It follows AngelSlim's entry point tools/train_eagle3_online.py (not shipped in the wheel) call for
call: DraftModelConfig.from_file, create_target_model, create_draft_model, load_embed_weights,
freeze_embed_weights, DatasetManager.create_online_datasets, build_vocab_mapping,
transformers.TrainingArguments, Eagle3TrainerFactory.create("online", "Audio"), train. Nothing of
AngelSlim is changed or copied. What this driver sets that the entry point cannot (each says why):

- a seed before the draft is built (the entry point builds the draft before the HF Trainer seeds,
  so its initialisation is unseeded) and ``seed`` in TrainingArguments (batch order);
- ``max_steps`` (the entry point only takes whole epochs);
- the draft vocabulary: eaglet's d2t/t2d written as AngelSlim's own vocab_mapping_cache.pt, which
  its build_vocab_mapping then loads (same 4096 tokens on both sides);
- one CPU thread (as the eaglet runs), and on a GPU true fp32 (no TF32 in matmuls or
  convolutions, as draft_experiment.py); the device is AngelSlim's own choice for the target
  (``decide_device_for_distributed``: cuda:0 when torch sees a GPU, else the CPU), and the
  Trainer's follows it (``use_cpu`` only without a GPU);
- ``--num-proc``: the dataset build's worker processes (its ``num_proc``; 1 as the CPU runs ran,
  more on the GPU machine, where the build would otherwise outlast the training: the records and
  their order do not depend on it);
- a callback that records each eval's acc_i/ploss_i at its own step (AngelSlim logs them with the
  next training log) and the training log rows, into metrics.jsonl in eaglet's row format.

Writes DIR/metrics.jsonl, DIR/summary.json and the saved draft in DIR/angelslim-draft
(AngelSlim's save_model: HF save_pretrained of its Eagle3LlamaForCausalLM).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import shutil
import sys
import time
import types
from pathlib import Path

import torch

EMBED_WEIGHT_KEY = "language_model.model.embed_tokens.weight"  # the 7B script's --embed_weight_key


def import_angelslim_speculative():
    """``angelslim`` 0.5.0's wheel lacks ``angelslim/compressor/qat`` (it is in the repository),
    and ``angelslim/__init__.py`` -> ``engine.py`` -> ``compressor/__init__.py`` -> ``qad`` imports
    it, so ``import angelslim`` fails. The speculative trainer uses none of that: register the two
    parent packages without running their ``__init__`` and import the speculative package itself."""
    spec = importlib.util.find_spec("angelslim")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("angelslim is not installed: run tools/bench/quality/reference/setup.sh")
    root = Path(spec.submodule_search_locations[0])
    for name, path in (("angelslim", root), ("angelslim.compressor", root / "compressor")):
        package = types.ModuleType(name)
        package.__path__ = [str(path)]
        sys.modules[name] = package
    import angelslim.compressor.speculative as speculative

    return speculative


def draft_config(target: Path, draft_vocab_size: int) -> dict:
    """AngelSlim's draft config for Qwen2-Audio-7B (angelslim/compressor/speculative/train/configs/
    qwen2-audio-7b-eagle3.json) with the widths eaglet's qwen2-audio plugin picks for a small
    target (as draft_experiment.draft_config): head dim 16, intermediate 11008/4096 of the width
    rounded up to 8; for the 64-wide fixture 4 heads, 4 kv heads, intermediate 176."""
    text = json.loads((target / "config.json").read_text())["text_config"]
    hidden = text["hidden_size"]
    head_dim = 16
    heads = hidden // head_dim
    return {
        "architectures": ["Eagle3LlamaForCausalLM"],
        "model_type": "llama",
        "target_model_type": "qwen2_audio",
        "modal_type": "Audio",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": text.get("bos_token_id"),
        "eos_token_id": text.get("eos_token_id"),
        "head_dim": head_dim,
        "hidden_act": "silu",
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": math.ceil(hidden * 11008 / 4096 / 8) * 8,
        "max_position_embeddings": 8192,
        "num_attention_heads": heads,
        "num_hidden_layers": 1,
        "num_key_value_heads": 4 if heads % 4 == 0 else heads,
        "rms_norm_eps": 1e-6,
        "rope_scaling": None,
        "rope_theta": 10000,
        "use_cache": True,
        "vocab_size": text["vocab_size"],
        "tie_word_embeddings": False,
        "draft_vocab_size": draft_vocab_size,
        "dtype": "bfloat16",  # AngelSlim's draft factory builds bf16 whatever this says (see docs)
    }


def write_vocab_cache(vocab: Path, cache: Path) -> int:
    """eaglet's vocab mapping (d2t offsets, t2d mask) in AngelSlim's cache format."""
    from safetensors.torch import load_file

    tensors = load_file(str(vocab))
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"d2t": tensors["d2t"].to(torch.int64), "t2d": tensors["t2d"].to(torch.bool)}, cache)
    return int(tensors["d2t"].numel())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", required=True, type=Path)
    p.add_argument("--train", required=True, help="conversations JSONL (audio paths), AngelSlim's input format")
    p.add_argument("--eval", required=True)
    p.add_argument("--vocab", required=True, type=Path, help="eaglet's vocab .safetensors (d2t, t2d)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--ttt", type=int, default=5)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--target-dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--num-proc", type=int, default=1, help="dataset build worker processes")
    args = p.parse_args()

    torch.set_num_threads(1)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    speculative = import_angelslim_speculative()
    import transformers
    from angelslim.compressor.speculative.train.data.dataset import DatasetManager

    out: Path = args.out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    draft_vocab_size = write_vocab_cache(args.vocab, out / "vocab_mapping_cache.pt")
    config_path = out / "draft_config.json"
    config_path.write_text(json.dumps(draft_config(args.target, draft_vocab_size), indent=2) + "\n")

    transformers.set_seed(args.seed)
    draft_model_config = speculative.DraftModelConfig.from_file(str(config_path))
    target_model = speculative.create_target_model(
        backend="hf",
        model_path=str(args.target),
        modal_type="Audio",
        torch_dtype=getattr(torch, args.target_dtype),
        trust_remote_code=True,
        target_model_type="qwen2_audio",
    )
    draft_model = speculative.create_draft_model(draft_model_config)
    draft_model.load_embed_weights(str(args.target), EMBED_WEIGHT_KEY)
    draft_model.freeze_embed_weights()

    data_args = argparse.Namespace(
        train_data_path=[args.train],
        eval_data_path=args.eval,
        num_proc=args.num_proc,
        sample_num=None,
        shuffle_seed=42,  # the entry point's default
        training_mode="online",
        modal_type="Audio",
        target_model_name_or_path=str(args.target),
        output_dir=str(out),
    )
    manager = DatasetManager(
        data_args=data_args,
        tokenizer=target_model.tokenizer,
        model_max_length=4096,
        chat_template_type="qwen2_audio",
        display=False,
        target_model_type="qwen2_audio",
    )
    train_dataset, eval_dataset, data_collator = manager.create_online_datasets()
    draft_model.build_vocab_mapping(dataset=train_dataset, cache_path=str(out / "vocab_mapping_cache.pt"))

    training_args = transformers.TrainingArguments(
        output_dir=str(out / "hf"),
        max_steps=args.steps,
        per_device_train_batch_size=args.batch,
        per_device_eval_batch_size=args.batch,
        gradient_accumulation_steps=1,
        remove_unused_columns=False,
        learning_rate=args.lr,
        weight_decay=0.0,
        warmup_steps=0,
        optim="adamw_torch",
        lr_scheduler_type="constant",
        max_grad_norm=1.0,
        eval_strategy="steps",
        eval_steps=args.eval_every,
        save_strategy="no",
        logging_steps=args.log_every,
        report_to="none",
        seed=args.seed,
        use_cpu=not torch.cuda.is_available(),  # where AngelSlim put the target
    )
    metrics = (out / "metrics.jsonl").open("w")
    holder: dict = {}

    class Record(transformers.TrainerCallback):
        def on_log(self, _args, state, _control, logs=None, **_kw):
            if logs and "loss" in logs:  # AngelSlim's merged training row
                row = {"split": "train", "step": state.global_step, "time": time.time()}
                row.update({k.removeprefix("train/"): v for k, v in logs.items() if k.startswith("train/")})
                row.update({k: logs[k] for k in ("loss", "grad_norm", "lr") if k in logs})
                metrics.write(json.dumps(row) + "\n")
                metrics.flush()

        def on_evaluate(self, _args, state, _control, **_kw):
            trainer = holder["trainer"]
            count = max(trainer._eval_pending_log_count, 1)
            row = {"split": "eval", "step": state.global_step, "time": time.time()}
            row.update({k.removeprefix("eval/"): v / count for k, v in trainer._eval_pending_log.items()})
            metrics.write(json.dumps(row) + "\n")
            metrics.flush()

    trainer = speculative.Eagle3TrainerFactory.create(
        training_mode="online",
        modal_type="Audio",
        draft_model=draft_model,
        target_model=target_model,
        length=args.ttt,
        draft_model_config=draft_model_config,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=data_collator,
        callbacks=[Record()],
    )
    holder["trainer"] = trainer
    started = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - started
    trainer.save_model(str(out / "angelslim-draft"))
    metrics.close()

    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    summary = {
        "out": str(out),
        "seconds": round(wall, 1),
        "seed": args.seed,
        "draft_dtype": str(next(draft_model.parameters()).dtype),
        "device": str(next(draft_model.parameters()).device),
        "train_records": len(train_dataset),
        "eval_records": len(eval_dataset),
        "eval": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items() if k.startswith("acc_") or k == "step"} for r in rows if r["split"] == "eval"],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
