"""Puts the real target's embedding rows back into a reference draft trained on the GPU bundle's
target (gpu_bundle.py: its never-read embedding rows travel as NaN, and AngelSlim's draft keeps a
bf16 copy of the whole table).

    node tools/python.mjs tools/bench/quality/reference/restore_reference_draft.py \\
        RUN/angelslim-draft --target ~/.cache/eaglet/fixtures/trained-qwen2-audio-440ae7de06e1-seed0

AngelSlim's ``load_embed_weights`` copies the target's fp32 table into the bf16 draft, and
``save_model`` writes it as ``embed_tokens.weight``. This rewrites model.safetensors in place with
every NaN row replaced by the real table's row cast to bf16, after checking that every other row
already equals it; the file is then what AngelSlim writes when trained on the real target (the
rows it replaces were never read). Refuses a draft whose non-NaN rows differ from the target's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_reference import EMBED_WEIGHT_KEY  # noqa: E402

DRAFT_KEY = "embed_tokens.weight"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("draft", type=Path, help="the reference's saved draft folder (angelslim-draft)")
    p.add_argument("--target", required=True, type=Path)
    args = p.parse_args()

    path = args.draft / "model.safetensors"
    with safe_open(str(path), "pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no items()
    with safe_open(str(args.target.expanduser() / "model.safetensors"), "pt") as f:
        real = f.get_tensor(EMBED_WEIGHT_KEY).to(tensors[DRAFT_KEY].dtype)
    table = tensors[DRAFT_KEY]
    missing = torch.isnan(table).all(dim=1)
    if torch.isnan(table[~missing]).any() or not torch.equal(table[~missing], real[~missing]):
        sys.exit(f"{path}: its embedding rows are not the target's ({args.target}): refusing to mix them")
    tensors[DRAFT_KEY] = torch.where(missing[:, None], real, table)
    save_file(tensors, str(path), metadata=metadata)
    print(json.dumps({"draft": str(args.draft), "restored_rows": int(missing.sum()), "checked_rows": int((~missing).sum())}))


if __name__ == "__main__":
    main()
