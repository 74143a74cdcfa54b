"""Proves ffmpeg-shim/ffmpeg bit-identical to real ffmpeg on the fixture's clips (run where real
ffmpeg is installed, i.e. here, not on the GPU device).

    python3 tools/bench/quality/reference/check_ffmpeg_shim.py DIR_OR_WAV... [--every 1]

For each WAV it runs transformers' ``ffmpeg_read`` command (transformers/pipelines/audio_utils.py)
once with real ffmpeg and once with the shim, and compares the float32 output byte for byte. It
also checks that the shim refuses what it cannot decode exactly (a stereo WAV, another rate,
other arguments) rather than guessing. Exit status 0 only when every clip matches and every
refusal happens; prints one JSON summary line.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import wave
from pathlib import Path

SHIM = Path(__file__).resolve().parent / "ffmpeg-shim" / "ffmpeg"


def ffmpeg_read_command(program: str, rate: int = 16000) -> list[str]:
    """transformers' ffmpeg_read command, with ``program`` in place of ``ffmpeg``."""
    return [program, "-i", "pipe:0", "-ac", "1", "-ar", str(rate), "-f", "f32le", "-hide_banner", "-loglevel", "quiet", "pipe:1"]


def run(command: list[str], payload: bytes) -> subprocess.CompletedProcess:
    return subprocess.run(command, input=payload, capture_output=True, check=False)


def wav_bytes(channels: int, rate: int, frames: bytes) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return buffer.getvalue()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="+", type=Path, help="WAV files or folders of them (searched recursively)")
    p.add_argument("--every", type=int, default=1, help="check every N-th clip (sorted by path)")
    args = p.parse_args()
    real = shutil.which("ffmpeg")
    if real is None:
        sys.exit("real ffmpeg is not on PATH: this check compares the shim against it")

    wavs = sorted(w for path in args.paths for w in ([path] if path.is_file() else path.rglob("*.wav")))[:: args.every]
    mismatched, samples = [], 0
    for path in wavs:
        payload = path.read_bytes()
        expected, got = run(ffmpeg_read_command(real), payload), run(ffmpeg_read_command(str(SHIM)), payload)
        if got.returncode != 0 or not expected.stdout or got.stdout != expected.stdout:
            mismatched.append({"wav": str(path), "shim_status": got.returncode, "shim_stderr": got.stderr.decode()[-300:]})
        samples += len(expected.stdout) // 4

    one_second = b"\x01\x00\xff\xff" * 8000
    refusals = {
        "stereo": run(ffmpeg_read_command(str(SHIM)), wav_bytes(2, 16000, one_second)),
        "22050 Hz": run(ffmpeg_read_command(str(SHIM)), wav_bytes(1, 22050, one_second)),
        "other arguments": run([str(SHIM), "-i", "pipe:0", "-f", "s16le", "pipe:1"], wav_bytes(1, 16000, one_second)),
        "not a WAV": run(ffmpeg_read_command(str(SHIM)), b"OggS" + one_second),
    }
    not_refused = [name for name, r in refusals.items() if r.returncode == 0 or r.stdout]
    summary = {
        "clips": len(wavs),
        "samples": samples,
        "bit_identical": len(wavs) - len(mismatched),
        "mismatched": mismatched[:5],
        "refused": sorted(set(refusals) - set(not_refused)),
        "not_refused": not_refused,
    }
    print(json.dumps(summary))
    sys.exit(0 if wavs and not mismatched and not not_refused else 1)


if __name__ == "__main__":
    main()
