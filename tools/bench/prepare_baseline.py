"""The Python data pipeline eaglet's `data prepare` is measured against: what the reference
(AngelSlim's Qwen2-Audio Eagle3 path) does per record, on the same jsonl and the same machine.

    node tools/python.mjs tools/bench/prepare_baseline.py DATA.jsonl MODEL_DIR

Per record: decode each audio file with transformers' own ffmpeg reader (16 kHz mono float),
render the chat template, call Qwen2AudioProcessor (tokenizer + Whisper features + <|AUDIO|>
expansion), and build the assistant loss mask from the tokenizer's offsets. Results are dropped
after each record (nothing is written), which favours the baseline. Prints one JSON line with the
loop's wall time (excluding Python/torch start-up and model loading).
"""

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from transformers import AutoProcessor
from transformers.pipelines.audio_utils import ffmpeg_read


def main(data: str, model_dir: str) -> None:
    processor = AutoProcessor.from_pretrained(model_dir)
    base = Path(data).parent
    records = tokens = 0
    audio_seconds = 0.0
    start = time.perf_counter()
    with open(data, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            record = json.loads(line)
            messages, clips = [], []
            for m in record["conversations"]:
                content = m["content"]
                if isinstance(content, str):
                    messages.append({"role": m["role"], "content": content})
                    continue
                parts = []
                for p in content:
                    if p["type"] == "audio":
                        path = p["audio"] if os.path.isabs(p["audio"]) else str(base / p["audio"])
                        with open(path, "rb") as fh:
                            clips.append(ffmpeg_read(fh.read(), 16000))
                        parts.append({"type": "audio", "audio": path})
                    else:
                        parts.append({"type": "text", "text": p["text"]})
                messages.append({"role": m["role"], "content": parts})
            text = processor.apply_chat_template(messages, tokenize=False)
            batch = processor(text=text, audio=clips or None, sampling_rate=16000, return_tensors="np")
            ids = batch["input_ids"][0].tolist()
            # Loss mask: tokens of assistant replies incl. "<|im_end|>\n", from character offsets.
            expanded = processor.tokenizer.decode(ids)
            enc = processor.tokenizer(expanded, return_offsets_mapping=True, add_special_tokens=False)
            header = "<|im_start|>assistant\n"
            spans, at = [], expanded.find(header)
            while at >= 0:
                s = at + len(header)
                e = expanded.index("<|im_end|>\n", s) + len("<|im_end|>\n")
                spans.append((s, e))
                at = expanded.find(header, e)
            _mask = [int(any(b > s0 and a < e0 for s0, e0 in spans)) for a, b in enc["offset_mapping"]]
            records += 1
            tokens += len(ids)
            audio_seconds += sum(len(c) for c in clips) / 16000
    seconds = time.perf_counter() - start
    print(json.dumps({"records": records, "tokens": tokens, "audio_seconds": audio_seconds, "loop_seconds": seconds}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
