#!/usr/bin/env python3
"""Golden fixtures for dev.cpt4j.generate, made with transformers (the reference for generate semantics).

Writes under src/test/resources/golden/generate/:
  processors.json   transformers' logits processors/warpers applied directly to fixed logits (exact filtered scores)
  pipeline.json     model.generate(do_sample=True, output_logits, output_scores): per step the raw logits, the
                    processed scores and the ids so far, so the processor chain (order included) can be replayed
  activations.json  every GPT-2 activation_function of transformers' ACT2FN on fixed inputs
  tiny_tied/, tiny_untied/   two tiny random GPT-2s (model.safetensors + config.json) and greedy.json: transformers'
                    greedy generate ids (>= 64 new tokens, eos suppressed by min_new_tokens) and first-step logits

Run: /work/.venv-ref/bin/python tools/golden/make_generate_golden.py   (deterministic; CPU; a few seconds)
"""
import json
import math
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.activations import ACT2FN
from transformers.generation.logits_process import (
    MinNewTokensLengthLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "src", "test", "resources", "golden", "generate")
torch.set_num_threads(1)


def rows(t):
    """A float tensor as nested lists; -inf (a filtered token) becomes null so the JSON stays strict."""
    return [[None if math.isinf(v) and v < 0 else v for v in r] for r in t.tolist()]


def write_json(name, obj):
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        json.dump(obj, f, allow_nan=False, separators=(",", ":"))


def processors_cases():
    g = torch.Generator().manual_seed(7)
    V = 50
    logits = (torch.randn(3, V, generator=g) * 2.5).float()
    # distinct sharp shapes: row 1 has a dominant token, row 2 is flat-ish
    logits[1, 17] += 8.0
    logits[2] *= 0.2
    input_ids = torch.tensor([[3, 5, 5, 9, 17, 40], [17, 17, 2, 0, 1, 49], [7, 8, 9, 10, 11, 12]])
    specs = [
        ("repetition_penalty_1.3", [RepetitionPenaltyLogitsProcessor(1.3)]),
        ("repetition_penalty_0.7", [RepetitionPenaltyLogitsProcessor(0.7)]),
        ("min_new_tokens", [MinNewTokensLengthLogitsProcessor(4, 3, torch.tensor([9, 40]))]),
        ("temperature_0.7", [TemperatureLogitsWarper(0.7)]),
        ("temperature_1.6", [TemperatureLogitsWarper(1.6)]),
        ("top_k_1", [TopKLogitsWarper(1)]),
        ("top_k_5", [TopKLogitsWarper(5)]),
        ("top_k_50", [TopKLogitsWarper(50)]),
        ("top_p_0.9", [TopPLogitsWarper(0.9)]),
        ("top_p_0.5", [TopPLogitsWarper(0.5)]),
        ("top_p_0.1", [TopPLogitsWarper(0.1)]),
        ("top_p_0.999", [TopPLogitsWarper(0.999)]),
        ("chain", [RepetitionPenaltyLogitsProcessor(1.2), MinNewTokensLengthLogitsProcessor(4, 3, torch.tensor([9])),
                   TemperatureLogitsWarper(0.8), TopKLogitsWarper(12), TopPLogitsWarper(0.85)]),
    ]
    cases = []
    for name, procs in specs:
        s = logits.clone()
        for p in procs:
            s = p(input_ids, s)
        cases.append({"name": name, "scores": rows(s)})
    return {"vocab": V, "prompt_length": 4, "input_ids": input_ids.tolist(), "logits": rows(logits), "cases": cases}


