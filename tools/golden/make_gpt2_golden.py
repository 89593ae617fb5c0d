#!/usr/bin/env python3
"""Writes the GPT-2 golden fixtures under src/test/resources/golden/gpt2/<name>/ with transformers' GPT2LMHeadModel.

Run: /work/.venv-ref/bin/python tools/golden/make_gpt2_golden.py   (torch CPU, transformers; fp32, dropout 0)

Per config: model.safetensors + config.json (as save_pretrained writes them), expected.safetensors
(input_ids I32 (B, T), logits F32 (B, T, V), loss F32 (1), adamw_losses F32 (11): the loss before each of 10
torch.optim.AdamW steps and after the last one), grads.safetensors (the gradient of every named parameter of the
first forward/backward, HF names). Parameters are the HF init plus N(0, 0.05) noise so that biases and LayerNorm
parameters are not trivial.
"""
import json
import os
import shutil
import sys

import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "test", "resources", "golden", "gpt2")

CONFIGS = [
    # name, config kwargs, B, T
    ("tied_gelu_new_c36", dict(vocab_size=97, n_positions=16, n_embd=36, n_layer=2, n_head=3,
                                activation_function="gelu_new", tie_word_embeddings=True), 2, 13),
    ("untied_gelu_fast_c40", dict(vocab_size=151, n_positions=24, n_embd=40, n_layer=2, n_head=5, n_inner=72,
                                   activation_function="gelu_fast", tie_word_embeddings=False), 3, 17),
    ("tied_gelu_c24_invlayer", dict(vocab_size=64, n_positions=8, n_embd=24, n_layer=3, n_head=2, n_inner=40,
                                     activation_function="gelu", tie_word_embeddings=True,
                                     scale_attn_by_inverse_layer_idx=True), 3, 5),
]

LR, BETAS, EPS, WD, STEPS = 1e-3, (0.9, 0.999), 1e-8, 0.01, 10


def make(name, kw, B, T, seed):
    torch.manual_seed(seed)
    cfg = GPT2Config(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, initializer_range=0.1, **kw)
    cfg._attn_implementation = "eager"
    model = GPT2LMHeadModel(cfg).float()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.train()
    out_dir = os.path.join(ROOT, name)
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    model.save_pretrained(out_dir, safe_serialization=True)
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(out_dir, extra)):
            os.remove(os.path.join(out_dir, extra))

    ids = torch.randint(0, cfg.vocab_size, (B, T), generator=torch.Generator().manual_seed(seed + 1))
    out = model(input_ids=ids, labels=ids)
    out.loss.backward()
    grads = {n: p.grad.detach().clone().contiguous() for n, p in model.named_parameters()}
    logits = out.logits.detach().clone()
    loss = out.loss.detach().reshape(1).clone()

    model.zero_grad(set_to_none=True)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=BETAS, eps=EPS, weight_decay=WD)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad(set_to_none=True)
        l = model(input_ids=ids, labels=ids).loss
        losses.append(l.item())
        l.backward()
        opt.step()
    with torch.no_grad():
        losses.append(model(input_ids=ids, labels=ids).loss.item())

    save_file({"input_ids": ids.to(torch.int32).contiguous(), "logits": logits.contiguous(), "loss": loss,
               "adamw_losses": torch.tensor(losses, dtype=torch.float32)},
              os.path.join(out_dir, "expected.safetensors"))
    save_file(grads, os.path.join(out_dir, "grads.safetensors"))
    with open(os.path.join(out_dir, "golden.json"), "w") as f:
        json.dump({"batch": B, "time": T, "lr": LR, "betas": BETAS, "eps": EPS, "weight_decay": WD, "steps": STEPS,
                   "torch": torch.__version__, "loss": loss.item()}, f, indent=1)
    print(name, "loss", loss.item(), "losses", [round(x, 5) for x in losses], file=sys.stderr)


if __name__ == "__main__":
    for i, (name, kw, B, T) in enumerate(CONFIGS):
        make(name, kw, B, T, 1234 + 17 * i)
