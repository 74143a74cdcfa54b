"""Parity of `eaglet data prepare` with transformers' Qwen2AudioProcessor.

    node tools/python.mjs packages/flows/test/parity_check.py PREPARED_DIR MODEL_DIR

For every row of the prepared shards, rebuilds the record from its source line the way a Python
pipeline would (the seed format: conversations with text and audio parts), decodes its audio with
transformers' own ffmpeg reader, applies the long-audio action the manifest records, and runs
the real processor (chat template + Whisper feature extractor + <|AUDIO|> expansion). Checks:
- input_ids equal the processor's,
- audio token counts equal the processor's (runs of <|AUDIO|> per clip),
- the loss mask equals one computed independently from the fast tokenizer's character offsets:
  tokens overlapping an assistant reply or its closing "<|im_end|>\n",
- each PCM clip equals ffmpeg_read's samples within 1e-4 (same length).
Prints a JSON summary; exits 1 on the first difference.
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pyarrow as pa
from transformers import AutoProcessor
from transformers.pipelines.audio_utils import ffmpeg_read

RATE = 16000


def load_rows(prepared: Path):
    manifest = json.loads((prepared / "manifest.json").read_text())
    for shard in manifest["shards"]:
        reader = pa.ipc.open_file(prepared / shard["file"])
        for b in range(reader.num_record_batches):
            yield from reader.get_batch(b).to_pylist()


def messages_of(record: dict, base: Path, actions: dict) -> tuple[list, list]:
    """Processor messages and the expected PCM clips, with the recorded long-audio actions applied."""
    messages, clips = [], []
    part = 0
    for m in record["conversations"]:
        content = m["content"]
        if isinstance(content, str):
            messages.append({"role": m["role"], "content": content})
            continue
        parts = []
        for p in content:
            if p["type"] == "text":
                parts.append({"type": "text", "text": p["text"]})
                continue
            path = p["audio"] if os.path.isabs(p["audio"]) else str(base / p["audio"])
            with open(path, "rb") as f:
                pcm = ffmpeg_read(f.read(), RATE)
            action = actions.get(part)
            if action is None:
                pieces = [pcm]
            elif action["action"] == "truncated":
                pieces = [pcm[: 30 * RATE]]
            else:
                pieces = [pcm[round(s * RATE) : round(e * RATE)] for s, e in action["segments"]]
            for piece in pieces:
                parts.append({"type": "audio", "audio": path})
                clips.append(piece)
            part += 1
        messages.append({"role": m["role"], "content": parts})
    return messages, clips


def reference_mask(tokenizer, text: str, ids: list[int]) -> list[int]:
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    assert enc["input_ids"] == ids, "tokenizing the expanded text differs from the processor"
    spans = []
    header = "<|im_start|>assistant\n"
    at = text.find(header)
    while at >= 0:
        start = at + len(header)
        end = text.index("<|im_end|>\n", start) + len("<|im_end|>\n")
        spans.append((start, end))
        at = text.find(header, end)
    return [int(any(e > s0 and s < e0 for s0, e0 in spans)) for s, e in enc["offset_mapping"]]


def main(prepared: str, model_dir: str) -> None:
    prepared = Path(prepared)
    processor = AutoProcessor.from_pretrained(model_dir)
    audio_id = processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    manifest = json.loads((prepared / "manifest.json").read_text())
    actions: dict = {}
    for a in manifest["audioActions"]:
        actions.setdefault((a["file"], a["line"]), {})[a["part"]] = a
    lines: dict = {}
    checked = {"rows": 0, "clips": 0, "max_pcm_diff": 0.0, "audio_tokens": [], "segmented": 0, "truncated": 0}
    for row in load_rows(prepared):
        src = row["source_file"]
        if src not in lines:
            lines[src] = Path(src).read_text(encoding="utf-8").split("\n")
        record = json.loads(lines[src][row["source_line"] - 1])
        acts = actions.get((src, row["source_line"]), {})
        messages, clips = messages_of(record, Path(src).parent, acts)
        text = processor.apply_chat_template(messages, tokenize=False)
        batch = processor(text=text, audio=clips or None, sampling_rate=RATE)
        ids = list(batch["input_ids"][0])
        where = f"{src}:{row['source_line']}"
        if ids != row["input_ids"]:
            raise SystemExit(f"{where}: input_ids differ\n eaglet {row['input_ids'][:80]}\n hf     {ids[:80]}")
        runs, n = [], 0
        for i in ids + [-1]:
            if i == audio_id:
                n += 1
            elif n:
                runs.append(n)
                n = 0
        if runs != row["audio_token_counts"]:
            raise SystemExit(f"{where}: audio token counts differ: eaglet {row['audio_token_counts']} hf {runs}")
        expanded = text
        for count in runs:
            expanded = expanded.replace("<|AUDIO|>", "\0" * count, 1)
        expanded = expanded.replace("\0", "<|AUDIO|>")
        mask = reference_mask(processor.tokenizer, expanded, ids)
        if mask != row["loss_mask"]:
            diff = [i for i, (a, b) in enumerate(zip(mask, row["loss_mask"])) if a != b]
            raise SystemExit(f"{where}: loss masks differ at {diff[:10]}")
        if len(clips) != len(row["audio"]):
            raise SystemExit(f"{where}: {len(row['audio'])} clips, expected {len(clips)}")
        for k, (ref, got) in enumerate(zip(clips, row["audio"])):
            got = np.asarray(got, dtype=np.float32)
            if got.shape != ref.shape:
                raise SystemExit(f"{where}: clip {k} has {got.shape[0]} samples, ffmpeg_read gives {ref.shape[0]}")
            d = float(np.max(np.abs(got - ref))) if ref.size else 0.0
            if d > 1e-4:
                raise SystemExit(f"{where}: clip {k} differs from ffmpeg_read by {d}")
            checked["max_pcm_diff"] = max(checked["max_pcm_diff"], d)
        checked["rows"] += 1
        checked["clips"] += len(clips)
        checked["audio_tokens"].extend(runs)
        checked["segmented"] += sum(a["action"] == "segmented" for a in acts.values())
        checked["truncated"] += sum(a["action"] == "truncated" for a in acts.values())
    print(json.dumps(checked))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
