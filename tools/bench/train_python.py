"""Python reference for `cpt4j bench train`: transformers (+ peft) training steps on torch CPU.

Same protocol as cpt4j's bench: random weights of the given config, random ids, whole training steps (forward,
backward, clip to 1.0, AdamW). Prints one JSON line: tokens_per_s, peak_rss_mb.

  python tools/bench/train_python.py --config CONFIG_JSON --batch 4 --block 128 --steps 10 --warmup 2 \
      [--bf16] [--lora] [--gradient_checkpointing] [--threads 2]
"""
import argparse, json, resource, time

import torch
from transformers import GPT2Config, GPT2LMHeadModel


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast (torch.autocast cpu)")
    ap.add_argument("--lora", action="store_true", help="the seed's LoRA: r 8, alpha 32, c_attn, wte+lm_head saved")
    ap.add_argument("--gradient_checkpointing", action="store_true")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = GPT2Config.from_json_file(a.config)
    cfg.attn_pdrop = cfg.embd_pdrop = cfg.resid_pdrop = 0.0
    model = GPT2LMHeadModel(cfg)
    if a.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    if a.lora:
        from peft import LoraConfig, get_peft_model
        lc = LoraConfig(r=8, lora_alpha=32, lora_dropout=0.05, target_modules=["c_attn"],
                        modules_to_save=["transformer.wte", "lm_head"], task_type="CAUSAL_LM")
        model = get_peft_model(model, lc)
        if a.gradient_checkpointing:
            model.enable_input_require_grads()
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
    ids = torch.randint(0, cfg.vocab_size, (a.batch, a.block))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = time.perf_counter() - t0
    tps = a.batch * a.block * a.steps / dt
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"impl": "transformers" + ("+peft" if a.lora else ""), "bf16": a.bf16,
                      "gradient_checkpointing": a.gradient_checkpointing,
                      "tokens_per_s": tps, "peak_rss_mb": rss, "threads": a.threads}))


if __name__ == "__main__":
    main()
