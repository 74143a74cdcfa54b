#!/usr/bin/env bash
# The side-by-side of docs/perf/quality.md ("Side by side with the reference trainer") at the
# issue's budget on one GPU: eaglet (draft_experiment.py) and AngelSlim 0.5.0
# (train_reference.py), three seeds each, 300 steps of 8, eval every 50, all six runs at once.
# Made for the GPU device (no network, no ffmpeg, Python 3.12 with torch and transformers 5.17);
# its inputs travel in the bundle gpu_bundle.py packs (.dev-ref, ignored by git, named in carry).
#
#   OUT=DIR bash tools/bench/quality/reference/gpu_side_by_side.sh
#
# Writes OUT/driver.log, OUT/status.json (each run's exit status, time, last eval, checks) and
# OUT/side-by-side.tar.xz (per run: metrics.jsonl, summary.json, log, the saved draft; the
# rebuilt inputs' verification.json). Each trainer sees only its own packages: the reference's
# wheels (transformers 5.9, tokenizers 0.22, datasets, angelslim, ...) go to WORK/site-ref, on
# PYTHONPATH of its runs alone; eaglet's runs use the machine's transformers. The reference reads
# audio through ffmpeg-shim/ffmpeg (first on its PATH only). Exit status 0 when all six runs
# finished and passed the checks.
#
# The same script runs here on CPU as a reduced test (docs/perf/quality.md, "On one GPU"):
#   OUT=/tmp/o WORK=/tmp/w DEVICE=cpu INSTALL=0 STEPS=2 EVAL_EVERY=2 LOG_EVERY=1 RECORDS=16 \
#     NUM_PROC=1 PYTHON=~/.cache/eaglet/venv/bin/python REF_PYTHON=~/.cache/eaglet/angelslim-venv/bin/python \
#     bash tools/bench/quality/reference/gpu_side_by_side.sh
set -uo pipefail
cd "$(dirname "$0")/../../../.." || exit 1

OUT=${OUT:?set OUT to the folder for the results}
BUNDLE=${BUNDLE:-.dev-ref}
WORK=${WORK:-/tmp/side-by-side}
DEVICE=${DEVICE:-cuda}
STEPS=${STEPS:-300}
EVAL_EVERY=${EVAL_EVERY:-50}
LOG_EVERY=${LOG_EVERY:-25}
SEEDS=${SEEDS:-0 1 2}
RECORDS=${RECORDS:-}              # only the first N conversations of each split (a reduced test)
RUN_TIMEOUT=${RUN_TIMEOUT:-450}   # seconds per training run (all six run at once)
NUM_PROC=${NUM_PROC:-4}           # the reference's dataset-build workers, per run
PYTHON=${PYTHON:-python3}         # eaglet's runs and the unpacking
REF_PYTHON=${REF_PYTHON:-$PYTHON} # the reference's runs
INSTALL=${INSTALL:-1}             # 0: PYTHON and REF_PYTHON already hold every package
REF=tools/bench/quality/reference

mkdir -p "$OUT" "$WORK"
exec > >(tee "$OUT/driver.log") 2>&1
started=$(date +%s)
say() { echo "[$(($(date +%s) - started))s] $*"; }
fail() { say "FAILED: $*"; exit 1; }

say "device $DEVICE, $STEPS steps, seeds $SEEDS, records ${RECORDS:-all}, $(nproc) cores"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

