"""Training throughput of the reference trainer, AngelSlim 0.5.0's own online Eagle3 trainer for
Qwen2-Audio (PyPI ``angelslim``), on the setup of train_throughput.py (a benchmark, not a test).

The same architecture (qwen2_audio_7b.py: Qwen2-Audio-7B with random bf16 weights built on the
device, frozen; the draft of AngelSlim's qwen2-audio-7b-eagle3.json, which is DRAFT_7B with a
32000-token draft vocabulary), the same record of exactly the given length (a 12-token prompt,
one 30 s clip, 750 audio tokens, an assistant reply filling the rest, drawn from the same seeds
as train_throughput.make_record), batch 1, TTT 7, AdamW (``adamw_torch``), grad clip 1.0, constant
learning rate 1e-4, bf16 as AngelSlim has it (target and draft weights both bf16, no autocast,
no master weights, no torch.compile).

A step is AngelSlim's own, driven by transformers' ``Trainer.train``: the trainer is
``Eagle3TrainerFactory.create("online", "Audio")`` (OnlineAudioEagle3Trainer), its
``compute_loss`` runs ``prepare_data_for_draft_model`` (the target backend's
``get_hidden_states_and_logits``: the full forward with every hidden state and the
full-vocabulary logits, the aux layers concatenated, the logits shifted) and then
``draft_model_training_time_test`` (AngelSlim's TTT unroll and loss), and the HF loop does the
backward, the clip, the optimizer and scheduler steps. Timed from the trainer's ``on_step_begin``
to its ``on_step_end`` callback (after ``zero_grad``), with device synchronisation at both ends;
``prepare_data_for_draft_model`` is timed the same way as the target's share. Reported per
length: tokens/s of the pipelined steps (their span over their count) and of the synchronised
ones (median step after the warm-up; ``gpu_timing.step_figures``, as eaglet's), the target's
share, peak GPU memory, or ``"error": "out of memory"``.

    ~/.cache/eaglet/angelslim-venv/bin/python tools/bench/reference_throughput.py --lengths 2048,4096
    PYTHONPATH=/tmp/site-ref python3 tools/bench/reference_throughput.py --lengths 4096   # the GPU machine
    ... --tiny --lengths 1024 --steps 2 --warmup 1   # tiny widths on CPU: checks the script

Runs in the reference's own environment (tools/bench/quality/reference/setup.sh here;
reference_bundle.sh's wheels on the GPU machine), never eaglet's: AngelSlim 0.5.0 needs
transformers 5.9. ``train_throughput.py --reference`` runs this after eaglet's lengths and prints
both side by side.

What is AngelSlim's and what is this script's: the trainer, the draft model class and its
construction (``DraftModelConfig.from_file``, ``create_draft_model``, ``freeze_embed_weights``,
``load_vocab_mapping``), the target backend and its wrapper (``create_target_model`` with
backend "hf", modal type "Audio"), the collator (``AudioDataCollatorWithPadding``) and the loss
are AngelSlim's, called as they are. This script replaces only what needs a checkpoint on disk:
the backend's ``load_model`` (``from_pretrained``) builds the same class from the config with
random weights, and the draft's embedding stays random (AngelSlim copies the target's; it is
frozen either way). Records are made here in the rows' format AngelSlim's dataset build writes
(its log-mel features computed ahead of the step, as its dataset map does), not through its
dataset build, which needs a tokenizer and audio files.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.metadata
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE / "quality/reference")]

from gpu_timing import StepClock, step_figures  # noqa: E402
from qwen2_audio_7b import DRAFT_7B, DRAFT_VOCAB_7B, QWEN2_AUDIO_7B  # noqa: E402
from train_reference import import_angelslim_speculative  # noqa: E402  (imports it despite the broken wheel)

SAMPLE_RATE = 16000
CLIP_SECONDS = 30

# train_throughput.py's --tiny architecture, restated: that module imports eaglet's engine, which
# this process (the reference's transformers) does not load. Keep the two in step.
TINY = {
    "audio_config": {**QWEN2_AUDIO_7B["audio_config"], "d_model": 16, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 32},
    "text_config": {**QWEN2_AUDIO_7B["text_config"], "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 8, "num_attention_heads": 4, "num_key_value_heads": 4, "vocab_size": 1024},
    "audio_token_index": 1000,
}
DRAFT_TINY = {"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16}
DRAFT_VOCAB_TINY = 512


def angelslim_draft_config(draft: dict, spec: dict, draft_vocab: int) -> dict:
    """AngelSlim's draft config file for this target: its qwen2-audio-7b-eagle3.json (angelslim/
    compressor/speculative/train/configs) with the widths of ``draft`` (for the 7B, the same
    values). No aux layer ids: AngelSlim's online trainer then takes its backend's default
    [1, L/2 - 1, L - 4], the layers eaglet hooks (1, 15, 28 of 32; 1, 3, 4 of the tiny 8)."""
    text = spec["text_config"]
    full = text["vocab_size"] == QWEN2_AUDIO_7B["text_config"]["vocab_size"]
    return {
        "architectures": ["Eagle3LlamaForCausalLM"],
        "model_type": "llama",
        "target_model_type": "qwen2_audio",
        "modal_type": "Audio",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 151643 if full else None,
        "eos_token_id": 151645 if full else None,
        "hidden_act": "silu",
        "initializer_range": 0.02,
        **draft,
        "max_position_embeddings": 8192,
        "num_hidden_layers": 1,
        "rms_norm_eps": 1e-6,
        "rope_scaling": None,
        "rope_theta": 10000,
        "use_cache": True,
        "vocab_size": text["vocab_size"],
        "tie_word_embeddings": False,
        "draft_vocab_size": draft_vocab,
        "dtype": "bfloat16",
    }


def random_weights_backend(spec: dict, device: torch.device):
    """AngelSlim's Qwen2-Audio backend (AudioTransformersBackend) with only ``load_model``
    replaced: from_pretrained reads a checkpoint; this builds the same class from the config, on
    the device, in the dtype AngelSlim's own kwargs give (bf16), frozen and in eval mode as its
    load_model leaves it. Everything it runs in a step (the language_model hook, the forward with
    every hidden state, the aux concat) is AngelSlim's."""
    from angelslim.compressor.speculative.train.models.target.target_model_wrapper import AudioTransformersBackend
    from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration

    class RandomWeightsAudioBackend(AudioTransformersBackend):
        def load_model(self):
            kwargs = self._prepare_model_kwargs(str(device))
            dtype = kwargs.get("torch_dtype", kwargs["dtype"])
            previous = torch.get_default_dtype()
            torch.set_default_dtype(dtype)
            try:
                with torch.device(device):  # no CPU copy of 8B parameters
                    self.model = Qwen2AudioForConditionalGeneration._from_config(Qwen2AudioConfig(**spec), dtype=dtype)
            finally:
                torch.set_default_dtype(previous)
            for param in self.model.parameters():
                param.requires_grad = False
            self.model.eval()

    return RandomWeightsAudioBackend


