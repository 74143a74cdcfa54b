"""Renders the demo corpus's sentences with espeak-ng into the data the plugin ships (run once by a
maintainer; espeak-ng is not needed at build time or by users).

    python plugins/qwen2-audio/scripts/render_demo_speech.py [--demo-dir plugins/qwen2-audio/demo]

Writes into the demo folder:

* ``corpus-speech.opus``: every rendering, 16 kHz mono, one after another with 0.3 s of silence
  between them, as one Ogg/Opus stream (12 kb/s speech: about 1.5 kB a second);
* ``corpus.json``: the 40 sentences, the prompt, and every recording of them: where each
  rendering starts in the stream and how long it is, or which shipped LibriVox WAV it is, and its
  pool (``train`` or ``held-out``: the builder trains on the first and holds out the second).

Each sentence gets ``--train`` renderings in the train pool and ``--held-out`` in the held-out
pool, each a new draw of an English accent, voice variant, speed and pitch (seeded: the same
files on every machine with the same espeak-ng and ffmpeg). The five LibriVox sentences also have
their real recording (the WAVs beside demo.json) in the train pool.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
GAP_SECONDS = 0.3
# Renderings are cut this far (s) into the silence espeak-ng leaves before and after speech.
MARGIN_SECONDS = 0.1
BITRATE = "12k"
ASR_PROMPT = "Detect the language and recognize the speech: <|en|>"

# The LibriVox utterances the plugin ships (demo/<file>) and what is said, written out.
LIBRIVOX = {
    "librivox-0870.wav": "And Mister John Dashwood had then leisure to consider how much there might be prudently in his power to do for them.",
    "librivox-0880.wav": "He was not an ill disposed young man.",
    "librivox-0890.wav": "Unless to be rather cold hearted and rather selfish is to be ill disposed.",
    "librivox-0920.wav": "Had he married a more amiable woman, he might have been made still more respectable than he was.",
    "librivox-0930.wav": "He might even have been made amiable himself.",
}

# Written for the corpus: shared openings ("The", "She", "He was", "Please", "There") make the
# first words of an answer depend on the audio, and shared words make a bigram table ambiguous.
WRITTEN = [
    "The quick brown fox jumps over the lazy dog.",
    "Speculative decoding makes language models faster.",
    "The draft model guesses the next few tokens.",
    "The target model checks every guess in one pass.",
    "The weather was cold and the roads were quiet.",
    "The train to the city leaves at seven in the morning.",
    "The children played in the garden until dark.",
    "She opened the window and listened to the rain.",
    "She was not sure where she had left her keys.",
    "She might come back tomorrow with her sister.",
    "He walked to the station without saying a word.",
    "He was tired after the long journey home.",
    "We will meet again at the end of the week.",
    "We have enough bread for two more days.",
    "Please speak a little more slowly.",
    "Please close the door when you leave the room.",
    "My brother plays the violin every evening.",
    "My favourite season is the autumn.",
    "There is a small house at the edge of the forest.",
    "There are seven days in a week.",
    "It was a bright cold day in April.",
    "It is never too late to learn something new.",
    "Good morning, how can I help you today?",
    "Thank you very much for your kind letter.",
    "Every sound carries a little piece of the world.",
    "Music fills the hall when the orchestra begins.",
    "The old clock in the hall stopped at midnight.",
    "A cup of tea would be lovely right now.",
    "Listen carefully and repeat what you hear.",
    "Turn left at the bridge and follow the river.",
    "The library closes early on Sundays.",
    "Numbers like three hundred and twelve are easy to say.",
    "Two roads diverged in a yellow wood.",
    "The sun rises in the east and sets in the west.",
    "Audio models learn to understand spoken language.",
]

# espeak-ng's English accents (no mbrola voices: they are a separate package) and voice variants.
ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc"]
VARIANTS = ["", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5"]


def rng_for(*parts: object) -> np.random.Generator:
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def ffmpeg(args: list[str], data: bytes | None = None) -> bytes:
    return subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", *args], input=data, check=True, capture_output=True).stdout


def espeak(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """espeak-ng's rendering, resampled by ffmpeg to 16 kHz mono int16, silence trimmed to a margin."""
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text], check=True, capture_output=True).stdout
    pcm = np.frombuffer(ffmpeg(["-i", "pipe:0", "-f", "s16le", "-ac", "1", "-ar", str(SAMPLE_RATE), "pipe:1"], wav), dtype="<i2")
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > 300)
    margin = int(MARGIN_SECONDS * SAMPLE_RATE)
    return pcm[max(0, loud[0] - margin) : loud[-1] + margin]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo-dir", type=Path, default=Path(__file__).resolve().parents[1] / "demo")
    parser.add_argument("--train", type=int, default=10, help="renderings per sentence in the train pool")
    parser.add_argument("--held-out", type=int, default=2, help="renderings per sentence in the held-out pool")
    args = parser.parse_args()

    sentences = list(LIBRIVOX.values()) + WRITTEN
    gap = np.zeros(int(GAP_SECONDS * SAMPLE_RATE), dtype="<i2")
    parts: list[np.ndarray] = []
    at = 0
    recordings: list[dict] = []
    for file, text in LIBRIVOX.items():
        recordings.append({"sentence": sentences.index(text), "pool": "train", "source": f"LibriVox ({file})", "file": file})
    for s, text in enumerate(sentences):
        for k in range(args.train + args.held_out):
            rng = rng_for("render", s, k)
            accent, variant = ACCENTS[rng.integers(len(ACCENTS))], VARIANTS[rng.integers(len(VARIANTS))]
            voice = f"{accent}+{variant}" if variant else accent
            speed, pitch = int(rng.integers(125, 196)), int(rng.integers(25, 76))
            pcm = espeak(text, voice, speed, pitch)
            pool = "train" if k < args.train else "held-out"
            recordings.append({"sentence": s, "pool": pool, "source": f"espeak-ng {voice} -s {speed} -p {pitch}", "start": at, "samples": int(pcm.size)})
            parts += [pcm, gap]
            at += pcm.size + gap.size

    stream = np.concatenate(parts)
    raw = io.BytesIO()
    with wave.open(raw, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(stream.tobytes())
    opus = args.demo_dir / "corpus-speech.opus"
    ffmpeg(["-y", "-i", "pipe:0", "-c:a", "libopus", "-b:a", BITRATE, "-application", "voip", "-map_metadata", "-1", "-fflags", "+bitexact", str(opus)], raw.getvalue())

    # The decoded stream must line up with the offsets: Opus's encoder delay is removed on decoding.
    decoded = np.frombuffer(ffmpeg(["-i", str(opus), "-f", "s16le", "-ac", "1", "-ar", str(SAMPLE_RATE), "pipe:1"]), dtype="<i2")
    mid = recordings[len(recordings) // 2]
    probe = slice(mid["start"], mid["start"] + mid["samples"])
    lags = range(-200, 201)
    a = stream[probe].astype(np.float64)
    best = max(lags, key=lambda lag: float(np.dot(a, decoded[probe.start + lag : probe.stop + lag].astype(np.float64))))
    if abs(best) > 16 or abs(decoded.size - stream.size) > SAMPLE_RATE // 10:
        raise SystemExit(f"decoded stream is offset by {best} samples ({decoded.size} vs {stream.size} samples)")

    corpus = {
        "about": (
            "The demo target's corpus: 40 sentences, five of them from LibriVox's Sense and Sensibility (public domain; "
            "the real recordings are the librivox-*.wav files here), each also spoken by espeak-ng in varied English "
            "accents, voices, speeds and pitches (corpus-speech.opus, rendered by scripts/render_demo_speech.py). "
            "Recordings in the held-out pool are never trained on."
        ),
        "prompt": ASR_PROMPT,
        "sampleRate": SAMPLE_RATE,
        "speech": opus.name,
        "sentences": sentences,
        "recordings": recordings,
    }
    # One recording a line: readable, and small beside the audio.
    head = json.dumps({k: v for k, v in corpus.items() if k != "recordings"}, indent=1)[:-2]
    rows = ",\n  ".join(json.dumps(r) for r in recordings)
    (args.demo_dir / "corpus.json").write_text(f'{head},\n "recordings": [\n  {rows}\n ]\n}}\n')
    print(json.dumps({"recordings": len(recordings), "seconds": round(stream.size / SAMPLE_RATE, 1), "opusBytes": opus.stat().st_size, "alignmentLag": best}))


if __name__ == "__main__":
    sys.exit(main())
