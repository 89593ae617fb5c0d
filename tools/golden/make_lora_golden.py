#!/usr/bin/env python3
"""Writes the LoRA training golden fixtures under src/test/resources/golden/lora/ with transformers + peft.

Run: /work/.venv-ref/bin/python tools/golden/make_lora_golden.py
     /work/.venv-ref/bin/python tools/golden/make_lora_golden.py --check-java-output DIR

The recipe's setup in miniature: a tiny tied GPT-2 (vocab 101, n_embd 32, 2 layers, dropout 0), peft
LoraConfig(r=4, lora_alpha=16, lora_dropout=0, target_modules=["c_attn"], fan_in_fan_out=True,
modules_to_save=["transformer.wte", "lm_head"]), trained 10 steps the way HF Trainer does: torch.optim.AdamW
(lr 1e-2, betas (0.9, 0.999), eps 1e-8) with HF's parameter groups (weight decay 0.01 except biases and LayerNorm
weights — none of the trainable tensors is one, so all decay), get_cosine_schedule_with_warmup(2 warm-up steps, 10),
clip_grad_norm_(1.0).

Files:
  base/                  config.json + model.safetensors of the base (save_pretrained)
  init_adapter.safetensors   the adapter before training (peft keys; lora_A from torch's kaiming init, lora_B zero)
  final_adapter/         adapter_config.json + adapter_model.safetensors after 10 steps (peft save_pretrained)
  steps.safetensors      input_ids I32 (10, B, T) — the batch of each step; eval_ids I32 (B, T)
  expected.json          per-step loss and grad norm (before clipping), the final eval loss, settings

--check-java-output DIR loads DIR (an adapter cpt4j wrote after the same 10 steps) with PeftModel.from_pretrained on
the base and prints its eval loss next to DIR/cpt4j_eval_loss.json's; exits 1 if they differ by more than 1e-4 rel.
"""
import json
import os
import shutil
import sys

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel, get_cosine_schedule_with_warmup

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "test", "resources", "golden", "lora")
V, C, L, NH, NPOS = 101, 32, 2, 4, 32
B, T, STEPS = 2, 16, 10
LR, WD, WARMUP, CLIP = 1e-2, 0.01, 2, 1.0


def eval_loss(model, ids):
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids, labels=ids).loss.item()


def check(java_dir):
    base = GPT2LMHeadModel.from_pretrained(os.path.join(ROOT, "base"))
    model = PeftModel.from_pretrained(base, java_dir)
    from safetensors.torch import load_file
    ids = load_file(os.path.join(ROOT, "steps.safetensors"))["eval_ids"].long()
    ours = eval_loss(model, ids)
    with open(os.path.join(java_dir, "cpt4j_eval_loss.json")) as f:
        reported = json.load(f)["eval_loss"]
    rel = abs(ours - reported) / abs(ours)
    print(f"peft loss of the cpt4j adapter: {ours:.7f}; cpt4j reported {reported:.7f}; rel diff {rel:.2e}")
    return 0 if rel <= 1e-4 else 1


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check-java-output":
        sys.exit(check(sys.argv[2]))
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=V, n_positions=NPOS, n_embd=C, n_layer=L, n_head=NH, resid_pdrop=0.0, embd_pdrop=0.0,
                     attn_pdrop=0.0, initializer_range=0.1, tie_word_embeddings=True)
    base = GPT2LMHeadModel(cfg).float()
    with torch.no_grad():
        for p in base.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    if os.path.isdir(ROOT):
        shutil.rmtree(ROOT)
    os.makedirs(ROOT)
    base.save_pretrained(os.path.join(ROOT, "base"), safe_serialization=True)
    gc = os.path.join(ROOT, "base", "generation_config.json")
    if os.path.exists(gc):
        os.remove(gc)

    lcfg = LoraConfig(r=4, lora_alpha=16, lora_dropout=0.0, target_modules=["c_attn"], fan_in_fan_out=True,
                      modules_to_save=["transformer.wte", "lm_head"], task_type="CAUSAL_LM")
    model = get_peft_model(base, lcfg)
    model.train()
    from peft import get_peft_model_state_dict
    init = {k: v.detach().clone().contiguous() for k, v in get_peft_model_state_dict(model).items()}
    save_file(init, os.path.join(ROOT, "init_adapter.safetensors"), metadata={"format": "pt"})

    g = torch.Generator().manual_seed(7)
    steps = torch.randint(0, V, (STEPS, B, T), generator=g)
    eval_ids = torch.randint(0, V, (B, T), generator=g)

    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in trainable if not (n.endswith("bias") or ".ln_" in n)]
    no_decay = [p for n, p in trainable if (n.endswith("bias") or ".ln_" in n)]
    assert not no_decay, [n for n, p in trainable]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.999), eps=1e-8)
    sched = get_cosine_schedule_with_warmup(opt, WARMUP, STEPS)
    losses, norms = [], []
    for s in range(STEPS):
        model.train()
        opt.zero_grad()
        loss = model(input_ids=steps[s], labels=steps[s]).loss
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_([p for _, p in trainable], CLIP)
        opt.step()
        sched.step()
        losses.append(loss.item())
        norms.append(norm.item())
    final_eval = eval_loss(model, eval_ids)
    model.save_pretrained(os.path.join(ROOT, "final_adapter"))
    for extra in ("README.md",):
        p = os.path.join(ROOT, "final_adapter", extra)
        if os.path.exists(p):
            os.remove(p)
    save_file({"input_ids": steps.to(torch.int32).contiguous(), "eval_ids": eval_ids.to(torch.int32).contiguous()},
              os.path.join(ROOT, "steps.safetensors"))
    sd = get_peft_model_state_dict(model)
    untied = not torch.equal(sd["base_model.model.transformer.wte.weight"], sd["base_model.model.lm_head.weight"])
    with open(os.path.join(ROOT, "expected.json"), "w") as f:
        json.dump({"losses": losses, "grad_norms": norms, "final_eval_loss": final_eval, "lr": LR, "weight_decay": WD,
                   "warmup_steps": WARMUP, "steps": STEPS, "batch": B, "block": T, "r": 4, "lora_alpha": 16,
                   "wte_lm_head_untied_after_training": untied,
                   "trainable": [n for n, _ in trainable]}, f, indent=1)
    print("losses", losses)
    print("trainable", [n for n, _ in trainable])
    print("untied after training:", untied, "final eval loss", final_eval)


if __name__ == "__main__":
    main()
