#!/usr/bin/env bash
# The wheels that carry the reference trainer (AngelSlim 0.5.0's speculative package, run by
# tools/bench/reference_throughput.py and train_throughput.py --reference) to the GPU machine,
# which has no network: downloaded here into .dev-ref/whl (ignored by git), carried with the
# working tree (`carry: [".dev-ref/whl"]`, 64 MiB at most for all carried paths), installed there
# into a folder of their own that only the reference's process has on its PYTHONPATH:
#
#   bash tools/bench/reference_bundle.sh                      # here
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site-ref .dev-ref/whl/*.whl   # there
#   python3 tools/bench/train_throughput.py --lengths 4096 --reference /tmp/site-ref         # there
#
# Only what the GPU machine lacks, or has at a version the reference cannot use, found by importing
# the speculative package and running its step here with nothing else beside a copy of the
# machine's packages (its list: /work/.library/device/KINDS.md; it has torch 2.11, transformers
# 5.17, tokenizers 0.23.2, accelerate 1.15, numpy, pandas, pyarrow 25, safetensors,
# huggingface_hub, regex, requests, psutil, xxhash):
#   angelslim 0.5.0    the reference itself (pure Python)
#   transformers 5.9.0 the newest it runs on (tools/bench/quality/reference/setup.sh says why)
#   tokenizers 0.22.2  transformers 5.9 checks tokenizers<=0.23.0 when it is imported
#   datasets, dill, multiprocess   imported by angelslim.utils (datasets needs the other two)
#   shortuuid          imported by the speculative package's benchmark module at import
# Versions are requirements.txt's (the reference venv of setup.sh), so both environments agree.
#
# PY=3.11 OUT=/tmp/whl-311 bash tools/bench/reference_bundle.sh   downloads the same set for
# another Python (multiprocess is one wheel per Python version), e.g. to try the install here.
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=${OUT:-.dev-ref/whl}
PY=${PY:-3.12}                    # the GPU machine's Python
PYTHON=${PYTHON:-python3}         # any Python with pip: it only downloads
REQUIREMENTS=tools/bench/quality/reference/requirements.txt
NAMES=(angelslim transformers tokenizers datasets dill multiprocess shortuuid)
LIMIT_MIB=64                      # the device's carry limit, all carried paths together

pins=()
for name in "${NAMES[@]}"; do
  pin=$(grep -i "^${name}==" "$REQUIREMENTS") || { echo "$name is not pinned in $REQUIREMENTS" >&2; exit 1; }
  pins+=("$pin")
done

rm -rf "$OUT"
mkdir -p "$OUT"
"$PYTHON" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  --python-version "$PY" --implementation cp --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
  -d "$OUT" "${pins[@]}"

ls -l "$OUT"
bytes=$(du -cb "$OUT"/*.whl | tail -1 | cut -f1)
echo "$(ls "$OUT"/*.whl | wc -l) wheels, $bytes bytes ($((bytes / 1048576)) MiB) in $OUT for Python $PY: ${pins[*]}"
if [ "$bytes" -gt $((LIMIT_MIB * 1048576)) ]; then
  echo "over the device's $LIMIT_MIB MiB carry limit" >&2
  exit 1
fi
