#!/usr/bin/env python3
"""Golden ids for a SentencePiece tokenizer.model that `cpt4j tokenizer extend` wrote (Chinese-LLaMA recipe part 1):
the sentencepiece library loads the extended model and encodes held-out Chinese text; the ids are the golden.

    ./cpt4j --version >/dev/null                                   # builds target/cpt4j.jar if needed
    /work/venv-ref/bin/python tools/golden/make_spm_extend_golden.py  (sentencepiece 0.2.x, tokenizers 0.2x)

What it does (VocabExtenderSpmTest repeats steps 1-2 in Java and compares with the file this writes):
 1. base  = src/test/resources/tokenizer/spm-bpe.model (LLaMA-style BPE: byte fallback, identity normalization,
            dummy prefix; tools/golden/gen_spm_golden.py) as tokenizer.model in an otherwise empty directory;
    corpus = lines [0, 3000) of src/test/resources/tokenizer/parity-corpus.txt (the base never saw them), written as
            corpus/domain.txt joined by "\\n" with a final "\\n".
 2. ./cpt4j tokenizer extend --base BASE --corpus CORPUS --add 400 --output OUT
 3. sentencepiece loads OUT/tokenizer.model; every test text is encoded with <s> (id 1) first, as LLaMA's tokenizer
    adds it; HF tokenizers must give the same ids from OUT/tokenizer.json (the script fails otherwise).
Writes src/test/resources/tokenizer/spm-extend-golden.json: the sha256 of OUT/tokenizer.model (the Java test checks
that cpt4j still writes exactly that file), its vocabulary size, the test texts (parity-corpus lines [23000, 23500),
which neither the base nor the extension saw, but those with <s> </s> <unk> or the base's user-defined symbols, then
a few modern Chinese sentences) and their ids.
"""
import hashlib, json, os, shutil, subprocess, sys, tempfile
import sentencepiece as spm
import tokenizers

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.normpath(os.path.join(here, '..', '..'))
res = os.path.join(root, 'src', 'test', 'resources', 'tokenizer')
lines = open(os.path.join(res, 'parity-corpus.txt'), encoding='utf-8', newline='').read().split('\n')
if lines[-1] == '':
    lines.pop()
tmp = tempfile.mkdtemp()
base, corpus, out = (os.path.join(tmp, d) for d in ('base', 'corpus', 'out'))
os.makedirs(base); os.makedirs(corpus)
shutil.copy(os.path.join(res, 'spm-bpe.model'), os.path.join(base, 'tokenizer.model'))
with open(os.path.join(corpus, 'domain.txt'), 'w', encoding='utf-8', newline='') as f:
    f.write('\n'.join(lines[0:3000]) + '\n')
subprocess.run([os.path.join(root, 'cpt4j'), 'tokenizer', 'extend', '--base', base, '--corpus', corpus, '--add', '400',
                '--output', out], check=True)
model = open(os.path.join(out, 'tokenizer.model'), 'rb').read()
sp = spm.SentencePieceProcessor(model_proto=model)
hf = tokenizers.Tokenizer.from_file(os.path.join(out, 'tokenizer.json'))
modern = ["中文LLaMA的词表扩充：在原有词表之上加入新的中文词，再继续预训练。",
          "床前明月光，疑是地上霜。举头望明月，低头思故乡。",
          "今天天气很好，我们去公园散步吧！Hello, 世界 2024 年。",
          "  前后有空格  ", "emoji 😀 与 𠮷 字"]
# left out: lines with <s> </s> <unk> (sentencepiece spells control pieces out, HF matches them) and with the base's
# user-defined <|im_start|> <|im_end|> (sentencepiece matches them anywhere in the normalized text, HF's normalized
# added tokens only after a ▁ -- a limit of any tokenizer.json beside a model with user-defined symbols; LLaMA has none)
texts = [l for l in lines[23000:23500] if not any(c in l for c in ('<s>', '</s>', '<unk>', '<|im_'))] + modern
ids = []
for t in texts:
    a = [1] + sp.encode(t)
    b = hf.encode(t).ids
    if a != b:
        sys.exit('sentencepiece and tokenizers disagree on %r:\n  %s\n  %s' % (t, a, b))
    ids.append(a)
golden = {"sha256": hashlib.sha256(model).hexdigest(), "vocab_size": sp.vocab_size(), "add": 400,
          "corpus_lines": [0, 3000], "texts": texts, "ids": ids}
with open(os.path.join(res, 'spm-extend-golden.json'), 'w', encoding='utf-8') as f:
    json.dump(golden, f, ensure_ascii=False, separators=(',', ':'))
    f.write('\n')
print('vocab', sp.vocab_size(), 'texts', len(texts), 'model', len(model), 'bytes; sentencepiece == tokenizers on all')
shutil.rmtree(tmp)
