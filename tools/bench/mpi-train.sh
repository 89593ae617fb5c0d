#!/usr/bin/env bash
# Data parallelism on one machine: `cpt4j train` on the seed GPT-2 geometry (tools/bench/seed-gpt2-110m.json,
# 124 M parameters with its 21,128-token vocabulary; trained from random init: the numbers are about time, not
# loss), global batch 4 × 128 tokens, as
#   one process × 2 threads, batch 4            against
#   mpirun -np 2, 1 thread per rank, batch 2    (gradients all-reduced over loopback TCP, ZeRO-1 AdamW)
# for full fine-tuning and for the blog's LoRA recipe. Prints one JSON line per run: median tokens/s over the steps
# after the first WARM, the mean step time, and the peak RSS per rank. Needs Open MPI (tools/install-mpi.sh).
# Usage: tools/bench/mpi-train.sh [full|lora|all] > results.jsonl      STEPS (default 8) and WARM (default 3) override;
# each run's log is kept in ${LOGS:-target/bench-mpi}/<case>-<layout>.log.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
what="${1:-all}"
STEPS="${STEPS:-8}"; WARM="${WARM:-3}"
command -v mpirun >/dev/null || { echo "mpi-train: mpirun not found; run tools/install-mpi.sh" >&2; exit 1; }
./cpt4j --version >/dev/null   # builds the jar once, outside the timings
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
LOGS="${LOGS:-target/bench-mpi}"; mkdir -p "$LOGS"
mkdir -p "$tmp/data"
for i in 1 2 3 4; do cat src/main/resources/corpus/*.txt; done > "$tmp/data/corpus.txt"
lora=(--lora_rank 8 --lora_alpha 32 --trainable c_attn --modules_to_save transformer.wte,lm_head --lora_dropout 0.05)
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 --mca btl self,tcp --mca btl_tcp_if_include lo
     --mca oob_tcp_if_include lo)
common() {  # common out threads batch
  echo --do_train --config_name tools/bench/seed-gpt2-110m.json --tokenizer_name_or_path models/cpt4j-poetry-base \
    --dataset_dir "$tmp/data" --data_cache_dir "$tmp/cache" --validation_split_percentage 0.01 --block_size 128 \
    --per_device_train_batch_size "$3" --max_steps "$STEPS" --learning_rate 1e-4 --logging_steps 1 --save_steps 0 \
    --save_total_limit 0 --seed 42 --threads "$2" --output_dir "$1" --overwrite_output_dir
}
report() {  # report case layout out log
  python3 - "$1" "$2" "$3/metrics.jsonl" "$4" "$WARM" <<'PY'
import json, re, statistics, sys
case, layout, metrics, log, warm = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
rows = [json.loads(l) for l in open(metrics) if '"loss"' in l]
tps = [r["tokens_per_s"] for r in rows if r["step"] > warm]
text = open(log, encoding="utf-8", errors="replace").read()
rss = re.findall(r"peak memory \(VmHWM\) per rank: ([\d, ]+) MiB", text) or re.findall(r"peak memory \(VmHWM\) (\d+) MiB", text)
print(json.dumps({"case": case, "layout": layout, "tokens_per_s": statistics.median(tps),
                  "step_s": 512 / statistics.median(tps), "steps_timed": len(tps),
                  "peak_rss_mib_per_rank": rss[-1] if rss else None}))
PY
}
run_case() {  # run_case case [train flags...]
  local c="$1"; shift
  local one="$LOGS/$c-1x2.log" two="$LOGS/$c-2x1.log"
  ./cpt4j train $(common "$tmp/one" 2 4) "$@" >"$one" 2>&1 </dev/null || { echo "mpi-train: failed, see $one" >&2; exit 1; }
  report "$c" "1 rank x 2 threads, batch 4" "$tmp/one" "$one"
  "${mpi[@]}" ./cpt4j train $(common "$tmp/two" 1 2) "$@" >"$two" 2>&1 </dev/null || { echo "mpi-train: failed, see $two" >&2; exit 1; }
  report "$c" "2 ranks x 1 thread, batch 2 each" "$tmp/two" "$two"
}
if [ "$what" = full ] || [ "$what" = all ]; then run_case full-fp32; fi
if [ "$what" = lora ] || [ "$what" = all ]; then run_case lora "${lora[@]}"; fi
