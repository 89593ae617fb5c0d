#!/usr/bin/env python3
"""Writes the neat-packing golden fixtures under src/test/resources/golden/packing/<name>/: the loss and every
gradient of a batch of packed blocks, computed by running EACH DOCUMENT PIECE SEPARATELY through transformers.

Run: /work/venv-ref/bin/python tools/golden/make_packing_golden.py   (torch CPU, transformers 5.x; fp32, eager
     attention, dropout 0; about a second)

The models are the existing tiny random fixtures (their weights are not copied: the test loads them from the
directory named in golden.json):
  gpt2_untied   golden/gpt2/untied_gelu_fast_c40        (GPT2LMHeadModel, learned positions), B 3, T 24
  llama_bias    golden/llama/llama_untied_llama3_bias   (LlamaForCausalLM, llama3 RoPE, biases), B 2, T 31
  mistral_swa   golden/llama/mistral_sliding_window     (MistralForCausalLM, sliding window 6), B 2, T 29

Per case:
  expected.safetensors  input_ids I32 (B, T); doc_starts I32 (B, T): for every token the index in its row where its
                        document piece begins (the packed layout cpt4j's --neat_packing feeds the model); loss F32 (1).
  grads.safetensors     F32 gradient of every named parameter of that loss (HF names).
  golden.json           model (directory relative to golden/), batch, time, pieces (lengths per row), trained
                        (positions with a target), loss, torch, transformers.

Each row is cut into pieces of random lengths 1..9 (some of length 1, which have no target). For a piece p of
n_p >= 2 tokens transformers gives loss_p = model(ids_p, labels=ids_p).loss, the mean over its n_p - 1 next-token
predictions (positions restart at 0, it sees nothing of the other pieces). The packed loss is the mean over ALL
trained positions of the batch:  loss = sum_p loss_p * (n_p - 1) / sum_p (n_p - 1)  -- no position predicts the
first token of the next piece. The gradients are those of that loss (one backward through every piece).
"""
import json
import os
import random

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "test", "resources", "golden")
OUT = os.path.join(GOLDEN, "packing")

CASES = [
    ("gpt2_untied", "gpt2/untied_gelu_fast_c40", 3, 24, 11),
    ("llama_bias", "llama/llama_untied_llama3_bias", 2, 31, 12),
    ("mistral_swa", "llama/mistral_sliding_window", 2, 29, 13),
]


def pieces_of(rng, T):
    out, left = [], T
    while left > 0:
        n = min(left, rng.choice([1, 2, 3, 4, 5, 6, 7, 9]))
        out.append(n)
        left -= n
    return out


def make(name, model_dir, B, T, seed):
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = AutoModelForCausalLM.from_pretrained(os.path.join(GOLDEN, model_dir), dtype=torch.float32,
                                                 attn_implementation="eager")
    model.train(False)  # dropout is 0 in these configs anyway
    V = model.config.vocab_size
    ids = torch.randint(0, V, (B, T))
    starts = torch.zeros(B, T, dtype=torch.int32)
    rows = []
    total, trained = None, 0
    for b in range(B):
        lens = pieces_of(rng, T)
        if b == 0:
            lens = [T]  # one row that is a single document
        rows.append(lens)
        s = 0
        for n in lens:
            starts[b, s:s + n] = s
            if n >= 2:
                piece = ids[b:b + 1, s:s + n]
                out = model(input_ids=piece, labels=piece)
                part = out.loss * (n - 1)
                total = part if total is None else total + part
                trained += n - 1
            s += n
    loss = total / trained
    model.zero_grad()
    loss.backward()
    grads = {n: p.grad.detach().clone().contiguous() for n, p in model.named_parameters() if p.grad is not None}
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    save_file({"input_ids": ids.to(torch.int32).contiguous(), "doc_starts": starts.contiguous(),
               "loss": loss.detach().reshape(1).contiguous()}, os.path.join(d, "expected.safetensors"))
    save_file(grads, os.path.join(d, "grads.safetensors"))
    import transformers
    with open(os.path.join(d, "golden.json"), "w") as f:
        json.dump({"model": model_dir, "batch": B, "time": T, "pieces": rows, "trained": trained,
                   "loss": loss.item(), "torch": torch.__version__, "transformers": transformers.__version__}, f, indent=1)
    print(f"{name}: loss {loss.item():.6f} over {trained} trained positions, pieces {rows}")


if __name__ == "__main__":
    for c in CASES:
        make(*c)
