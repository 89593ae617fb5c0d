#!/usr/bin/env python3
"""The Python-reference side of `cpt4j bench train`: transformers' causal LM of a config.json's family (GPT2LMHeadModel,
LlamaForCausalLM, …) on torch CPU, random weights of the config, random ids, whole training steps (forward, backward, clip 1.0, torch.optim.AdamW), same FLOP count.

With --lora the trainable set is the family's: see --help (cpt4j's side: `bench train … --trainable all-linear
--modules_to_save embed_tokens,lm_head` for the LLaMA family).

Run: /work/.venv-ref/bin/python tools/bench/hf_train_bench.py --config CONFIG_JSON --batch 4 --block 128 \
         --steps 5 --warmup 2 [--threads 2] [--bf16] [--gradient_checkpointing] [--lora] [--json]
--json prints {"tokens_per_s", "peak_rss_mb", "gflops", "trainable_params"} on the last line (peak RSS from /proc/self/status VmHWM).
"""
import argparse
import json
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel


def peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--block", type=int, required=True)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16", action="store_true", help="torch.autocast(cpu, bfloat16) around forward")
    ap.add_argument("--gradient_checkpointing", action="store_true")
    ap.add_argument("--lora", action="store_true",
                    help="LoRA via peft: r 8, alpha 32, dropout 0.05; GPT-2: the seed's c_attn with transformer.wte + "
                         "lm_head in modules_to_save; LLaMA family: the seven projections (q/k/v/o, gate/up/down) with "
                         "embed_tokens + lm_head in modules_to_save (two untied copies on a tied model, as peft makes)")
    ap.add_argument("--attn", default="sdpa", help="attention implementation of non-GPT-2 models (sdpa, eager)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    with open(a.config) as f:
        raw = json.load(f)
    if raw.get("model_type", "gpt2") == "gpt2":
        cfg = GPT2Config(**raw)
        model = GPT2LMHeadModel(cfg).float()
    else:  # any other family: its config class and causal-LM class (eager attention, as cpt4j computes it)
        from transformers import AutoModelForCausalLM, CONFIG_MAPPING
        cfg = CONFIG_MAPPING[raw["model_type"]](**{k: v for k, v in raw.items() if k != "model_type"})
        cfg._attn_implementation = a.attn
        model = AutoModelForCausalLM.from_config(cfg).float()
    if a.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if a.lora:
        from peft import LoraConfig, get_peft_model
        if raw.get("model_type", "gpt2") == "gpt2":
            targets, saved = ["c_attn"], ["transformer.wte", "lm_head"]
        else:
            targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
            saved = ["embed_tokens", "lm_head"]
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=32, lora_dropout=0.05, target_modules=targets,
                                                 modules_to_save=saved, task_type="CAUSAL_LM"))
        if a.gradient_checkpointing:
            model.enable_input_require_grads()
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
    ids = torch.randint(0, cfg.vocab_size, (a.batch, a.block))
    t0 = None
    for s in range(a.warmup + a.steps):
        if s == a.warmup:
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if not a.json:
            print(f"step {s + 1} loss {loss.item():.4f}")
    secs = time.perf_counter() - t0
    tokens = a.batch * a.block * a.steps
    P = sum(p.numel() for p in model.parameters())
    layers = getattr(cfg, "n_layer", None) or cfg.num_hidden_layers
    width = getattr(cfg, "n_embd", None) or (cfg.num_attention_heads * getattr(cfg, "head_dim", cfg.hidden_size // cfg.num_attention_heads))
    flops = (6.0 * P + 12.0 * layers * width * a.block) * tokens
    res = {"tokens_per_s": tokens / secs, "peak_rss_mb": peak_rss_mb(), "gflops": flops / secs / 1e9,
           "trainable_params": sum(p.numel() for p in params)}
    print(json.dumps(res) if a.json else res)


if __name__ == "__main__":
    main()
