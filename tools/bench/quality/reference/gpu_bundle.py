"""The side-by-side's inputs, packed small enough to travel to the GPU device and rebuilt there
bit for bit (gpu_side_by_side.sh runs ``unpack``; docs/perf/quality.md, "On one GPU").

    node tools/python.mjs tools/bench/quality/reference/gpu_bundle.py pack \\
        --inputs /tmp/t16ref/inputs --target ~/.cache/eaglet/fixtures/trained-qwen2-audio-440ae7de06e1-seed0 \\
        --out /work/main/.dev-ref [--eaglet-wheels /work/main/.dev-t11/whl]
    python3 tools/bench/quality/reference/gpu_bundle.py unpack --bundle .dev-ref --work DIR [--records N]

What travels has to fit the device's 64 MiB (code included), and the inputs are 400 MB: the
fixture target (82 MB, two 156032 x 64 fp32 tables), 680 speech clips (66 MB of 16-bit PCM with
seeded noise: FLAC keeps 72% of it) and eaglet's prepared shards (the same clips again as
float32, 127 MB). So:

- **Clips are regenerated, not carried.** They were made by ``speech_corpus.py`` as of be8fce1
  (deterministic for a split name and count: espeak-ng 1.51 voices and the LibriVox recordings,
  varied by seeded numpy draws). The bundle carries that script (``git show``), the five LibriVox
  WAVs, and espeak-ng itself (binary, libespeak-ng, libsonic, its English data, and a stand-in
  libpcaudio from pcaudio_stub.c: espeak-ng with --stdout never plays sound), plus the SHA-256 of
  every original WAV. ``unpack`` runs the script and checks every clip against its hash.
- **Prepared shards are rebuilt** from their non-audio columns (carried) and the regenerated
  clips: a shard's audio is the WAV's samples / 32768 as float32 (checked here for every record
  at pack time, and its digest again after the rebuild there).
- **The target's unused embedding rows are NaN.** Only the token ids the data uses are ever
  looked up (``keep``: the rows the fixture trained, every id in the prepared shards, every id of
  the chat-templated conversations, every special token, and 0, the padding both collators use);
  the other 155k rows are the untrained initialisation and compress to nothing as NaN. Any read
  of one turns the losses NaN (which is how padding's id 0 was found). The lm
  head, every other tensor and the tokenizer files travel exactly. AngelSlim copies the table
  into its draft, so its saved draft carries the NaN rows too: restore_reference_draft.py puts
  the real rows back here.
- **Wheels** for the reference's own environment (what the device lacks or has at another
  version) and eaglet's jsonschema family.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import wave
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
SPLITS = ("draft-train", "draft-dev")
CORPUS_COMMIT = "be8fce1"  # the fixture's corpus (docs/perf/quality.md, "The fixture target")
CORPUS_PATH = "tools/fixtures/python/speech_corpus.py"
# The reference's own environment: these are missing on the device (KINDS.md's package list) or
# there at another version; versions from requirements.txt. transformers 5.9 and tokenizers 0.22
# must not be seen by eaglet's runs (they use the device's 5.17): they go to their own --target.
REF_WHEELS = ("angelslim", "transformers", "tokenizers", "datasets", "dill", "multiprocess", "defusedxml", "pytz", "shortuuid", "chardet")
# Seen by the reference venv through its .pth (the engine venv's), so not in requirements.txt;
# carried because the device's may fall outside datasets' fsspec<=2026.9.0 or transformers'
# regex>=2025.10.22.
REF_WHEELS_PINNED = {"fsspec": "2026.9.0", "regex": "2026.11.19"}
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64")
ESPEAK_DATA_FILES = ("phondata", "phondata-manifest", "phontab", "phonindex", "intonations", "en_dict", "lang", "voices")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wav_samples(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, 16000):
            raise SystemExit(f"{path}: expected 16 kHz mono 16-bit PCM")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def import_corpus(folder: Path):
    """speech_corpus.py as carried in the bundle (be8fce1's, not this checkout's)."""
    sys.path.insert(0, str(folder))
    import speech_corpus

    return speech_corpus


def audio_paths(jsonl: Path) -> list[str]:
    """Every audio path of a conversations JSONL, in order."""
    out = []
    for n, line in enumerate(jsonl.read_text().splitlines(), 1):
        for turn in json.loads(line)["conversations"]:
            out += [item["audio"] for item in turn["content"] if isinstance(turn["content"], list) and item.get("type") == "audio"]
        if len(out) != n:
            raise SystemExit(f"{jsonl}:{n}: expected one audio clip per conversation")
    return out


# --------------------------------------------------------------------------------------------
# pack (here)
# --------------------------------------------------------------------------------------------


def download_wheels(out: Path) -> None:
    pins = dict(line.strip().split("==") for line in (HERE / "requirements.txt").read_text().splitlines() if "==" in line)
    pins = {name.lower().replace("_", "-"): version for name, version in pins.items()}
    wanted = [f"{name}=={pins[name]}" for name in REF_WHEELS] + [f"{n}=={v}" for n, v in REF_WHEELS_PINNED.items()]
    platform_args = [a for p in PLATFORMS for a in ("--platform", p)]
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp", *platform_args, "-d", str(out), *wanted],
        check=True,
    )


def keep_ids(target: Path, inputs: Path, head: np.ndarray) -> list[int]:
    """Token ids whose embedding rows any run can read (see the module docstring)."""
    import pyarrow.ipc as ipc
    from transformers import AutoProcessor

    _, inverse, counts = np.unique(head, axis=0, return_inverse=True, return_counts=True)
    keep = set(np.flatnonzero(inverse.reshape(-1) != counts.argmax()).tolist())  # the trained rows; the rest share one
    for split in SPLITS:
        for shard in sorted((inputs / "prep" / split).glob("shard-*.arrow")):
            keep.update(np.unique(ipc.open_file(str(shard)).read_all()["input_ids"].combine_chunks().flatten().to_numpy()).tolist())
    processor = AutoProcessor.from_pretrained(str(target))
    tokenizer = processor.tokenizer
    for split in SPLITS:
        for line in (inputs / "regen" / f"{split}.jsonl").read_text().splitlines():
            text = processor.apply_chat_template(json.loads(line)["conversations"], tokenize=False)
            keep.update(tokenizer(text)["input_ids"])
    keep.update(tokenizer.all_special_ids)
    keep.update(int(i) for i in tokenizer.added_tokens_decoder)
    # Both trainers' collators right-pad input_ids with 0: a padded position is masked, but its
    # values still meet zero attention weights and loss masks, and NaN * 0 is NaN.
    keep.add(0)
    return sorted(int(i) for i in keep)


def pack_target(target: Path, inputs: Path, dst: Path) -> dict:
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    sys.path.insert(0, str(HERE))
    from train_reference import EMBED_WEIGHT_KEY

    shutil.copytree(target, dst)
    with safe_open(str(target / "model.safetensors"), "pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no items()
    keep = keep_ids(target, inputs, tensors["language_model.lm_head.weight"].numpy())
    table = tensors[EMBED_WEIGHT_KEY]
    filled = torch.full_like(table, float("nan"))
    filled[keep] = table[keep]
    tensors[EMBED_WEIGHT_KEY] = filled
    save_file(tensors, str(dst / "model.safetensors"), metadata=metadata)
    transport = {
        "embedding": EMBED_WEIGHT_KEY,
        "kept_rows": keep,
        "other_rows": "NaN (never read: no token of the data indexes them)",
        "original_model_sha256": sha256(target / "model.safetensors"),
    }
    (dst / "transport.json").write_text(json.dumps(transport) + "\n")
    return {"kept_rows": len(keep), "rows": int(table.shape[0])}


def pack_espeak(dst: Path) -> None:
    binary = Path(shutil.which("espeak-ng") or sys.exit("espeak-ng is not installed here"))
    libs = dict(re.findall(r"^\s*(\S+) => (\S+)", subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout, re.M))
    data = Path(re.search(r"Data at: (\S+)", subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True).stdout).group(1))
    (dst / "bin").mkdir(parents=True)
    (dst / "lib").mkdir()
    shutil.copy(binary, dst / "bin" / "espeak-ng")
    for soname in ("libespeak-ng.so.1", "libsonic.so.0"):
        shutil.copy(libs[soname], dst / "lib" / soname)  # follows the symlink: the file, under its soname
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-Wl,-soname,libpcaudio.so.0", "-o", str(dst / "lib" / "libpcaudio.so.0"), str(HERE / "pcaudio_stub.c")], check=True)
    (dst / "espeak-ng-data").mkdir()
    for name in ESPEAK_DATA_FILES:  # English only: the corpus speaks English accents
        src = data / name
        if src.is_dir():
            shutil.copytree(src, dst / "espeak-ng-data" / name)
        else:
            shutil.copy(src, dst / "espeak-ng-data" / name)


def pack_speech(inputs: Path, dst: Path) -> dict:
    dst.mkdir()
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{CORPUS_COMMIT}:{CORPUS_PATH}"], capture_output=True, text=True, check=True).stdout
    (dst / "speech_corpus.py").write_text(source)
    corpus = import_corpus(dst)
    shutil.copytree(corpus.LIBRIVOX_DIR, dst / "librivox", ignore=shutil.ignore_patterns("fileids", "test-lm.match", "transcription"))
    pack_espeak(dst / "espeak")
    sentences = len(corpus.SENTENCES)
    clips = {}
    for split in SPLITS:
        paths = [Path(p) for p in audio_paths(inputs / "regen" / f"{split}.jsonl")]
        if len(paths) % sentences:
            raise SystemExit(f"{split}: {len(paths)} clips is not a whole number per sentence ({sentences} sentences)")
        clips[split] = {"per_sentence": len(paths) // sentences, "sha256": {p.stem: sha256(p) for p in paths}}
    (dst / "clips.json").write_text(json.dumps(clips, indent=1) + "\n")
    return {split: len(c["sha256"]) for split, c in clips.items()}


def audio_digest(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values, dtype="<f4").tobytes()).hexdigest()


def pack_prep(inputs: Path, dst: Path) -> None:
    """Each shard without its audio column, its schema, and the digest of its audio (after
    checking that every record's audio is its WAV's samples / 32768, one segment)."""
    import pyarrow.ipc as ipc

    for split in SPLITS:
        src, out = inputs / "prep" / split, dst / split
        out.mkdir(parents=True)
        for name in ("manifest.json", "rejects.jsonl"):
            shutil.copy(src / name, out / name)
        wavs = {Path(p).stem: Path(p) for p in audio_paths(inputs / "regen" / f"{split}.jsonl")}
        rebuild = {}
        for shard in sorted(src.glob("shard-*.arrow")):
            table = ipc.open_file(str(shard)).read_all()
            audio = table["audio"].combine_chunks()
            if not np.array_equal(audio.value_lengths().to_numpy(), np.ones(len(table))):
                raise SystemExit(f"{shard}: a record with more than one audio segment; rebuilding expects one clip per record")
            values = audio.flatten().flatten().to_numpy()
            expected = np.concatenate([wav_samples(wavs[i]).astype(np.float32) / 32768 for i in table["id"].to_pylist()])
            if not np.array_equal(values, expected):
                raise SystemExit(f"{shard}: audio is not the WAV samples / 32768")
            stem = shard.stem
            with ipc.new_file(str(out / f"{stem}.schema.arrow"), table.schema):
                pass
            with ipc.new_file(str(out / f"{stem}.noaudio.arrow"), table.drop_columns(["audio"]).schema) as writer:
                writer.write_table(table.drop_columns(["audio"]))
            rebuild[shard.name] = {"audio_sha256": audio_digest(values)}
        (out / "rebuild.json").write_text(json.dumps(rebuild, indent=1) + "\n")


def pack(args: argparse.Namespace) -> None:
    inputs, target, out = args.inputs.resolve(), args.target.expanduser().resolve(), args.out
    prefixes = {str(Path(p).parents[2]) for s in SPLITS for p in audio_paths(inputs / "regen" / f"{s}.jsonl")}
    if prefixes != {str(inputs / "data")}:
        raise SystemExit(f"regen JSONL audio paths are not under {inputs / 'data'}: {sorted(prefixes)[:3]}")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "inputs"
        stage.mkdir()
        report = {"embedding_rows": pack_target(target, inputs, stage / "target")}
        report["clips"] = pack_speech(inputs, stage / "speech")
        pack_prep(inputs, stage / "prep")
        shutil.copytree(inputs / "regen", stage / "regen", ignore=shutil.ignore_patterns("bench.jsonl"))
        shutil.copy(inputs / "vocab4096.safetensors", stage / "vocab4096.safetensors")
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        bundle = {"made_by": f"gpu_bundle.py pack at {head}", "inputs": str(inputs), "audio_prefix": str(inputs / "data"), "target": target.name, "corpus": f"{CORPUS_COMMIT}:{CORPUS_PATH}", **report}
        (stage / "bundle.json").write_text(json.dumps(bundle, indent=1) + "\n")
        with tarfile.open(out / "inputs.tar.xz", "w:xz", preset=9) as tar:
            tar.add(stage, arcname="inputs", filter=lambda info: info if not info.name.endswith("__pycache__") else None)
    if not args.no_wheels:
        download_wheels(out / "whl-ref")
    if args.eaglet_wheels:
        shutil.rmtree(out / "whl-eaglet", ignore_errors=True)
        shutil.copytree(args.eaglet_wheels, out / "whl-eaglet")
    sizes = {p.name: p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}
    print(json.dumps({**bundle, "bundle_bytes": sum(sizes.values()), "inputs.tar.xz": sizes.get("inputs.tar.xz")}))


# --------------------------------------------------------------------------------------------
# unpack (on the device)
# --------------------------------------------------------------------------------------------


def regenerate_clips(bundle: Path, inputs: Path, wanted: dict[str, list[str]]) -> dict:
    """Runs the corpus script with the carried espeak-ng; writes the clips the runs read and
    checks each against the original's SHA-256."""
    speech = bundle / "speech"
    os.environ["PATH"] = f"{speech / 'espeak' / 'bin'}:{os.environ['PATH']}"
    os.environ["LD_LIBRARY_PATH"] = ":".join(filter(None, [str(speech / "espeak" / "lib"), os.environ.get("LD_LIBRARY_PATH")]))
    os.environ["ESPEAK_DATA_PATH"] = str(speech / "espeak")  # espeak-ng reads $ESPEAK_DATA_PATH/espeak-ng-data
    speech_corpus = import_corpus(speech)
    speech_corpus.LIBRIVOX_DIR = speech / "librivox"
    expected = json.loads((speech / "clips.json").read_text())
    report = {"clips": 0, "identical": 0, "differing": []}
    for split, keys in wanted.items():
        folder = inputs / "data" / split / "audios"
        folder.mkdir(parents=True, exist_ok=True)
        made = {c.key: c for c in speech_corpus.split_clips(split, expected[split]["per_sentence"])}
        for key in keys:
            path = folder / f"{key}.wav"
            speech_corpus.write_wav(path, made[key].audio)
            report["clips"] += 1
            if sha256(path) == expected[split]["sha256"][key]:
                report["identical"] += 1
            else:
                report["differing"].append(f"{split}/{key}")
    return report


