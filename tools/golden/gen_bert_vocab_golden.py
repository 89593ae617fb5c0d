#!/usr/bin/env python3
"""Golden ids for the vocab.txt (BertTokenizer) loading path, from transformers' BertTokenizer.

Builds a Wenzhong-like tokenizer directory: vocab.txt = the 21,128 bert-base-chinese tokens (taken, by id, from the
bge-small-zh tokenizer.json that the test-scope jar ships), plus added tokens appended after it (ids 21128..21134:
special <|endoftext|>, <s>, </s>, <pad> and non-special 〈新词〉, Wenzhong, ChatGPT), then encodes the first 1,500
lines of the parity corpus with transformers' BertTokenizer. The Java test builds the same directory
(BertVocabTxtTest.makeDir) and must produce the same ids.

    /work/.venv-ref/bin/python tools/golden/gen_bert_vocab_golden.py path/to/bge-small-zh-v1.5-q-tokenizer.json
"""
import json, os, sys, tempfile
from transformers import BertTokenizer

src = sys.argv[1]
root = os.path.join(os.path.dirname(__file__), '..', '..', 'src', 'test', 'resources', 'tokenizer')
vocab = json.load(open(src, encoding='utf-8'))['model']['vocab']
d = tempfile.mkdtemp()
with open(os.path.join(d, 'vocab.txt'), 'w', encoding='utf-8') as f:
    for tok, _ in sorted(vocab.items(), key=lambda kv: kv[1]):
        f.write(tok + '\n')
# The Java test writes byte-identical side files (keep in sync with BertVocabTxtTest.makeDir).
SIDE = {
    'tokenizer_config.json': {"do_lower_case": True, "tokenize_chinese_chars": True, "model_max_length": 1000000000,
                              "tokenizer_class": "BertTokenizer"},
    'special_tokens_map.json': {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
                                "mask_token": "[MASK]", "bos_token": "<s>", "eos_token": "<|endoftext|>",
                                "additional_special_tokens": ["</s>", "<pad>"]},
    'added_tokens.json': {"<|endoftext|>": 21128, "<s>": 21129, "</s>": 21130, "<pad>": 21131, "〈新词〉": 21132,
                          "Wenzhong": 21133, "ChatGPT": 21134},
}
for name, obj in SIDE.items():
    with open(os.path.join(d, name), 'w', encoding='utf-8') as f:
        json.dump(obj, f, ensure_ascii=False)
tok = BertTokenizer.from_pretrained(d)
lines = open(os.path.join(root, 'parity-corpus.txt'), encoding='utf-8', newline='').read().split('\n')[:1500]
extra = ["Wenzhong 和 ChatGPT 都是模型", "wenzhong chatgpt", "〈新词〉出现了〈新词〉", "<s>开头</s>结尾<|endoftext|>",
         "[CLS]x[SEP]", "Café ÉCOLE naïve", "  <pad>  ", "ChatGPTs Wenzhong2.0"]
with open(os.path.join(root, 'bert-vocab-txt-golden.jsonl'), 'w', encoding='utf-8') as f:
    for i, l in enumerate(lines):  # corpus lines by index (the text is in parity-corpus.txt)
        f.write(json.dumps({"line": i, "ids": tok(l)["input_ids"]}, separators=(',', ':')) + '\n')
    for l in extra:
        f.write(json.dumps({"text": l, "ids": tok(l)["input_ids"]}, ensure_ascii=False, separators=(',', ':')) + '\n')
lines += extra
print(len(lines), 'lines; vocab size', len(tok))
