"""Scales a checkpoint's output head: a random model's next-token distributions are nearly flat, so
its greedy answers are arbitrary and a draft can hardly learn them; a scaled head makes them
peaked (as the engine's own test targets are), which lets the quickstart show a draft that really
learns its target.

    python -m eaglet_qwen2_audio.sharpen MODEL_DIR OUT_DIR [--scale 25]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def sharpen_head(folder: Path, scale: float) -> None:
    """Multiplies the ``lm_head`` weight of ``folder``'s model.safetensors by ``scale``, in place."""
    from safetensors.torch import load_file, save_file

    weights = folder / "model.safetensors"
    state = load_file(str(weights))
    heads = [k for k in state if k.endswith("lm_head.weight")]
    if len(heads) != 1:
        raise SystemExit(f"expected one lm_head weight in {weights}, found {heads}")
    state[heads[0]] = state[heads[0]] * scale
    save_file(state, str(weights), metadata={"format": "pt"})


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("out")
    p.add_argument("--scale", type=float, default=25.0)
    args = p.parse_args()
    src, out = Path(args.model), Path(args.out)
    shutil.copytree(src, out, dirs_exist_ok=True)
    sharpen_head(out, args.scale)
    print(out)


if __name__ == "__main__":
    main()
