#!/usr/bin/env bash
# Makes the reference trainer's own Python environment: AngelSlim (Tencent) from PyPI, pinned,
# in a venv outside the repository (default ~/.cache/eaglet/angelslim-venv). Nothing of AngelSlim
# is copied into this repository; tools/bench/quality/reference/train_reference.py imports it.
#
# torch: AngelSlim 0.5.0 asks for torch>=2.6. PyPI's Linux torch wheel is the CUDA build (about
# 4 GB with its nvidia-* wheels) and the engine's venv already holds torch 2.15.0 from PyPI, so this
# venv sees the engine venv's site-packages through a .pth file (read-only, searched after this
# venv's own packages): both trainers run the very same torch build.
# transformers: pinned to 5.9.0 here (the engine has 5.24.0), the newest release AngelSlim 0.5.0
# runs on: its speculative package imports transformers.modeling_attn_mask_utils (gone in 5.24.0)
# and its Qwen2-Audio target backend hooks Qwen2AudioForConditionalGeneration.language_model
# (moved under .model in 5.10.0). Its repository asks for transformers>=5.6.
# Everything else is pinned in requirements.txt (pip freeze of this venv's own packages).
set -euo pipefail

VENV="${ANGELSLIM_VENV:-$HOME/.cache/eaglet/angelslim-venv}"
ENGINE_VENV="${EAGLET_VENV:-$HOME/.cache/eaglet/venv}"
PYTHON="${PYTHON:-$(readlink -f "$ENGINE_VENV/bin/python")}"

engine_site="$("$ENGINE_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
"$ENGINE_VENV/bin/python" - <<'PY'
import torch
assert torch.__version__.startswith("2.15.0"), torch.__version__
PY

"$PYTHON" -m venv "$VENV"
site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$engine_site" > "$site/eaglet-engine-venv.pth"

"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$(dirname "$0")/requirements.txt"
"$VENV/bin/python" -c 'import importlib.metadata as m; print(*(f"{p} {m.version(p)}" for p in ("angelslim", "torch", "transformers")), sep=", ")'