def rebuild_prep(bundle: Path, inputs: Path, wanted: dict[str, list[str]]) -> dict:
    import pyarrow as pa
    import pyarrow.ipc as ipc

    report = {}
    for split, keys in wanted.items():
        src, out = bundle / "prep" / split, inputs / "prep" / split
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / "rejects.jsonl", out / "rejects.jsonl")
        manifest = json.loads((src / "manifest.json").read_text())
        rebuild = json.loads((src / "rebuild.json").read_text())
        subset = set(keys)
        for entry in manifest["shards"]:
            stem = Path(entry["file"]).stem
            schema = ipc.open_file(str(src / f"{stem}.schema.arrow")).schema
            carried = ipc.open_file(str(src / f"{stem}.noaudio.arrow")).read_all()
            table = carried.filter(pa.array([i in subset for i in carried["id"].to_pylist()]))
            clips = [wav_samples(inputs / "data" / split / "audios" / f"{i}.wav").astype(np.float32) / 32768 for i in table["id"].to_pylist()]
            values = np.concatenate(clips) if clips else np.zeros(0, np.float32)
            inner = pa.ListArray.from_arrays(pa.array(np.concatenate([[0], np.cumsum([c.size for c in clips])]).astype(np.int32)), pa.array(values))
            outer = pa.ListArray.from_arrays(pa.array(np.arange(len(clips) + 1, dtype=np.int32)), inner)
            columns = [outer.cast(schema.field("audio").type) if name == "audio" else table[name] for name in schema.names]
            full = pa.Table.from_arrays(columns, schema=schema)
            with ipc.new_file(str(out / entry["file"]), schema) as writer:
                writer.write_table(full)
            entry["records"] = len(full)
            same = audio_digest(values) == rebuild[entry["file"]]["audio_sha256"] if len(full) == len(carried) else "subset"
            report[f"{split}/{entry['file']}"] = {"records": len(full), "audio_as_original": same}
        manifest["counts"]["records"] = manifest["counts"]["written"] = sum(e["records"] for e in manifest["shards"])
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return report


