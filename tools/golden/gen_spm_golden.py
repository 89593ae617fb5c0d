#!/usr/bin/env python3
"""A small SentencePiece BPE model (LLaMA-style: byte fallback, identity normalization, dummy prefix, no whitespace
squeezing) trained on the parity corpus, and golden ids from sentencepiece itself (with <s> first, as LLaMA's
tokenizer adds). Writes src/test/resources/tokenizer/spm-bpe.model and spm-bpe-golden.jsonl.

    /work/.venv-ref/bin/python tools/golden/gen_spm_golden.py   (sentencepiece 0.2.x)
"""
import json, os, tempfile
import sentencepiece as spm

root = os.path.join(os.path.dirname(__file__), '..', '..', 'src', 'test', 'resources', 'tokenizer')
lines = open(os.path.join(root, 'parity-corpus.txt'), encoding='utf-8', newline='').read().split('\n')
train = [l for l in lines[3000:23000] if l.strip()]
tmp = tempfile.mkdtemp()
with open(os.path.join(tmp, 'train.txt'), 'w', encoding='utf-8') as f:
    f.write('\n'.join(l.replace('\r', ' ') for l in train))
spm.SentencePieceTrainer.train(
    input=os.path.join(tmp, 'train.txt'), model_prefix=os.path.join(tmp, 'm'), model_type='bpe', vocab_size=6000,
    byte_fallback=True, normalization_rule_name='identity', add_dummy_prefix=True, remove_extra_whitespaces=False,
    character_coverage=0.98, user_defined_symbols=['<|im_start|>', '<|im_end|>'], split_digits=False,
    bos_id=1, eos_id=2, unk_id=0, pad_id=-1, seed_sentencepiece_size=200000, num_threads=1, minloglevel=2)
model = open(os.path.join(tmp, 'm.model'), 'rb').read()
open(os.path.join(root, 'spm-bpe.model'), 'wb').write(model)
sp = spm.SentencePieceProcessor(model_proto=model)
with open(os.path.join(root, 'spm-bpe-golden.jsonl'), 'w', encoding='utf-8') as f:
    for i, l in enumerate(lines[:1500]):
        f.write(json.dumps({"line": i, "ids": [1] + sp.encode(l)}, separators=(',', ':')) + '\n')
    for l in ["Hello  world", " leading", "<|im_start|>user 你好<|im_end|>", "emoji 😀👨‍👩‍👧 𠮷", "tab\there", ""]:
        f.write(json.dumps({"text": l, "ids": [1] + sp.encode(l)}, ensure_ascii=False, separators=(',', ':')) + '\n')
print(len(model), 'bytes model')
