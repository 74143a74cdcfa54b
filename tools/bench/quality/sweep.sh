#!/usr/bin/env bash
# One row of "What moves acceptance" (docs/perf/quality.md): train a draft with draft_experiment.py
# on the fixture target, then measure its acceptance with `eaglet bench` exactly as the
# side-by-side section does (120 held-out bench prompts, 3 draft tokens, temperature 0, 48 tokens,
# CPU, fp32, one thread, one round, Eagle3 only).
#
#   T=TARGET I=INPUTS R=RUNS tools/bench/quality/sweep.sh NAME [--train DIR]... [--vocab FILE] \
#       [--set KEY=VALUE]... [--variant NAME]...
#
# INPUTS holds prep/draft-train, prep/draft-dev (eval), regen/bench.jsonl (bench prompts) and
# vocab4096.safetensors; --train and --vocab replace those defaults, every other flag goes to
# draft_experiment.py unchanged. Leaves RUNS/NAME/{summary.json,metrics.jsonl,draft/,bench.json}.
set -euo pipefail
: "${T:?target folder}" "${I:?inputs folder}" "${R:?runs folder}"
name=${1:?row name}
shift
cd "$(dirname "$0")/../../.."

train=() vocab=$I/vocab4096.safetensors rest=()
while (($#)); do
  case $1 in
    --train) train+=(--train "$2"); shift 2 ;;
    --vocab) vocab=$2; shift 2 ;;
    *) rest+=("$1"); shift ;;
  esac
done
((${#train[@]})) || train=(--train "$I/prep/draft-train")

out=$R/$name
OMP_NUM_THREADS=1 node tools/python.mjs tools/bench/quality/draft_experiment.py --target "$T" \
  "${train[@]}" --eval "$I/prep/draft-dev" --vocab "$vocab" --out "$out" "${rest[@]}"
OMP_NUM_THREADS=1 npx eaglet bench --target-model "$T" --draft-model "$out/draft" \
  --test-data-path "$I/regen/bench.jsonl" --num-prompts 120 --num-spec-tokens 3 --output-len 48 \
  --temp 0 --device cpu --cpu-threads 1 --rounds 1 --dtype fp32 --no-baseline \
  --output-file "$out/bench.json" > "$out/bench.log"