def unpack(args: argparse.Namespace) -> None:
    work = args.work.resolve()
    shutil.rmtree(work / "bundle", ignore_errors=True)
    with tarfile.open(args.bundle / "inputs.tar.xz", "r:xz") as tar:
        tar.extractall(work / "bundle", filter="data")
    bundle, inputs = work / "bundle" / "inputs", work / "inputs"
    shutil.rmtree(inputs, ignore_errors=True)
    inputs.mkdir(parents=True)
    meta = json.loads((bundle / "bundle.json").read_text())
    shutil.copytree(bundle / "target", inputs / "target")
    shutil.copy(bundle / "vocab4096.safetensors", inputs / "vocab4096.safetensors")

    wanted = {}
    (inputs / "regen").mkdir()
    for split in SPLITS:
        lines = (bundle / "regen" / f"{split}.jsonl").read_text().splitlines()[: args.records]
        rewritten = [line.replace(json.dumps(meta["audio_prefix"])[1:-1], str(inputs / "data")) for line in lines]
        (inputs / "regen" / f"{split}.jsonl").write_text("\n".join(rewritten) + "\n")
        wanted[split] = [Path(p).stem for p in audio_paths(inputs / "regen" / f"{split}.jsonl")]
    report = {"bundle": meta["made_by"], "records": args.records or "all"}
    report["clips"] = regenerate_clips(bundle, inputs, wanted)
    report["prep"] = rebuild_prep(bundle, inputs, wanted)
    (inputs / "verification.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report))
    if report["clips"]["differing"]:
        print(f"WARNING: {len(report['clips']['differing'])} regenerated clips differ from the originals (both trainers read the same ones)", file=sys.stderr)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    pk = sub.add_parser("pack", help="here: write the bundle")
    pk.add_argument("--inputs", required=True, type=Path, help="the side-by-side's inputs: data/, prep/, regen/, vocab4096.safetensors")
    pk.add_argument("--target", required=True, type=Path)
    pk.add_argument("--out", required=True, type=Path)
    pk.add_argument("--eaglet-wheels", type=Path, help="folder of the wheels eaglet's engine needs there (the jsonschema family)")
    pk.add_argument("--no-wheels", action="store_true", help="skip downloading the reference's wheels")
    up = sub.add_parser("unpack", help="there: rebuild the inputs under WORK/inputs")
    up.add_argument("--bundle", required=True, type=Path)
    up.add_argument("--work", required=True, type=Path)
    up.add_argument("--records", type=int, help="only the first N conversations of each split (a reduced test)")
    args = p.parse_args()
    (pack if args.command == "pack" else unpack)(args)


if __name__ == "__main__":
    main()