def make_item(model, length: int, vocab: int, rng: np.random.Generator) -> dict:
    """One record as a row of AngelSlim's online audio dataset (its _process_single_conversation
    after ``set_format("torch")``): input_ids, attention_mask and loss_mask of shape (1, N), the
    clip's log-mel input_features (1, 128, 3000) and feature_attention_mask (1, 3000), made by the
    feature extractor the way Qwen2AudioProcessor calls it. The token ids are
    train_throughput.make_record's: the same draws from the same generator."""
    from transformers import WhisperFeatureExtractor

    clip = (0.05 * rng.standard_normal(SAMPLE_RATE * CLIP_SECONDS)).astype(np.float32)
    features = WhisperFeatureExtractor(feature_size=128)(clip, sampling_rate=SAMPLE_RATE, return_attention_mask=True, padding="max_length", return_tensors="pt")
    feature_mask = features["attention_mask"].to(torch.int64)
    _, n_audio = model.audio_tower._get_feat_extract_output_lengths(feature_mask.sum(-1))
    n_audio = int(n_audio[0])
    audio_id = model.config.audio_token_index
    high = min(vocab, audio_id, 150000)  # ordinary text ids, never the audio placeholder
    prompt = [int(x) for x in rng.integers(0, high, 12)]
    ids = prompt[:4] + [audio_id] * n_audio + prompt[4:]
    if length <= len(ids):
        sys.exit(f"--lengths {length}: a record is the {len(ids)} tokens of the prompt and the clip and at least one reply token")
    reply = [int(x) for x in rng.integers(0, high, length - len(ids))]
    input_ids = torch.tensor([ids + reply], dtype=torch.int64)
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "loss_mask": torch.tensor([[0] * len(ids) + [1] * len(reply)], dtype=torch.int64),
        "input_features": features["input_features"].to(torch.float32),
        "feature_attention_mask": feature_mask,
    }


