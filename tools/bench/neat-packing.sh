#!/usr/bin/env bash
# --neat_packing against plain packing, cpt4j against itself on the same random ids (bench train --neat_packing D
# cuts every block into random documents of D tokens on average; attention then skips the key columns before each
# query's document). Alternates the two ROUNDS times (default 3) so that drift in machine load hits both alike, then
# prints one JSON line per run and the ratio of the medians (neat / plain tokens/s; the target is >= 0.95).
# Usage: tools/bench/neat-packing.sh [config.json] [block] [D]   (default: the seed's GPT-2 110M geometry, block 512, D 64)
#   BATCH=4 STEPS=3 WARM=2 THREADS=2 ROUNDS=3 tools/bench/neat-packing.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
CFG="${1:-tools/bench/seed-gpt2-110m.json}"; BLOCK="${2:-512}"; D="${3:-64}"
BATCH="${BATCH:-4}"; STEPS="${STEPS:-3}"; WARM="${WARM:-2}"; THREADS="${THREADS:-2}"; ROUNDS="${ROUNDS:-3}"
plain=(); neat=()
for i in $(seq "$ROUNDS"); do
  for mode in plain neat; do
    extra=(); [ $mode = neat ] && extra=(--neat_packing "$D")
    line=$(./cpt4j bench train --config "$CFG" --batch "$BATCH" --block "$BLOCK" --steps "$STEPS" --warmup "$WARM" \
      --threads "$THREADS" --json "${extra[@]}" 2>/dev/null | tail -n1)
    echo "{\"mode\":\"$mode\",\"round\":$i,${line#\{}"
    tps=$(sed 's/.*"tokens_per_s":\([0-9.]*\).*/\1/' <<<"$line")
    if [ $mode = plain ]; then plain+=("$tps"); else neat+=("$tps"); fi
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mp=$(median "${plain[@]}"); mn=$(median "${neat[@]}")
awk -v p="$mp" -v n="$mn" -v d="$D" -v b="$BLOCK" 'BEGIN {printf "{\"summary\":true,\"block\":%d,\"doc_tokens\":%d,\"plain_tokens_per_s\":%.2f,\"neat_tokens_per_s\":%.2f,\"ratio\":%.3f}\n", b, d, p, n, n/p}'
