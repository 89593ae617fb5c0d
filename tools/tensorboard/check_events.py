#!/usr/bin/env python3
"""Reads the TensorBoard event files that `cpt4j train --report_to tensorboard` wrote, with TensorBoard's own reader
(tensorboard.backend.event_processing.event_accumulator), and checks them against the run's metrics.jsonl.

    /work/venv-ref/bin/python tools/tensorboard/check_events.py OUTPUT_DIR

For every run folder under OUTPUT_DIR/runs it prints the scalar tags with their steps; every train/loss,
train/learning_rate, train/grad_norm, eval/loss and eval/perplexity value must equal metrics.jsonl's (as float32)
at the same step, and every metrics.jsonl record must be there. Exits 1 on any difference. Not part of the product or
of CI: the Java tests read the files back themselves; this proves that TensorBoard reads them too.
"""
import json
import math
import os
import struct
import sys

from tensorboard.backend.event_processing import event_accumulator


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def main(out_dir):
    runs = os.path.join(out_dir, "runs")
    metrics = [json.loads(l) for l in open(os.path.join(out_dir, "metrics.jsonl"), encoding="utf-8") if l.strip()]
    want = {}
    for m in metrics:   # the last record of a step wins, as a resumed run's does
        if "loss" in m:
            for tag, key in (("train/loss", "loss"), ("train/learning_rate", "lr"), ("train/grad_norm", "grad_norm")):
                want.setdefault(tag, {})[m["step"]] = m[key]
        if "eval_loss" in m:
            want.setdefault("eval/loss", {})[m["step"]] = m["eval_loss"]
            want.setdefault("eval/perplexity", {})[m["step"]] = m["eval_ppl"]
    got = {}
    for run in sorted(os.listdir(runs)):
        acc = event_accumulator.EventAccumulator(os.path.join(runs, run), purge_orphaned_data=True)
        acc.Reload()
        tags = acc.Tags()["scalars"]
        print(f"run {run}: {len(tags)} scalar tags")
        for tag in tags:
            events = acc.Scalars(tag)
            print(f"  {tag}: steps {[e.step for e in events]}")
            for e in events:
                got.setdefault(tag, {})[e.step] = e.value
    bad = 0
    for tag, steps in want.items():
        for step, value in steps.items():
            g = got.get(tag, {}).get(step)
            if g is None or not (g == f32(value) or (math.isnan(g) and math.isnan(value))):
                print(f"MISMATCH {tag} step {step}: metrics.jsonl {value}, TensorBoard {g}")
                bad += 1
    for tag, steps in got.items():
        extra = sorted(set(steps) - set(want.get(tag, {})))
        if extra and tag in want:
            print(f"MISMATCH {tag}: TensorBoard has steps {extra} that metrics.jsonl does not")
            bad += 1
    n = sum(len(s) for s in want.values())
    print(f"{n - bad} of {n} values equal to metrics.jsonl" + ("" if bad == 0 else f"; {bad} differences"))
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
