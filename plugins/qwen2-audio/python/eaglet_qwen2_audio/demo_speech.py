"""The demo corpus's speech: 40 sentences, each heard in many voices, as clips drawn per split.

The plugin ships the recordings (``demo/corpus.json`` and ``demo/corpus-speech.opus``, rendered
once by ``scripts/render_demo_speech.py``; the LibriVox WAVs beside demo.json); this module decodes
them with ffmpeg and draws *clips* from them: each clip is one recording of a sentence, varied by a
seeded speed change (tempo and pitch together), gain and low-level noise, so every split hears
different audio and the same split is the same clips on every run:

* recordings in the ``train`` pool feed the splits the demo target and the draft train on
  (``target-train``, ``draft-train``, ...);
* recordings in the ``held-out`` pool feed the held-out splits (``held-out``, ``target-check``):
  voices that no training split ever heard.

    python -m eaglet_qwen2_audio.demo_speech OUT_DIR --split draft-train --per-sentence 4 [--pool train] [--name data.jsonl]

writes ``OUT_DIR/audios/*.wav`` and a jsonl in the seed format (one user turn: the audio and the
corpus's prompt; the assistant turn: the sentence) with relative audio paths.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import wave
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
SAMPLE_RATE = 16000
POOLS = ("train", "held-out")


@dataclass(frozen=True)
class Recording:
    sentence: int  # index into Corpus.sentences
    pool: str  # "train" or "held-out"
    source: str  # who speaks it (LibriVox file, or the espeak-ng voice, speed and pitch)
    audio: np.ndarray  # float32 [samples], 16 kHz mono


@dataclass(frozen=True)
class Corpus:
    sentences: list[str]
    prompt: str
    recordings: list[Recording]

    def of(self, sentence: int, pool: str) -> list[Recording]:
        return [r for r in self.recordings if r.sentence == sentence and r.pool == pool]


@dataclass(frozen=True)
class Clip:
    """One spoken sentence: ``key`` names it uniquely within its split (also its file name)."""

    key: str
    sentence: int
    audio: np.ndarray  # float32 [samples], 16 kHz mono
    source: str


def decode(path: Path) -> np.ndarray:
    """Any audio file as 16 kHz mono float32, through ffmpeg."""
    try:
        out = subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(path), "-f", "f32le", "-ac", "1", "-ar", str(SAMPLE_RATE), "pipe:1"],
            check=True,
            capture_output=True,
        ).stdout
    except FileNotFoundError:
        raise SystemExit("ffmpeg is not installed: eaglet needs it to decode audio (`eaglet doctor` says how to install it)") from None
    except subprocess.CalledProcessError as e:
        raise SystemExit(f"{path}: ffmpeg could not decode it: {e.stderr.decode(errors='replace').strip()}") from None
    return np.frombuffer(out, dtype="<f4").copy()


@cache
def load_corpus(demo_dir: Path = DEMO_DIR) -> Corpus:
    """The shipped corpus, decoded (the Opus stream once, then cut at the recorded offsets)."""
    spec = json.loads((demo_dir / "corpus.json").read_text())
    if spec["sampleRate"] != SAMPLE_RATE:
        raise SystemExit(f"{demo_dir / 'corpus.json'}: sampleRate must be {SAMPLE_RATE}")
    stream = decode(demo_dir / spec["speech"])
    recordings = []
    for i, r in enumerate(spec["recordings"]):
        if r["pool"] not in POOLS:
            raise SystemExit(f"{demo_dir / 'corpus.json'}: recordings[{i}].pool is {r['pool']!r}, not one of {POOLS}")
        audio = decode(demo_dir / r["file"]) if "file" in r else stream[r["start"] : r["start"] + r["samples"]]
        recordings.append(Recording(r["sentence"], r["pool"], r["source"], audio))
    return Corpus(spec["sentences"], spec["prompt"], recordings)


def _rng(*parts: object) -> np.random.Generator:
    """A generator seeded by the parts' text (stable across runs and Python versions)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def vary(audio: np.ndarray, rng: np.random.Generator, speed: tuple[float, float]) -> np.ndarray:
    """A seeded variation of a recording: speed change (tempo and pitch together, as sox's
    ``speed``), gain, and noise 30-45 dB below the speech."""
    factor = rng.uniform(*speed)
    out = np.interp(np.arange(0, audio.size - 1, factor), np.arange(audio.size), audio).astype(np.float32)
    out *= rng.uniform(0.6, 1.0) / max(1e-6, float(np.abs(out).max()))
    rms = float(np.sqrt(np.mean(out**2)))
    out += rng.normal(0.0, rms * 10 ** (-rng.uniform(30, 45) / 20), out.size).astype(np.float32)
    return out


