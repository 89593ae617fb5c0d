#!/usr/bin/env python3
"""Writes src/test/resources/tokenizer/parity-corpus.txt: the text the tokenizer parity tests encode with cpt4j and
with Hugging Face tokenizers. Real Chinese lines (Tang/Song shi in traditional script, Song ci and Yuan qu in
simplified script, classical prose) from npm chinese-poetry@2.0.1, mixed with synthetic hard cases.

    cd /tmp && npm pack chinese-poetry@2.0.1 && tar xzf chinese-poetry-2.0.1.tgz
    python3 tools/golden/gen_tokenizer_corpus.py /tmp/package/dist

Deterministic (fixed seed). One example per line; lines never contain '\\n' (they may contain '\\r')."""
import glob, json, os, random, sys

dist = sys.argv[1]
out = os.path.join(os.path.dirname(__file__), '..', '..', 'src', 'test', 'resources', 'tokenizer', 'parity-corpus.txt')
rng = random.Random(20240601)

def paragraphs(pattern, key='paragraphs', limit_files=None):
    files = sorted(glob.glob(os.path.join(dist, pattern)))
    rng.shuffle(files)
    for f in files[:limit_files]:
        for item in json.load(open(f, encoding='utf-8')):
            ps = item.get(key) or []
            if isinstance(ps, str):
                ps = [ps]
            for p in ps:
                if p and p.strip():
                    yield p

tang = list(paragraphs('quantangshi/poet.tang.*.json', limit_files=12))
song = list(paragraphs('quantangshi/poet.song.*.json', limit_files=12))
ci = list(paragraphs('songci/ci.song.*.json', limit_files=8))
qu = list(paragraphs('yuanqu/yuanqu.json'))
prose = (list(paragraphs('lunyu/lunyu.json')) + list(paragraphs('sishuwujing/mengzi.json'))
         + list(paragraphs('youmengying/youmengying.json', key='content')))

HARD = [
    "Hello, world! It's a test: don't, we're, they've, I'm, she'll, he'd.",
    "The QUICK brown Fox jumps over the lazy dog 1234567890 times.",
    "café naïve résumé Ångström São Paulo Zürich crème brûlée",
    "e\u0301 a\u0300 o\u0308 n\u0303 combining accents: cafe\u0301",
    "İstanbul ISTANBUL ıi straße STRASSE ΟΔΟΣ Σίσυφος ǅemal ﬁ ﬂ",
    "2024年10月1日，气温23.5℃，涨幅+3.14%，编号No.0042。",
    "ＡＢＣａｂｃ１２３！？＃（全角）　全角空格　ｈｅｌｌｏ",
    "表情😀😂🤣❤️👍🏽🇨🇳🇺🇸 1️⃣ ©️ ™ 🫠🥰🦀",
    "家庭👨‍👩‍👧‍👦 彩虹旗🏳️‍🌈 程序员👩🏻‍💻 ZWJ\u200dtest",
    "扩展B：𠀀𠀁𠀂𪚥𠮷𡈽 扩展C：𪜀 扩展E：𫠠 扩展G：𰀀𰀁 兼容：豈更車",
    "tab\there\tand\u3000ideographic\u00a0nbsp\u200bzwsp\u2028ls\u202fnnbsp\u2009thin  double   triple",
    "   leading and trailing spaces   ",
    "\r carriage\rreturn \x0b vt \x0c ff \x85 nel",
    "controls\x01\x02\x7f\x00nul\ufeffbom\ufffdrepl\ue000pua\u0378unassigned\U000e0001tag",
    "supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis",
    "a" * 120 + " " + "ab" * 60 + " " + "1" * 130,
    "很长的中文" * 30,
    "[CLS] 你好 [SEP] [MASK] [UNK] [PAD] [cls] [Mask]",
    "<|endoftext|>下一篇<|endoftext|> <|im_start|>user\r你好<|im_end|>",
    "<s> start </s> end <unk> unknown <s>text</s>",
    "https://example.com/path?q=测试&x=1#frag user@example.org",
    "def f(x):    return x**2 + y_1 - z[0] / {a: b}; // comment /* c */",
    "こんにちは、世界。カタカナとひらがな。ｶﾀｶﾅ",
    "안녕하세요 세계 한국어 텍스트",
    "مرحبا بالعالم العربية",
    "नमस्ते दुनिया हिन्दी",
    "สวัสดีชาวโลก ภาษาไทย",
    "Привет, мир! Ёжик в тумане.",
    "“引号”‘单引’「直角」『双直角』《书名》〈篇名〉——破折号……省略号·间隔号",
    "mixed中English混合text与数字123和符号!@#$%^&*()_+-=[]{}|;':\",./<>?`~",
    "1,234,567.89 1e-10 0x1F -42 +7 3/4 ½ ¼ ² ³ Ⅻ ⑩ ㊿",
    "ΑΒΓ αβγ ∑∫∂√∞≠≤≥ ∀∃∈∉ →⇒⇔ ℃℉",
    "''' \"\"\" '' \"\" 's 'S 'T 'RE 'Ve 'LL 'D ſ",
    "\t\t\t",
    " ",
    "‍‌⁠",
]

def mutate(line):
    r = rng.random()
    if r < 0.55:
        return line
    if r < 0.75:  # insert a hard snippet at a random position
        h = rng.choice(HARD)
        cut = rng.randrange(0, min(len(h), 40) + 1)
        frag = h[cut:cut + rng.randrange(1, 30)]
        pos = rng.randrange(0, len(line) + 1)
        return line[:pos] + frag + line[pos:]
    if r < 0.85:  # join with another line with odd whitespace
        sep = rng.choice([' ', '\t', '\u3000', '\u00a0', '', '  ', '\u200b', '\r', ' \r'])
        return line + sep + rng.choice(ci + tang)
    if r < 0.92:  # Latin words between Chinese
        words = rng.choice(HARD[:3]).split()
        pos = rng.randrange(0, len(line) + 1)
        return line[:pos] + ' ' + ' '.join(rng.sample(words, min(3, len(words)))) + ' ' + line[pos:]
    return line + rng.choice(['<|endoftext|>', '[SEP]', '</s>', ' [MASK] ', '<|im_end|>'])

lines = []
for src, n in ((tang, 8000), (song, 6000), (ci, 6500), (qu, 1500), (prose, 1500)):
    lines += [mutate(l) for l in rng.sample(src, min(n, len(src)))]
for _ in range(3):
    lines += HARD
for _ in range(2000):  # short synthetic mixes of hard cases
    a, b = rng.sample(HARD, 2)
    lines.append(a[:rng.randrange(1, 40)] + rng.choice(['', ' ', '\t']) + b[:rng.randrange(1, 40)])
rng.shuffle(lines)
lines = [l.replace('\n', ' ') for l in lines]
with open(out, 'w', encoding='utf-8', newline='') as f:
    f.write('\n'.join(lines) + '\n')
print(out, len(lines), 'lines', os.path.getsize(out), 'bytes')
