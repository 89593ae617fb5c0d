#!/usr/bin/env python3
"""Writes the LoRA *training* golden fixtures of the LLaMA family under
src/test/resources/golden/peft_llama_train/<name>/, with transformers + peft on two of the base models
tools/golden/make_llama_golden.py wrote (src/test/resources/golden/llama/<name>/, read as they are, never rewritten).

Run: /work/venv-ref/bin/python tools/golden/make_peft_llama_train_golden.py
     (torch 2.13 CPU, transformers 5.18, peft 0.21; fp32, attn_implementation="eager"; a few seconds.)

Every case: peft LoraConfig(r=4, lora_alpha=8, lora_dropout=0, target_modules="all-linear" (the seven projections),
bias="none") with modules_to_save=["embed_tokens", "lm_head"] or trainable_token_indices, peft's own init (lora_A kaiming, lora_B zero), trained
10 steps the way HF Trainer does: torch.optim.AdamW (lr 5e-3, betas (0.9, 0.999), eps 1e-8) with HF's parameter
groups (weight decay 0.01 except biases and norm weights -- none of the trainable tensors is one, so all decay),
get_cosine_schedule_with_warmup(2 warm-up steps, 10), clip_grad_norm_(1.0). Batch 2 x 8, labels = input_ids.

Cases:
  llama_untied_llama3_bias   llama, untied head, biases on every projection (frozen: bias "none"), llama3 rope.
  qwen2_tied_yarn            qwen2, tied; modules_to_save makes two independent trainable copies of the tied tensor
                             (peft's default: the adapter unties them). config vocab_size 181, ids < 150: the rows
                             150..180 never appear in a batch (as Qwen pads its vocabulary past the tokenizer).
  llama_untied_tokens        the llama base, trainable_token_indices {"embed_tokens": [3, 7, 40, 120], "lm_head":
                             the same} (peft's form for an untied head), no modules_to_save.
  qwen2_tied_tokens          the qwen2 base, trainable_token_indices [3, 7, 40, 145, 170] (the tied head shares the
                             delta; 170 never appears as an input), no modules_to_save.

     /work/venv-ref/bin/python tools/golden/make_peft_llama_train_golden.py --check-java-output NAME DIR
     loads DIR (an adapter cpt4j wrote after the same 10 steps of case NAME; PeftLlamaTrainGoldenTest writes them
     under -Dcpt4j.peftLlamaTrainOut=DIR/NAME) with PeftModel.from_pretrained on the case's base and prints its eval
     loss next to DIR/cpt4j_eval_loss.json's; exits 1 if they differ by more than 1e-4 relative.

Files per case:
  init_adapter.safetensors   the adapter before training (peft keys; trainable tokens:
                             <module>.token_adapter.trainable_tokens_delta (n, C), the rows of the ids)
  final_adapter/             adapter_config.json + adapter_model.safetensors after 10 steps (peft save_pretrained)
  steps.safetensors          input_ids I32 (10, B, T): the batch of each step; eval_ids I32 (B, T)
  expected.json              per-step loss and global grad norm (before clipping), final eval loss, settings
"""
import json
import os
import shutil

import torch
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, get_cosine_schedule_with_warmup

HERE = os.path.dirname(os.path.abspath(__file__))
BASES = os.path.join(HERE, "..", "..", "src", "test", "resources", "golden", "llama")
ROOT = os.path.join(HERE, "..", "..", "src", "test", "resources", "golden", "peft_llama_train")
B, T, STEPS = 2, 8, 10
LR, WD, WARMUP, CLIP, R, ALPHA = 5e-3, 0.01, 2, 1.0, 4, 8
# name: (base, highest id + 1 drawn, seed, modules_to_save, trainable_token_indices)
TOKENS = [3, 7, 40, 120]
CASES = {
    "llama_untied_llama3_bias": ("llama_untied_llama3_bias", 131, 21, ["embed_tokens", "lm_head"], None),
    "qwen2_tied_yarn": ("qwen2_tied_yarn", 150, 22, ["embed_tokens", "lm_head"], None),
    "llama_untied_tokens": ("llama_untied_llama3_bias", 131, 23, None, {"embed_tokens": TOKENS, "lm_head": TOKENS}),
    "qwen2_tied_tokens": ("qwen2_tied_yarn", 150, 24, None, TOKENS + [170]),
}


