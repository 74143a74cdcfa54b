#!/usr/bin/env bash
# The inputs "What moves acceptance" (docs/perf/quality.md) derives from the fixture's data:
# smaller draft vocabularies, the original transcripts prepared as they are, and the training
# split regenerated at temperatures 0.7 and 1.0 (otherwise as the temperature-0 answers were made:
# the embedded server, CPU, one thread, 48 tokens, concurrency 2).
#
#   T=TARGET I=INPUTS O=OUT tools/bench/quality/sweep_inputs.sh [vocab|original|regen]...
#
# INPUTS: data/draft-train/data.jsonl (original conversations), prep/draft-train (the regenerated
# ones, prepared). Writes OUT/vocab{64,256,1024}.safetensors, OUT/prep/draft-train-original,
# OUT/regen-t{0.7,1.0}/ and OUT/prep/draft-train-t{0.7,1.0}. No step argument: all three.
set -euo pipefail
: "${T:?target folder}" "${I:?inputs folder}" "${O:?output folder}"
cd "$(dirname "$0")/../../.."
mkdir -p "$O/prep"
export OMP_NUM_THREADS=1
steps=("$@")
((${#steps[@]})) || steps=(vocab original regen)

prepare() { # data.jsonl... -> prepared folder
  local out=$1; shift
  npx eaglet data prepare --model "$T" "${@/#/--data=}" --out "$out" --concurrency 1 --overwrite --json > "$out.log"
}

for step in "${steps[@]}"; do
  case $step in
    vocab)
      for n in 64 256 1024; do
        npx eaglet data vocab --data "$I/prep/draft-train" --out "$O/vocab$n.safetensors" --draft-vocab-size $n --json > "$O/vocab$n.log"
      done ;;
    original)
      prepare "$O/prep/draft-train-original" "$I/data/draft-train/data.jsonl" ;;
    regen)
      port=6171
      npx eaglet backend serve --target-model "$T" --device cpu --cpu-threads 1 --port $port --max-model-len 4096 > "$O/serve.log" 2>&1 &
      server=$!
      trap 'kill $server 2>/dev/null' EXIT
      for _ in $(seq 90); do curl -sf localhost:$port/v1/models > /dev/null && break; sleep 2; done
      for t in 0.7 1.0; do
        rm -rf "$O/regen-t$t"
        npx eaglet data regenerate "$I/data/draft-train/data.jsonl" --out "$O/regen-t$t" --endpoint http://127.0.0.1:$port/v1 \
          --concurrency 2 --max-tokens 48 --temperature $t --seed 0 --shard-size 100000 --json > "$O/regen-t$t.log"
      done
      kill $server; wait $server 2>/dev/null || true; trap - EXIT
      for t in 0.7 1.0; do
        prepare "$O/prep/draft-train-t$t" "$O"/regen-t$t/data_0-*.jsonl
      done ;;
    *) echo "unknown step $step (vocab, original, regen)" >&2; exit 2 ;;
  esac
done
