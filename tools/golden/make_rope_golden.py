#!/usr/bin/env python3
"""Writes src/test/resources/golden/rope/rope.json: transformers' RoPE inverse frequencies, attention scaling and
cos/sin tables for each rope type cpt4j supports (default, linear, dynamic, yarn, llama3), plus one
apply_rotary_pos_emb result, all from LlamaRotaryEmbedding / apply_rotary_pos_emb of the installed transformers.
LlamaKernelsTest reads it (its tests need no Python). Run from the repository root:

    /work/.venv-ref/bin/python tools/golden/make_rope_golden.py

Seeded; the file is a few hundred KB at most.
"""
import json
import os

import torch
import transformers
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

OUT = os.path.join("src", "test", "resources", "golden", "rope", "rope.json")

CASES = [
    # name, head_dim, max_position_embeddings, rope_parameters, positions to keep, seq_len (max position + 1)
    ("default", 64, 2048, {"rope_type": "default", "rope_theta": 10000.0}, [0, 1, 2, 3, 17, 38, 39], 40),
    ("linear", 32, 2048, {"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.5}, [0, 1, 2, 3, 17, 38, 39], 40),
    ("dynamic_short", 64, 2048, {"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0}, [0, 1, 2, 3, 17, 38, 39], 40),
    ("dynamic_long", 64, 2048, {"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0}, [0, 1, 17, 2999], 3000),
    ("yarn_qwen", 128, 131072, {"rope_type": "yarn", "rope_theta": 1000000.0, "factor": 4.0,
                                "original_max_position_embeddings": 32768}, [0, 1, 17, 39], 40),
    ("yarn_mscale", 64, 16384, {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                                "original_max_position_embeddings": 4096, "mscale": 0.707, "mscale_all_dim": 1.0,
                                "beta_fast": 24.0, "beta_slow": 2.0, "truncate": False}, [0, 1, 17, 39], 40),
    ("llama3", 64, 131072, {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0, "low_freq_factor": 1.0,
                            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}, [0, 1, 17, 39], 40),
]


def main():
    cases = []
    for name, hd, max_pos, params, keep, seq_len in CASES:
        nh = 2
        cfg = LlamaConfig(hidden_size=hd * nh, num_attention_heads=nh, num_key_value_heads=nh, head_dim=hd,
                          max_position_embeddings=max_pos, rope_parameters=dict(params))
        emb = LlamaRotaryEmbedding(cfg)
        x = torch.zeros(1, seq_len, hd)
        pos = torch.arange(seq_len)[None, :]
        cos, sin = emb(x, pos)                      # (1, seq_len, hd), the halves identical
        inv = emb.inv_freq.float()
        rows = keep
        half = hd // 2
        cases.append({
            "name": name, "head_dim": hd, "max_position_embeddings": max_pos, "rope_parameters": params,
            "seq_len": seq_len, "attention_scaling": float(emb.attention_scaling),
            "inv_freq": [float(v) for v in inv.tolist()],
            "positions": rows,
            "cos": [float(v) for r in rows for v in cos[0, r, :half].tolist()],
            "sin": [float(v) for r in rows for v in sin[0, r, :half].tolist()],
        })
    # apply_rotary_pos_emb on a small q: (B, NH, T, hd) in torch, (B·T, NH·hd) in cpt4j
    g = torch.Generator().manual_seed(0)
    B, NH, T, hd = 2, 3, 5, 64
    cfg = LlamaConfig(hidden_size=hd * NH, num_attention_heads=NH, head_dim=hd, max_position_embeddings=2048,
                      rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    emb = LlamaRotaryEmbedding(cfg)
    q = torch.randn(B, NH, T, hd, generator=g)
    cos, sin = emb(q, torch.arange(T)[None, :].expand(B, T))
    q_embed, _ = apply_rotary_pos_emb(q, q, cos, sin)
    apply = {"B": B, "NH": NH, "T": T, "head_dim": hd,
             "q": q.transpose(1, 2).reshape(-1).tolist(), "q_embed": q_embed.transpose(1, 2).reshape(-1).tolist(),
             "cos": cos[0, :, : hd // 2].reshape(-1).tolist(), "sin": sin[0, :, : hd // 2].reshape(-1).tolist()}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"transformers": transformers.__version__, "torch": torch.__version__, "cases": cases,
                   "apply": apply}, f)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
