#!/usr/bin/env python3
"""transformers' side of `cpt4j bench generate`: new tokens per second of model.generate on the seed's geometry.

GPT-2 12 x 768, 12 heads, gelu_fast, vocab 21133, random init (HF's), fp32, KV cache on, 2 threads by default;
a random 32-token prompt, 128 new tokens for each of 5 sequences, sampling with top-p 0.9 (and transformers' default
top-k 50, which cpt4j's bench uses too). No early stop. The timed call includes the prefill, as cpt4j's does;
one short warm-up call comes first.

Run: /work/.venv-ref/bin/python tools/bench/generate_python.py [--threads 2] [--json]
"""
import argparse
import json
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--num-return-sequences", type=int, default=5)
    ap.add_argument("--top-p", type=float, default=0.9)
    ap.add_argument("--top-k", type=int, default=50)
    ap.add_argument("--vocab-size", type=int, default=21133)
    ap.add_argument("--n-layer", type=int, default=12)
    ap.add_argument("--n-embd", type=int, default=768)
    ap.add_argument("--n-head", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", help="a config.json of any family (overrides the GPT-2 geometry flags)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    if a.config:
        from transformers import AutoModelForCausalLM, CONFIG_MAPPING
        with open(a.config) as f:
            raw = json.load(f)
        raw.update(bos_token_id=None, eos_token_id=None)
        cfg = CONFIG_MAPPING[raw["model_type"]](**{k: v for k, v in raw.items() if k != "model_type"})
        model = AutoModelForCausalLM.from_config(cfg).eval().float()
        a.vocab_size = cfg.vocab_size
    else:
        cfg = GPT2Config(vocab_size=a.vocab_size, n_positions=1024, n_embd=a.n_embd, n_layer=a.n_layer, n_head=a.n_head,
                         n_inner=4 * a.n_embd, activation_function="gelu_fast", use_cache=True,
                         bos_token_id=None, eos_token_id=None)
        model = GPT2LMHeadModel(cfg).eval().float()
    model.generation_config.eos_token_id = None  # never stop early: every sequence makes max_new_tokens
    prompt = torch.randint(0, a.vocab_size, (1, a.prompt_tokens))
    kw = dict(do_sample=True, top_p=a.top_p, top_k=a.top_k, num_return_sequences=a.num_return_sequences,
              use_cache=True, pad_token_id=0)
    with torch.inference_mode():
        model.generate(prompt, max_new_tokens=4, min_new_tokens=4, **kw)  # warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        out = model.generate(prompt, max_new_tokens=a.max_new_tokens, min_new_tokens=a.max_new_tokens, **kw)
        s, cpu = time.perf_counter() - t0, time.process_time() - c0
    new_tokens = (out.shape[1] - a.prompt_tokens) * out.shape[0]
    tps = new_tokens / s
    if a.json:
        print(json.dumps({"tokens_per_s": tps, "new_tokens": new_tokens, "seconds": s, "cpu_seconds": cpu,
                          "threads": a.threads,
                          "torch": torch.__version__}))
    else:
        print(f"transformers generate: {tps:.1f} new tokens/s ({new_tokens} tokens in {s:.2f} s, {cpu:.2f} s CPU, "
              f"{a.threads} threads, torch {torch.__version__})")


if __name__ == "__main__":
    main()
