#!/usr/bin/env python3
"""Golden fixtures for dev.cpt4j.train: torch.optim.AdamW steps, transformers' LR schedules and warm-up steps,
torch.nn.utils.clip_grad_norm_.

Run with the Python reference (torch CPU, transformers):
    /work/.venv-ref/bin/python tools/golden/make_train_golden.py
Writes src/test/resources/golden/train/{adamw,schedules,clip}.json. Every float is a float32 value written as the
shortest decimal that round-trips the float32 (Java parses it back exactly with Float.parseFloat).
"""
import json
import math
import os

import numpy as np
import torch
import transformers
from transformers import TrainingArguments, get_scheduler

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "src", "test", "resources", "golden", "train")



def as_f32_strings(t):
    return [np.format_float_scientific(np.float32(x), unique=True, trim="-")
            for x in t.detach().to(torch.float32).reshape(-1).numpy()]


def adamw_golden():
    g = torch.Generator().manual_seed(1234)
    # Two parameter groups like an LM fine-tune: a "decay" group (weights, lr 2e-3, wd 0.1) and an "embedding"
    # group (lr 5e-4, wd 0.01) plus a "no-decay" group (biases, wd 0). Odd sizes on purpose.
    shapes = {"w": (7, 5), "b": (33,), "emb": (11, 3)}
    params = {k: torch.nn.Parameter(torch.randn(*s, generator=g)) for k, s in shapes.items()}
    init = {k: p.detach().clone() for k, p in params.items()}
    groups = [
        {"params": [params["w"]], "lr": 2e-3, "weight_decay": 0.1},
        {"params": [params["b"]], "lr": 2e-3, "weight_decay": 0.0},
        {"params": [params["emb"]], "lr": 5e-4, "weight_decay": 0.01},
    ]
    opt = torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=1e-8)
    steps = []
    for step in range(6):
        # scale the learning rate like a scheduler would (LambdaLR multiplies each group's initial lr)
        factor = [0.25, 0.5, 1.0, 1.0, 0.75, 0.1][step]
        for grp, base in zip(opt.param_groups, [2e-3, 2e-3, 5e-4]):
            grp["lr"] = base * factor
        grads = {k: torch.randn(*s, generator=g) * (10.0 ** (step % 3 - 2)) for k, s in shapes.items()}
        for k, p in params.items():
            p.grad = grads[k].clone()
        opt.step()
        steps.append({
            "lr_factor": factor,
            "grads": {k: as_f32_strings(v) for k, v in grads.items()},
            "params": {k: as_f32_strings(p) for k, p in params.items()},
            "m": {k: as_f32_strings(opt.state[p]["exp_avg"]) for k, p in params.items()},
            "v": {k: as_f32_strings(opt.state[p]["exp_avg_sq"]) for k, p in params.items()},
        })
    return {
        "torch": torch.__version__,
        "betas": [0.9, 0.999], "eps": 1e-8,
        "groups": [{"names": ["w"], "lr": 2e-3, "weight_decay": 0.1},
                   {"names": ["b"], "lr": 2e-3, "weight_decay": 0.0},
                   {"names": ["emb"], "lr": 5e-4, "weight_decay": 0.01}],
        "shapes": {k: list(s) for k, s in shapes.items()},
        "order": ["w", "b", "emb"],
        "init": {k: as_f32_strings(v) for k, v in init.items()},
        "steps": steps,
    }


def schedules_golden():
    cases = []
    combos = [
        ("linear", 0, 0.0, 10), ("linear", 3, 0.0, 10), ("linear", 0, 0.05, 2500),
        ("cosine", 0, 0.05, 2500), ("cosine", 0, 0.1, 7), ("cosine", 5, 0.0, 20), ("cosine", 0, 0.0, 1),
        ("cosine", 0, 0.3, 33), ("constant", 0, 0.0, 10), ("constant_with_warmup", 4, 0.0, 12),
        ("constant_with_warmup", 0, 0.25, 9), ("linear", 12, 0.0, 10),
    ]
    for kind, warmup_steps, warmup_ratio, total in combos:
        # transformers >= 5 folds warmup_ratio into warmup_steps (a value < 1 is a ratio); 4.x had both fields
        # with "warmup_steps if warmup_steps > 0 else ceil(warmup_ratio * total)". Same numbers either way.
        ws = warmup_steps if warmup_steps > 0 else math.ceil(total * warmup_ratio)
        args = TrainingArguments(output_dir="/tmp/unused", warmup_steps=warmup_steps if warmup_steps > 0 else warmup_ratio,
                                 report_to=[])
        assert args.get_warmup_steps(total) == ws, (args.get_warmup_steps(total), ws)
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=1.0)
        sched = get_scheduler(kind, opt, num_warmup_steps=ws, num_training_steps=total)
        factors = []
        for step in range(total + 3):
            factors.append(sched.get_last_lr()[0])  # factor used by optimizer step `step` (0-based)
            opt.step()
            sched.step()
        cases.append({"type": kind, "warmup_steps": warmup_steps, "warmup_ratio": warmup_ratio, "total": total,
                      "resolved_warmup": ws, "factors": factors})
    return {"transformers": transformers.__version__, "cases": cases}


def clip_golden():
    g = torch.Generator().manual_seed(99)
    out = []
    for max_norm, scale in [(1.0, 1.0), (1.0, 0.01), (0.5, 3.0), (1.0, 0.0)]:
        ps = [torch.nn.Parameter(torch.zeros(s)) for s in [(13,), (4, 9), (1,)]]
        grads = [torch.randn(*p.shape, generator=g) * scale for p in ps]
        for p, gr in zip(ps, grads):
            p.grad = gr.clone()
        norm = torch.nn.utils.clip_grad_norm_(ps, max_norm)
        out.append({"max_norm": max_norm,
                    "grads": [as_f32_strings(gr) for gr in grads],
                    "norm": float(norm),
                    "clipped": [as_f32_strings(p.grad) for p in ps]})
    return {"torch": torch.__version__, "cases": out}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, fn in [("adamw", adamw_golden), ("schedules", schedules_golden), ("clip", clip_golden)]:
        path = os.path.join(OUT, name + ".json")
        with open(path, "w") as f:
            json.dump(fn(), f, indent=None, separators=(",", ":"))
        print("wrote", os.path.normpath(path), os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