class Records(torch.utils.data.Dataset):
    """``n`` copies of one record: a step per record, batch 1."""

    def __init__(self, item: dict, n: int):
        self.item, self.n = item, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        return self.item


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_length(speculative, target, length: int, args, spec: dict, draft_cfg: dict, draft_vocab: int, device: torch.device, work: Path, trainer_name: str) -> dict:
    import transformers
    from angelslim.compressor.speculative.train.data.data_utils import AudioDataCollatorWithPadding

    result: dict = {"length": length, "trainer": trainer_name, "ttt": args.ttt, "gpus": 1, "parallel": "single"}
    timings: dict[str, list[float]] = {"step": [], "target": [], "start": [], "end": []}
    clock = StepClock(args.warmup, args.steps, args.pipelined_steps)

    class StepTimer(transformers.TrainerCallback):
        """From the loop's on_step_begin to its on_step_end (after the clip, the optimizer and
        scheduler steps and zero_grad). The batch is fetched before on_step_begin: collated and
        put on the device by accelerate's loader (1.5 MB of features and the ids), untimed. The
        last ``--pipelined-steps`` run unsynchronised, as train_throughput's (step_figures)."""

        index = 0  # the step under way (0-based), for timed_prepare

        def on_step_begin(self, _args, state, *_a, **_k):
            self.index = state.global_step
            if not clock.synced(state.global_step):
                timings["start"].append(time.perf_counter())
                return
            sync(device)
            self.t0 = time.perf_counter()

        def on_step_end(self, _args, state, *_a, **_k):
            index = state.global_step - 1  # the loop counts the step before this callback
            if not clock.synced(index):
                if clock.last(index):
                    sync(device)
                    timings["end"].append(time.perf_counter())
                return
            sync(device)
            timings["step"].append(time.perf_counter() - self.t0)

    timer = StepTimer()

    # The draft config and vocabulary as files, read by AngelSlim's own loaders: the 32000 (tiny:
    # 512) lowest ids, as train_throughput's vocab, d2t offsets all zero.
    config_path, vocab_path = work / f"draft-{length}.json", work / f"vocab-{length}.pt"
    config_path.write_text(json.dumps(angelslim_draft_config(draft_cfg, spec, draft_vocab), indent=1))
    t2d = torch.zeros(spec["text_config"]["vocab_size"], dtype=torch.bool)
    t2d[:draft_vocab] = True
    torch.save({"d2t": torch.zeros(draft_vocab, dtype=torch.int64), "t2d": t2d}, vocab_path)

    item = make_item(target.model, length, spec["text_config"]["vocab_size"], np.random.default_rng(length))
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    trainer = draft = None
    try:
        draft_model_config = speculative.DraftModelConfig.from_file(str(config_path))
        with torch.device(device):  # built where it trains (the Trainer would move it there); bf16 by AngelSlim's factory
            draft = speculative.create_draft_model(draft_model_config)
        draft.freeze_embed_weights()
        draft.load_vocab_mapping(str(vocab_path))
        training_args = transformers.TrainingArguments(
            output_dir=str(work / f"hf-{length}"),
            max_steps=clock.total,
            per_device_train_batch_size=1,
            gradient_accumulation_steps=1,
            remove_unused_columns=False,
            learning_rate=1e-4,  # the Qwen2-Audio script's (scripts/speculative/qwen2_audio/train_eagle3_audio_online.sh)
            weight_decay=0.0,
            optim="adamw_torch",  # the entry point's default
            lr_scheduler_type="constant",
            max_grad_norm=1.0,
            save_strategy="no",
            eval_strategy="no",
            logging_steps=1000,  # no HF log row inside the timed steps (AngelSlim's own per-step .item() calls stay)
            report_to="none",
            disable_tqdm=True,
            use_cpu=device.type == "cpu",
            seed=0,
        )
        trainer = speculative.Eagle3TrainerFactory.create(
            training_mode="online",
            modal_type="Audio",
            draft_model=draft,
            target_model=target,
            length=args.ttt,
            draft_model_config=draft_model_config,
            args=training_args,
            train_dataset=Records(item, clock.total),
            data_collator=AudioDataCollatorWithPadding(),
            callbacks=[timer],
        )
        prepare = trainer.prepare_data_for_draft_model

        def timed_prepare(inputs):
            if not clock.synced(timer.index):
                return prepare(inputs)
            sync(device)
            t0 = time.perf_counter()
            out = prepare(inputs)
            sync(device)
            timings["target"].append(time.perf_counter() - t0)
            return out

        trainer.prepare_data_for_draft_model = timed_prepare  # AngelSlim's compute_loss calls it through self
        with contextlib.redirect_stdout(sys.stderr):  # the HF loop's and AngelSlim's prints: stdout is for the rows
            trainer.train()
    except torch.OutOfMemoryError as e:
        result.update(oom=True, error="out of memory", detail=str(e).split("\n")[0][:200])
    finally:
        del trainer, draft
        gc.collect()
    if device.type == "cuda":
        result["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        result["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved(device) / 2**30, 2)
        torch.cuda.empty_cache()
    if not result.get("oom"):
        result.update(step_figures(timings, args.warmup, length))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", default="2048,4096,8192,16384")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per length (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--pipelined-steps", type=int, default=16, help="as train_throughput.py's")
    parser.add_argument("--ttt", type=int, default=7, help="AngelSlim's training_time_test_length (its default 7)")
    parser.add_argument("--tiny", action="store_true", help="tiny widths on CPU: checks the script, measures nothing")
    parser.add_argument("--out", help="append JSON lines here")
    parser.add_argument("--memory-gib", type=float, help="cap this process's GPU memory, as train_throughput.py's option")
    args = parser.parse_args()

    speculative = import_angelslim_speculative()
    import transformers

    trainer_name = f"angelslim {importlib.metadata.version('angelslim')}"
    device = torch.device("cpu" if args.tiny or not torch.cuda.is_available() else "cuda:0")  # cuda:0: AngelSlim's decide_device_for_distributed
    if args.memory_gib and device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, args.memory_gib * 2**30 / total), device)
    spec, draft_cfg, draft_vocab = (TINY, DRAFT_TINY, DRAFT_VOCAB_TINY) if args.tiny else (QWEN2_AUDIO_7B, DRAFT_7B, DRAFT_VOCAB_7B)

    t0 = time.perf_counter()
    from angelslim.compressor.speculative.train.models.target import target_model_wrapper

    # AngelSlim's factory and wrapper with the random-weights backend in place of from_pretrained's.
    backends = target_model_wrapper.TargetModelWrapper.BACKENDS
    backends[("hf", "Audio")] = random_weights_backend(spec, device)
    target = speculative.create_target_model(backend="hf", model_path="(random weights)", modal_type="Audio", torch_dtype=torch.bfloat16, trust_remote_code=True, target_model_type="qwen2_audio")
    build_s = time.perf_counter() - t0

    env = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "gpus": 1,
        "trainer": trainer_name,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "target_build_s": round(build_s, 1),
        "target_params_b": round(sum(p.numel() for p in target.model.parameters()) / 1e9, 3),
        "target_attention": target.model.config._attn_implementation,
        "cuda_alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF", ""),
        **({"memory_cap_gib": args.memory_gib} if args.memory_gib else {}),
    }
    print(json.dumps({"env": env}), flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for length in [int(x) for x in args.lengths.split(",")]:
            row = run_length(speculative, target, length, args, spec, draft_cfg, draft_vocab, device, Path(tmp), trainer_name)
            row["device"] = env["device"]
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps({**row, **{k: env[k] for k in ("date", "torch", "transformers", "command", "memory_cap_gib") if k in env}}) + "\n")

    print(f"\n{trainer_name} | {env['device']} | torch {env['torch']} | transformers {env['transformers']} | {env['date']}")
    print("| length | tokens/s (pipelined) | synced tokens/s | step s | target s | draft+opt s | target share | peak GiB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if r.get("oom"):
            print(f"| {r['length']} | out of memory | | | | | | {r.get('peak_allocated_gib', '')} |")
        else:
            print(f"| {r['length']} | {r['tokens_per_s']:,.0f} | {r['synced_tokens_per_s']:,.0f} | {r['step_s']:.3f} | {r['target_s']:.3f} | {r['draft_and_optimizer_s']:.3f} | {r['target_share']:.2f} | {r.get('peak_allocated_gib', '')} |")


if __name__ == "__main__":
    os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")  # as train_throughput.py: the same allocator for both
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded: the GPU machine has no network
    main()
