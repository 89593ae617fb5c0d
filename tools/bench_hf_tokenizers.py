#!/usr/bin/env python3
"""HF tokenizers (Rust) encode throughput on the parity corpus, for docs/PERFORMANCE-tokenizer.md side by side with
TokenizerBench. Threads: RAYON_NUM_THREADS (set it to 1 for one thread).

    RAYON_NUM_THREADS=1 /work/.venv-ref/bin/python tools/bench_hf_tokenizers.py SECONDS tokenizer.json...
"""
import os, sys, time
from tokenizers import Tokenizer

secs = float(sys.argv[1])
corpus = os.path.join(os.path.dirname(__file__), '..', 'src', 'test', 'resources', 'tokenizer', 'parity-corpus.txt')
lines = open(corpus, encoding='utf-8', newline='').read().split('\n')[:-1]
nbytes = sum(len(l.encode('utf-8')) for l in lines)
for f in sys.argv[2:]:
    t = Tokenizer.from_file(f)
    t.no_truncation()
    t.no_padding()
    t.encode_batch(lines, add_special_tokens=True)  # warm-up
    t0, reps = time.perf_counter(), 0
    while reps == 0 or time.perf_counter() - t0 < secs:
        t.encode_batch(lines, add_special_tokens=True)
        reps += 1
    dt = time.perf_counter() - t0
    print(f"{f}: {nbytes * reps / dt / 1e6:.2f} MB/s (threads={os.environ.get('RAYON_NUM_THREADS', 'all')})")