# Real recordings vary more: they are one voice each, the espeak-ng renderings many.
REAL_SPEED = (0.9, 1.1)
RENDERED_SPEED = (0.95, 1.05)


def split_clips(corpus: Corpus, split: str, per_sentence: int, pool: str = "train") -> list[Clip]:
    """``per_sentence`` clips of every sentence for ``split`` from ``pool``'s recordings,
    deterministic in the arguments. A sentence's recordings take turns from a split-seeded
    start, so a split uses them all before any twice; a real (LibriVox) recording in the pool
    takes every other clip of its sentence."""
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}, not {pool!r}")
    clips: list[Clip] = []
    for s in range(len(corpus.sentences)):
        recordings = corpus.of(s, pool)
        real = [r for r in recordings if r.source.startswith("LibriVox")]
        rendered = [r for r in recordings if not r.source.startswith("LibriVox")]
        start = int(_rng(split, s).integers(len(rendered)))
        for k in range(per_sentence):
            rng = _rng(split, s, k)
            if real and k % 2 == 0:
                recording, speed = real[(k // 2) % len(real)], REAL_SPEED
            else:
                recording, speed = rendered[(start + k) % len(rendered)], RENDERED_SPEED
            clips.append(Clip(f"{split}-s{s:02d}-{k:02d}", s, vary(recording.audio, rng, speed), recording.source))
    return clips


def write_wav(path: Path, audio: np.ndarray) -> None:
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())


def write_dataset(out: Path, corpus: Corpus, clips: list[Clip], name: str = "data.jsonl", shuffle_seed: int | None = None) -> Path:
    """The clips as a dataset in the seed format: ``audios/<key>.wav`` and a jsonl whose user turn
    is the audio and the corpus's prompt and whose assistant turn is the sentence. With
    ``shuffle_seed`` the records are in a seeded order (the first N then span the sentences)."""
    (out / "audios").mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(shuffle_seed).permutation(len(clips)) if shuffle_seed is not None else range(len(clips))
    lines = []
    for i in order:
        clip = clips[i]
        rel = f"./audios/{clip.key}.wav"
        write_wav(out / rel, clip.audio)
        record = {
            "id": clip.key,
            "conversations": [
                {"role": "user", "content": [{"type": "audio", "audio": rel}, {"type": "text", "text": corpus.prompt}]},
                {"role": "assistant", "content": [{"type": "text", "text": corpus.sentences[clip.sentence]}]},
            ],
        }
        lines.append(json.dumps(record))
    path = out / name
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--split", required=True, help="split name: seeds which recordings and variations it draws")
    parser.add_argument("--per-sentence", type=int, default=4)
    parser.add_argument("--pool", choices=POOLS, default="train", help="recordings to draw from (held-out: voices no training split hears)")
    parser.add_argument("--name", default="data.jsonl", help="file name of the jsonl in OUT_DIR")
    args = parser.parse_args()
    corpus = load_corpus()
    clips = split_clips(corpus, args.split, args.per_sentence, args.pool)
    path = write_dataset(args.out_dir, corpus, clips, args.name)
    seconds = sum(c.audio.size for c in clips) / SAMPLE_RATE
    print(json.dumps({"jsonl": str(path), "records": len(clips), "sentences": len(corpus.sentences), "seconds": round(seconds, 1)}))


if __name__ == "__main__":
    sys.exit(main())
