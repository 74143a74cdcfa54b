"""Parity of the qwen2.5-omni plugin with transformers' Qwen2.5-Omni processor and thinker.

    node tools/python.mjs plugins/qwen2.5-omni/test/omni_parity.py MODEL_DIR CASES.json

CASES.json lists what the TypeScript side rendered (``{messages, clips, ids, mask, counts}``;
``clips``: WAV files, 16 kHz mono, in reading order). For each case:
- ``ids`` equal ``Qwen2_5OmniProcessor(text=apply_chat_template(messages), audio=clips)``'s, and
  ``counts`` its runs of <|AUDIO|> (the processor's audio token counts);
- ``mask`` equals the tokens that the fast tokenizer's offsets place in an assistant span (the
  text between the rendering of messages[:i] with the generation prompt and of messages[:i+1]);
- the plugin's adapter (features, audio merge, the text decoder called as the engine calls it)
  gives the thinker's own logits on the processor's inputs, and its hooked aux states equal the
  thinker's ``hidden_states``, so the engine's positions (no mrope ids given) are the thinker's.
The processor is the real class and its own ``__call__``; this environment has no torchvision, so
it is assembled without its image and video processors, which audio and text never reach.
Prints a JSON summary; exits 1 on the first difference.
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from transformers import AutoTokenizer, Qwen2_5OmniProcessor, Qwen2_5OmniThinkerForConditionalGeneration, WhisperFeatureExtractor
from transformers.pipelines.audio_utils import ffmpeg_read

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from eaglet_engine.config import EngineTarget  # noqa: E402
from eaglet_engine.targets import AuxStates  # noqa: E402
from eaglet_qwen2_5_omni import load_target  # noqa: E402

NAMED = ["audio_token", "audio_bos_token", "audio_eos_token", "image_token", "video_token", "vision_bos_token", "vision_eos_token"]


def processor(model_dir: str) -> Qwen2_5OmniProcessor:
    tok = AutoTokenizer.from_pretrained(model_dir)
    proc = Qwen2_5OmniProcessor.__new__(Qwen2_5OmniProcessor)
    proc.tokenizer = tok
    proc.feature_extractor = WhisperFeatureExtractor.from_pretrained(model_dir)
    proc.chat_template = tok.chat_template
    for name in NAMED:
        setattr(proc, name, getattr(tok, name))
        if name in ("audio_token", "image_token", "video_token"):
            setattr(proc, f"{name}_id", tok.convert_tokens_to_ids(getattr(tok, name)))
    return proc


def offset_mask(tok, messages, rendered, expanded, placeholder, counts, ids):
    """Tokens overlapping an assistant span: spans found in the rendered text (one placeholder per
    clip), moved past the placeholders the processor expanded before them, then offsets."""
    at = [i for i in range(len(rendered)) if rendered.startswith(placeholder, i)]

    def moved(p):
        return p + sum((c - 1) * len(placeholder) for a, c in zip(at, counts) if a < p)

    spans = []
    for i, m in enumerate(messages):
        if m["role"] == "assistant":
            start = len(tok.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True))
            end = len(tok.apply_chat_template(messages[: i + 1], tokenize=False))
            spans.append((moved(start), moved(end)))
    enc = tok(expanded, add_special_tokens=False, return_offsets_mapping=True)
    assert list(enc["input_ids"]) == ids, "tokenizing the expanded text differs from the processor"
    return [int(any(e > s0 and s < e0 for s0, e0 in spans)) for s, e in enc["offset_mapping"]]


def main(model_dir: str, cases_file: str) -> None:
    torch.set_num_threads(1)
    proc = processor(model_dir)
    tok = proc.tokenizer
    audio_id = proc.audio_token_id
    thinker, info = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(model_dir, output_loading_info=True)
    missing = {k: sorted(v)[:5] for k, v in info.items() if v}
    if missing:
        raise SystemExit(f"loading the thinker: {missing}")
    thinker.eval()
    layers = thinker.config.text_config.num_hidden_layers
    aux = (2, layers // 2, layers - 3)
    target = EngineTarget(id="qwen2.5-omni", adapter="eaglet_qwen2_5_omni", model=model_dir, architecture="Qwen2_5OmniModel", aux_layer_ids=aux, audio_token_id=audio_id)
    adapter = load_target(target, device=torch.device("cpu"), dtype=torch.float32)
    checked = {"cases": 0, "counts": [], "max_logit_diff": 0.0, "max_tap_diff": 0.0}
    for k, case in enumerate(json.loads(Path(cases_file).read_text(encoding="utf-8"))):
        where = f"case {k}"
        clips = [ffmpeg_read(Path(c).read_bytes(), 16000) for c in case["clips"]]
        text = tok.apply_chat_template(case["messages"], tokenize=False)
        batch = proc(text=[text], audio=clips or None, return_tensors="pt")
        ids = batch["input_ids"][0].tolist()
        if ids != case["ids"]:
            raise SystemExit(f"{where}: ids differ\n eaglet {case['ids'][:60]}\n hf     {ids[:60]}")
        runs, n = [], 0
        for i in ids + [-1]:
            if i == audio_id:
                n += 1
            elif n:
                runs.append(n)
                n = 0
        if runs != case["counts"]:
            raise SystemExit(f"{where}: audio token counts differ: eaglet {case['counts']} processor {runs}")
        # The placeholders expanded in the rendered text as the processor does, then offsets.
        expanded = text
        for count in runs:
            expanded = expanded.replace(proc.audio_token, "\0" * count, 1)
        expanded = expanded.replace("\0", proc.audio_token)
        mask = offset_mask(tok, case["messages"], text, expanded, proc.audio_token, runs, ids)
        if mask != case["mask"]:
            diff = [i for i, (a, b) in enumerate(zip(mask, case["mask"])) if a != b]
            raise SystemExit(f"{where}: loss masks differ at {diff[:10]}")
        with torch.no_grad():
            ref = thinker(**batch, output_hidden_states=True)
            media = adapter.media_inputs(clips, torch.device("cpu"))
            hooks = AuxStates(adapter.layers, aux)
            embeds = adapter.input_embeddings(batch["input_ids"], media)
            final = adapter.decoder(inputs_embeds=embeds, use_cache=False).last_hidden_state
            taps = hooks.take().split(thinker.config.text_config.hidden_size, dim=-1)
            hooks.remove()
        d_logits = float((final @ adapter.lm_head_weight().t() - ref.logits).abs().max())
        d_taps = max(float((t - ref.hidden_states[a]).abs().max()) for t, a in zip(taps, aux))
        if d_logits > 1e-3 or d_taps > 1e-4:
            raise SystemExit(f"{where}: the adapter differs from the thinker: logits by {d_logits}, aux states by {d_taps}")
        checked["cases"] += 1
        checked["counts"].extend(runs)
        checked["max_logit_diff"] = max(checked["max_logit_diff"], d_logits)
        checked["max_tap_diff"] = max(checked["max_tap_diff"], d_taps)
    print(json.dumps(checked))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
