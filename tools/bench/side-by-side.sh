#!/usr/bin/env bash
# Side-by-side benchmarks of cpt4j and the Python reference (transformers/peft on torch CPU), run back to back on
# the same machine, 2 threads each. Needs the reference venv (REFERENCE.md):
#   python3 -m venv .venv-ref && .venv-ref/bin/pip install torch transformers peft safetensors tokenizers datasets
# Usage: tools/bench/side-by-side.sh [train|lora|generate|llama|llama-lora|all] > results.jsonl   (each line: one JSON result)
# llama: the SmolLM2-135M geometry (tools/bench/smollm2-135m.json): full fine-tuning against transformers eager and
# sdpa attention, and generation. llama-lora: the same geometry with LoRA r 8 / alpha 32 on all seven projections,
# embed_tokens and lm_head trained (peft's modules_to_save): fp32; transformers under bf16 autocast against cpt4j with
# the frozen base stored in bf16 (--base_dtype bf16); gradient checkpointing on both sides.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
PY="${CPT4J_PY:-$ROOT/.venv-ref/bin/python}"
[ -x "$PY" ] || PY=/work/.venv-ref/bin/python
[ -x "$PY" ] || PY=/work/venv-ref/bin/python
[ -x "$PY" ] || { echo "side-by-side: no Python reference venv (set CPT4J_PY)" >&2; exit 1; }
CFG=tools/bench/seed-gpt2-110m.json
STEPS="${STEPS:-5}"; WARM="${WARM:-3}"
what="${1:-all}"
lora=(--lora_rank 8 --lora_alpha 32 --trainable c_attn --modules_to_save transformer.wte,lm_head --lora_dropout 0.05)
tag() { sed "s/^{/{\"case\":\"$1\",\"impl\":\"$2\",/"; }
run_train() {  # run_train case [cpt4j flags...] -- [python flags...]   (CFG may be overridden per call)
  local c="$1"; shift
  local jf=() pf=() side=j
  for a in "$@"; do if [ "$a" = "--" ]; then side=p; elif [ $side = j ]; then jf+=("$a"); else pf+=("$a"); fi; done
  ./cpt4j bench train --config $CFG --batch 4 --block 128 --steps "$STEPS" --warmup "$WARM" --threads 2 --json "${jf[@]}" 2>/dev/null | tail -n1 | tag "$c" cpt4j
  "$PY" tools/bench/hf_train_bench.py --config $CFG --batch 4 --block 128 --steps "$STEPS" --warmup "$WARM" --threads 2 --json "${pf[@]}" 2>/dev/null | tail -n1 | tag "$c" transformers
}
if [ "$what" = train ] || [ "$what" = all ]; then
  run_train full-fp32 --
  run_train full-bf16-autocast -- --bf16
fi
if [ "$what" = lora ] || [ "$what" = all ]; then
  run_train lora "${lora[@]}" -- --lora
  run_train lora-bf16-autocast "${lora[@]}" -- --lora --bf16
  run_train lora-ckpt "${lora[@]}" --gradient_checkpointing -- --lora --gradient_checkpointing
fi
if [ "$what" = generate ] || [ "$what" = all ]; then
  ./cpt4j bench generate --config $CFG --prompt-tokens 32 --max-new-tokens 128 --num-return-sequences 5 --top-p 0.9 --threads 2 --json 2>/dev/null | tail -n1 | tag generate cpt4j
  "$PY" tools/bench/generate_python.py --threads 2 --json 2>/dev/null | tail -n1 | tag generate transformers
fi
if [ "$what" = llama-lora ] || [ "$what" = all ]; then
  CFG=tools/bench/smollm2-135m.json
  llora=(--lora_rank 8 --lora_alpha 32 --lora_dropout 0.05 --trainable all-linear --modules_to_save embed_tokens,lm_head)
  run_train smollm2-lora-fp32 "${llora[@]}" -- --lora --attn eager
  run_train smollm2-lora-bf16 "${llora[@]}" --base_dtype bf16 -- --lora --attn eager --bf16   # cpt4j: bf16-stored base, fp32 math
  run_train smollm2-lora-ckpt "${llora[@]}" --gradient_checkpointing -- --lora --attn eager --gradient_checkpointing
  CFG=tools/bench/seed-gpt2-110m.json
fi
if [ "$what" = llama ] || [ "$what" = all ]; then
  CFG=tools/bench/smollm2-135m.json
  run_train smollm2-full-fp32-eager -- --attn eager
  "$PY" tools/bench/hf_train_bench.py --config $CFG --batch 4 --block 128 --steps "$STEPS" --warmup "$WARM" --threads 2 --json --attn sdpa 2>/dev/null | tail -n1 | tag smollm2-full-fp32-sdpa transformers
  ./cpt4j bench generate --config $CFG --prompt-tokens 32 --max-new-tokens 128 --num-return-sequences 5 --top-p 0.9 --threads 2 --json 2>/dev/null | tail -n1 | tag smollm2-generate cpt4j
  "$PY" tools/bench/generate_python.py --config $CFG --threads 2 --json 2>/dev/null | tail -n1 | tag smollm2-generate transformers
fi
