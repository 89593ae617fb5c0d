#!/usr/bin/env python3
"""transformers' side of `cpt4j bench load`: a (large) checkpoint loaded with its weights kept in bf16
(`dtype=torch.bfloat16`, so torch also computes in bf16 — cpt4j widens bf16 weights to fp32 instead), the loss of one
random 128-token block, then greedy decoding after a 32-token prompt; reports times and peak RSS (VmHWM).

Run: /work/venv-ref/bin/python tools/bench/load_python.py MODEL_DIR [--block 128] [--max-new-tokens 8] [--threads 2]
"""
import argparse
import json
import time

import torch
from transformers import AutoModelForCausalLM


def peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--block", type=int, default=128)
ap.add_argument("--max-new-tokens", type=int, default=8)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
torch.set_num_threads(a.threads)
t0 = time.perf_counter()
model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.bfloat16).eval()
load = time.perf_counter() - t0
ids = torch.randint(0, model.config.vocab_size, (1, a.block), generator=torch.Generator().manual_seed(42))
with torch.inference_mode():
    t1 = time.perf_counter()
    loss = model(input_ids=ids, labels=ids).loss.item()
    ev = time.perf_counter() - t1
    model.generation_config.eos_token_id = None
    t2 = time.perf_counter()
    model.generate(ids[:, :32], do_sample=False, max_new_tokens=a.max_new_tokens, min_new_tokens=a.max_new_tokens,
                   pad_token_id=0)
    gen = time.perf_counter() - t2
print(json.dumps({"load_s": load, "loss": loss, "eval_s": ev, "decode_tokens_per_s": a.max_new_tokens / gen,
                  "peak_rss_mb": peak_rss_mb(), "torch": torch.__version__}))
