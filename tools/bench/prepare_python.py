#!/usr/bin/env python3
"""The seed's data preparation in Python, timed: the baseline `cpt4j prepare` is compared with in docs/PERFORMANCE.md.

It replicates run_clm_pt_with_peft.py (seed: seed/000_0d55807a6340beec.txt, "Part2"): every *.txt in --dataset_dir is
loaded with datasets' "text" builder, tokenized by a batched `map` (HF fast tokenizer, special tokens added) on
--preprocessing_num_workers processes, grouped into --block_size chunks by the seed's `group_texts` (batched map, so a
remainder is dropped per batch of 1000 lines — the seed's behaviour, kept on purpose), saved with save_to_disk as the
seed caches it, and split with train_test_split(test_size=--validation_split_percentage).
Nothing is reused from datasets' cache (a fresh cache directory, load_from_cache_file=False), so it times real work.

Run with the reference venv, on the same corpus, tokenizer and worker count as cpt4j:
  /work/.venv-ref/bin/python tools/bench/prepare_python.py --tokenizer TOKENIZER_DIR_OR_JSON \
      --dataset_dir ~/.cache/cpt4j/assets/corpus --block_size 512 --preprocessing_num_workers 2
Prints one JSON line: seconds per phase ("total" excludes the Python/tokenizer start-up, reported apart), lines, tokens, blocks, tokens/s and MB/s.
"""
import argparse
import json
import os
import shutil
import tempfile
import time
from itertools import chain
from pathlib import Path


def load_tokenizer(path):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast
    p = Path(path)
    if p.is_file():  # a bare tokenizer.json
        return PreTrainedTokenizerFast(tokenizer_file=str(p))
    return AutoTokenizer.from_pretrained(str(p), use_fast=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--dataset_dir", required=True)
    ap.add_argument("--block_size", type=int, default=512)
    ap.add_argument("--preprocessing_num_workers", type=int, default=os.cpu_count())
    ap.add_argument("--validation_split_percentage", type=float, default=0.001)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--work_dir", default=None, help="scratch directory (default: a temp dir, deleted at the end)")
    a = ap.parse_args()

    import datasets
    from datasets import concatenate_datasets, load_dataset
    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()

    work = Path(a.work_dir or tempfile.mkdtemp(prefix="prepare_python_"))
    s0 = time.perf_counter()
    tokenizer = load_tokenizer(a.tokenizer)
    t_startup = time.perf_counter() - s0  # importing transformers + loading the tokenizer: reported, not in "total"
    t0 = time.perf_counter()
    block_size = a.block_size
    num_proc = a.preprocessing_num_workers if a.preprocessing_num_workers > 1 else None

    def tokenize_function(examples):  # the seed's, minus its warning capture
        return tokenizer(examples["text"])

    def group_texts(examples):  # the seed's group_texts, verbatim
        concatenated_examples = {k: list(chain(*examples[k])) for k in examples.keys()}
        total_length = len(concatenated_examples[list(examples.keys())[0]])
        if total_length >= block_size:
            total_length = (total_length // block_size) * block_size
        result = {
            k: [t[i: i + block_size] for i in range(0, total_length, block_size)]
            for k, t in concatenated_examples.items()
        }
        result["labels"] = result["input_ids"].copy()
        return result

    files = sorted(Path(a.dataset_dir).glob("*.txt"))
    if not files:
        raise SystemExit(f"no *.txt files in {a.dataset_dir}")
    in_bytes = sum(f.stat().st_size for f in files)
    lines = tokens = 0
    t_load = t_tok = t_group = t_save = 0.0
    lm_datasets = None
    tokenized_all = []
    for idx, f in enumerate(files):
        s = time.perf_counter()
        raw = load_dataset("text", data_files=str(f), cache_dir=str(work / "hf_cache"), keep_in_memory=False)
        t_load += time.perf_counter() - s
        s = time.perf_counter()
        tokenized = raw.map(tokenize_function, batched=True, num_proc=num_proc, remove_columns="text",
                            load_from_cache_file=False, keep_in_memory=False)
        t_tok += time.perf_counter() - s
        lines += len(raw["train"])
        tokenized_all.append(tokenized["train"])
        s = time.perf_counter()
        grouped = tokenized.map(group_texts, batched=True, num_proc=num_proc, load_from_cache_file=False,
                                keep_in_memory=False)
        t_group += time.perf_counter() - s
        s = time.perf_counter()
        grouped.save_to_disk(str(work / "cache" / f.stem))
        t_save += time.perf_counter() - s
        lm_datasets = grouped["train"] if idx == 0 else concatenate_datasets([lm_datasets, grouped["train"]])
    s = time.perf_counter()
    split = lm_datasets.train_test_split(test_size=a.validation_split_percentage, seed=a.seed)
    t_split = time.perf_counter() - s
    total = time.perf_counter() - t0
    # Counted after the clock stops, so counting does not slow the baseline.
    tokens = sum(len(x) for d in tokenized_all for x in d["input_ids"])
    print(json.dumps({
        "pipeline": "python-datasets (seed)", "files": len(files), "bytes": in_bytes, "lines": lines,
        "tokens": tokens, "train_blocks": len(split["train"]), "validation_blocks": len(split["test"]),
        "workers": a.preprocessing_num_workers, "block_size": block_size,
        "seconds": {"startup": round(t_startup, 2), "total": round(total, 2), "load": round(t_load, 2), "tokenize": round(t_tok, 2),
                    "group": round(t_group, 2), "save": round(t_save, 2), "split": round(t_split, 2)},
        "tokens_per_s": round(tokens / total), "mb_per_s": round(in_bytes / total / 1e6, 2),
    }))
    if not a.work_dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
