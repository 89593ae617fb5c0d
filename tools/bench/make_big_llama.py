#!/usr/bin/env python3
"""Writes a random LLaMA with LLaMA-3-8B's width and a few layers, in bf16 safetensors, as transformers saves it
(sharded, model.safetensors.index.json): the input of `cpt4j bench load` (issue: no 2^31-element limit).

Run: /work/venv-ref/bin/python tools/bench/make_big_llama.py OUT_DIR [LAYERS]   (default 6 layers → 2.36 B parameters,
~4.7 GB on disk). Weights are N(0, 0.02) as LlamaPreTrainedModel initialises them, drawn directly in bf16.
"""
import sys
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

out = sys.argv[1]
layers = int(sys.argv[2]) if len(sys.argv) > 2 else 6
cfg = LlamaConfig(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=layers,
                  num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192, rms_norm_eps=1e-5,
                  rope_theta=500000.0, rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                     "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
                  tie_word_embeddings=False, bos_token_id=128000, eos_token_id=[128001, 128009])
t = time.time()
torch.manual_seed(0)
torch.set_default_dtype(torch.bfloat16)
model = LlamaForCausalLM(cfg)
n = sum(p.numel() for p in model.parameters())
print(f"{n:,} parameters, built in {time.time() - t:.0f} s", file=sys.stderr)
model.save_pretrained(out, max_shard_size="2GB")
print(f"saved to {out} in {time.time() - t:.0f} s", file=sys.stderr)