def tiny_model(tied, activation, seed):
    cfg = GPT2Config(vocab_size=97, n_positions=128, n_embd=32, n_layer=2, n_head=4, n_inner=48,
                     activation_function=activation, tie_word_embeddings=tied,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=3)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(cfg).eval()
    # Larger weights than the 0.02 default so greedy choices are well separated (no near-ties between backends).
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name.endswith("ln_f.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))
    return model


def save_model(model, d):
    os.makedirs(d, exist_ok=True)
    sd = {k: v.contiguous() for k, v in model.state_dict().items() if not k.endswith(".attn.bias")
          and not k.endswith(".attn.masked_bias")}
    if model.config.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    model.config.to_json_file(os.path.join(d, "config.json"))


def greedy_case(model, prompt, new_tokens, repetition_penalty):
    ids = torch.tensor([prompt])
    with torch.no_grad():
        out = model.generate(ids, do_sample=False, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                             eos_token_id=3, pad_token_id=0, repetition_penalty=repetition_penalty,
                             output_logits=True, output_scores=True, return_dict_in_generate=True)
    gen = out.sequences[0, len(prompt):].tolist()
    # smallest gap between the best and second-best processed score over all steps: guards against near-ties
    margin = min(float((s[0].topk(2).values[0] - s[0].topk(2).values[1])) for s in out.scores)
    if margin < 1e-3:
        sys.exit(f"greedy margin too small ({margin}); pick another seed")
    return {"prompt": prompt, "max_new_tokens": new_tokens, "min_new_tokens": new_tokens, "eos_token_id": 3,
            "pad_token_id": 0, "repetition_penalty": repetition_penalty, "ids": gen, "min_margin": margin,
            "first_logits": out.logits[0][0].tolist(), "last_logits": out.logits[-1][0].tolist()}


def pipeline_cases(model):
    cases = []
    specs = [
        dict(name="seed_recipe", top_p=0.9, num_return_sequences=3, max_new_tokens=6),
        dict(name="all_filters", temperature=0.7, top_k=20, top_p=0.8, repetition_penalty=1.3, min_new_tokens=4,
             num_return_sequences=2, max_new_tokens=6),
        dict(name="top_k_default_only", num_return_sequences=2, max_new_tokens=4),
    ]
    prompt = [5, 11, 3, 42, 42, 7]
    for spec in specs:
        name = spec.pop("name")
        torch.manual_seed(1234)
        with torch.no_grad():
            out = model.generate(torch.tensor([prompt]), do_sample=True, eos_token_id=3, pad_token_id=0,
                                 output_logits=True, output_scores=True, return_dict_in_generate=True, **spec)
        steps = []
        for t, (lg, sc) in enumerate(zip(out.logits, out.scores)):
            steps.append({"ids": out.sequences[:, :len(prompt) + t].tolist(), "logits": rows(lg), "scores": rows(sc)})
        cases.append({"name": name, "config": spec, "prompt": prompt, "eos_token_id": 3, "steps": steps})
    return cases


def main():
    os.makedirs(OUT, exist_ok=True)
    write_json("processors.json", processors_cases())

    xs = torch.linspace(-7.0, 7.0, 57).tolist() + [-0.3, 0.01, 0.5, 1.0, 2.5, 12.0, -12.0]
    x = torch.tensor(xs, dtype=torch.float32)
    acts = {name: ACT2FN[name](x).tolist() for name in
            ["gelu_new", "gelu_fast", "gelu", "gelu_pytorch_tanh", "relu", "quick_gelu", "silu"]}
    write_json("activations.json", {"x": x.tolist(), "y": acts})

    tied = tiny_model(True, "gelu_new", 11)
    save_model(tied, os.path.join(OUT, "tiny_tied"))
    write_json("tiny_tied/greedy.json", greedy_case(tied, [5, 11, 3, 42, 42, 7, 60, 1], 72, 1.0))
    untied = tiny_model(False, "gelu_fast", 23)
    save_model(untied, os.path.join(OUT, "tiny_untied"))
    write_json("tiny_untied/greedy.json", greedy_case(untied, [9, 8, 7, 6, 50, 51], 64, 1.3))

    write_json("pipeline.json", {"cases": pipeline_cases(tied)})
    print("wrote", OUT)


if __name__ == "__main__":
    main()