def eval_loss(model, ids):
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids, labels=ids).loss.item()


def make(name, base_name, id_limit, seed, modules_to_save, token_indices):
    out = os.path.join(ROOT, name)
    os.makedirs(out)
    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(os.path.join(BASES, base_name), dtype=torch.float32,
                                                attn_implementation="eager")
    lcfg = LoraConfig(r=R, lora_alpha=ALPHA, lora_dropout=0.0, target_modules="all-linear",
                      modules_to_save=modules_to_save, trainable_token_indices=token_indices, bias="none",
                      task_type="CAUSAL_LM")
    model = get_peft_model(base, lcfg)
    model.train()
    init = {k: v.detach().clone().contiguous() for k, v in get_peft_model_state_dict(model).items()}
    save_file(init, os.path.join(out, "init_adapter.safetensors"), metadata={"format": "pt"})

    g = torch.Generator().manual_seed(seed + 100)
    steps = torch.randint(0, id_limit, (STEPS, B, T), generator=g)
    eval_ids = torch.randint(0, id_limit, (B, T), generator=g)

    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    def no_decay(n):
        return n.endswith("bias") or "norm" in n
    decay = [p for n, p in trainable if not no_decay(n)]
    nd = [p for n, p in trainable if no_decay(n)]
    assert not nd, [n for n, p in trainable if no_decay(n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": nd, "weight_decay": 0.0}],
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
    model.save_pretrained(os.path.join(out, "final_adapter"))
    readme = os.path.join(out, "final_adapter", "README.md")
    if os.path.exists(readme):
        os.remove(readme)
    save_file({"input_ids": steps.to(torch.int32).contiguous(), "eval_ids": eval_ids.to(torch.int32).contiguous()},
              os.path.join(out, "steps.safetensors"))
    sd = get_peft_model_state_dict(model)
    emb = sd.get("base_model.model.model.embed_tokens.weight")
    head = sd.get("base_model.model.lm_head.weight")
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump({"losses": losses, "grad_norms": norms, "final_eval_loss": final_eval, "lr": LR, "weight_decay": WD,
                   "warmup_steps": WARMUP, "steps": STEPS, "batch": B, "block": T, "r": R, "lora_alpha": ALPHA,
                   "id_limit": id_limit, "base": base_name, "modules_to_save": modules_to_save or [],
                   "trainable_token_indices": TOKENS + [170] if isinstance(token_indices, list) else (TOKENS if token_indices else None),
                   "embed_lm_head_differ_after_training": None if emb is None else not torch.equal(emb, head),
                   "trainable": [n for n, _ in trainable]}, f, indent=1)
    print(name, "losses", [round(x, 5) for x in losses])
    print(name, "grad norms", [round(x, 5) for x in norms], "final eval", final_eval)


def check(name, java_dir):
    from peft import PeftModel
    from safetensors.torch import load_file
    base = AutoModelForCausalLM.from_pretrained(os.path.join(BASES, CASES[name][0]), dtype=torch.float32,
                                                attn_implementation="eager")
    model = PeftModel.from_pretrained(base, java_dir)
    ids = load_file(os.path.join(ROOT, name, "steps.safetensors"))["eval_ids"].long()
    ours = eval_loss(model, ids)
    with open(os.path.join(java_dir, "cpt4j_eval_loss.json")) as f:
        reported = json.load(f)["eval_loss"]
    rel = abs(ours - reported) / abs(ours)
    print(f"{name}: peft loss of the cpt4j adapter {ours:.7f}; cpt4j reported {reported:.7f}; rel diff {rel:.2e}")
    return 0 if rel <= 1e-4 else 1


def main():
    import sys
    if len(sys.argv) == 4 and sys.argv[1] == "--check-java-output":
        sys.exit(check(sys.argv[2], sys.argv[3]))
    if os.path.isdir(ROOT):
        shutil.rmtree(ROOT)
    for name, args in CASES.items():
        make(name, *args)


if __name__ == "__main__":
    main()