ref_site="" eaglet_site=""
if [ "$INSTALL" = 1 ]; then
  for env in ref eaglet; do
    rm -rf "$WORK/site-$env"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --disable-pip-version-check \
      --target "$WORK/site-$env" "$BUNDLE"/whl-$env/*.whl || fail "installing $BUNDLE/whl-$env"
  done
  ref_site=$WORK/site-ref eaglet_site=$WORK/site-eaglet
fi
eaglet_path=packages/engine/python${eaglet_site:+:$eaglet_site}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1

# Both environments import before anything runs (and compile their bytecode once, not six times).
PYTHONPATH=$ref_site "$REF_PYTHON" - <<'PY' || fail "the reference's environment does not import"
import importlib.metadata as m, sys, torch
sys.path.insert(0, "tools/bench/quality/reference")
from train_reference import import_angelslim_speculative
import_angelslim_speculative()
import datasets, transformers
assert transformers.__version__ == "5.9.0", transformers.__version__
print("reference env:", ", ".join(f"{p} {m.version(p)}" for p in ("angelslim", "transformers", "tokenizers", "datasets", "torch", "numpy", "pyarrow", "pandas", "fsspec")), f"cuda {torch.cuda.is_available()}")
PY
PYTHONPATH=$eaglet_path "$PYTHON" - <<'PY' || fail "eaglet's environment does not import"
import importlib.metadata as m, torch, transformers
import eaglet_engine.trainer  # noqa: F401
assert transformers.__version__ != "5.9.0", "the reference's transformers leaked into eaglet's environment"
print("eaglet env:", ", ".join(f"{p} {m.version(p)}" for p in ("transformers", "tokenizers", "torch", "numpy", "pyarrow", "jsonschema")), f"cuda {torch.cuda.is_available()}")
PY
say "environments ready"

"$PYTHON" $REF/gpu_bundle.py unpack --bundle "$BUNDLE" --work "$WORK" ${RECORDS:+--records "$RECORDS"} || fail "rebuilding the inputs"
I=$WORK/inputs
say "inputs rebuilt under $I"

eaglet_device=(--set "device=$DEVICE")
# fp32 on CUDA: PyTorch's CUDA flash attention takes only fp16/bf16; the eager TTT kernel is the same function.
[ "$DEVICE" = cuda ] && eaglet_device+=(--set ttt.attention=eager)
runs=$WORK/runs
rm -rf "$runs" && mkdir -p "$runs"
declare -A pids
for s in $SEEDS; do
  mkdir -p "$runs/eaglet-s$s" "$runs/angelslim-s$s"
  OMP_NUM_THREADS=1 PYTHONPATH=$eaglet_path timeout -k 15 "$RUN_TIMEOUT" "$PYTHON" tools/bench/quality/draft_experiment.py \
    --target "$I/target" --train "$I/prep/draft-train" --eval "$I/prep/draft-dev" --vocab "$I/vocab4096.safetensors" \
    --out "$runs/eaglet-s$s" --set "seed=$s" --set "maxSteps=$STEPS" --set "evalEvery=$EVAL_EVERY" --set "logEvery=$LOG_EVERY" \
    "${eaglet_device[@]}" > "$runs/eaglet-s$s.log" 2>&1 &
  pids[eaglet-s$s]=$!
  OMP_NUM_THREADS=1 PATH="$PWD/$REF/ffmpeg-shim:$PATH" PYTHONPATH=$ref_site HF_DATASETS_CACHE=$WORK/hf-datasets-s$s \
    timeout -k 15 "$RUN_TIMEOUT" "$REF_PYTHON" $REF/train_reference.py \
    --target "$I/target" --train "$I/regen/draft-train.jsonl" --eval "$I/regen/draft-dev.jsonl" --vocab "$I/vocab4096.safetensors" \
    --out "$runs/angelslim-s$s" --seed "$s" --steps "$STEPS" --eval-every "$EVAL_EVERY" --log-every "$LOG_EVERY" --num-proc "$NUM_PROC" \
    > "$runs/angelslim-s$s.log" 2>&1 &
  pids[angelslim-s$s]=$!
done
say "started ${!pids[*]}"
declare -A codes
for run in "${!pids[@]}"; do
  wait "${pids[$run]}"
  codes[$run]=$?
  say "$run exited ${codes[$run]}"
done

# Each run's outcome and the checks that make it count (status.json).
for run in "${!codes[@]}"; do echo "$run ${codes[$run]}"; done > "$WORK/exit-codes.txt"
"$PYTHON" - "$WORK" "$STEPS" "${RECORDS:-}" <<'PY' > "$OUT/status.json"
import json, math, sys
from pathlib import Path
work, steps, records = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
expected = {"train_records": int(records) if records else 600, "eval_records": int(records) if records else 80}
status = {"verification": json.loads((work / "inputs" / "verification.json").read_text()), "runs": {}}
for line in (work / "exit-codes.txt").read_text().splitlines():
    run, code = line.split()
    folder = work / "runs" / run
    rows = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines() if x.strip()] if (folder / "metrics.jsonl").is_file() else []
    summary = json.loads((folder / "summary.json").read_text()) if (folder / "summary.json").is_file() else {}
    evals = [r for r in rows if r["split"] == "eval"]
    problems = [] if code == "0" else [f"exit status {code}"]
    if any(isinstance(v, float) and not math.isfinite(v) for r in rows for v in r.values()):
        problems.append("a NaN or infinite metric")
    if not evals or evals[-1]["step"] != steps:
        problems.append(f"no eval at step {steps}")
    for key, n in expected.items():  # the reference drops a conversation it cannot read, silently
        if key in summary and summary[key] != n:
            problems.append(f"{key} {summary[key]}, expected {n}")
    status["runs"][run] = {
        "ok": not problems, "problems": problems, "seconds": summary.get("seconds"), "device": summary.get("device"),
        "last_eval": {k: round(v, 4) for k, v in evals[-1].items() if k.startswith(("acc_", "bigram"))} | {"step": evals[-1]["step"]} if evals else None,
    }
status["ok"] = all(r["ok"] for r in status["runs"].values())
print(json.dumps(status, indent=1))
PY
cat "$OUT/status.json"

(cd "$WORK" && XZ_OPT=-T0 tar -cJf "$OUT/side-by-side.tar.xz" inputs/verification.json runs/*.log \
  runs/*/metrics.jsonl runs/*/summary.json runs/*/curves.png runs/*/draft runs/*/angelslim-draft runs/*/draft_config.json 2>/dev/null)
ls -l "$OUT"
say "done"
"$PYTHON" -c 'import json, sys; sys.exit(0 if json.load(open(sys.argv[1]))["ok"] else 1)' "$OUT/status.json"
