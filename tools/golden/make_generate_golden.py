#!/usr/bin/env python3
"""Golden fixtures for dev.cpt4j.generate, made with transformers (the reference for generate semantics).

Writes under src/test/resources/golden/generate/:
  processors.json   transformers' logits processors/warpers applied directly to fixed logits (exact filtered scores)
  pipeline.json     model.generate(do_sample=True, output_logits, output_scores): per step the raw logits, the
                    processed scores and the ids so far, so the processor chain (order included) can be replayed
  activations.json  every GPT-2 activation_function of transformers' ACT2FN on fixed inputs
  tiny_tied/, tiny_untied/   two tiny random GPT-2s (model.safetensors + config.json) and greedy.json: transformers'
                    greedy generate ids (>= 64 new tokens, eos suppressed by min_new_tokens) and first-step logits
  tiny_wp/          a tiny GPT-2 (vocab 64, gelu_fast, tied) with a BERT vocab.txt, text.txt (held-out lines) and
                    eval.json: transformers' loss over text.txt's blocks (BertTokenizer, special tokens, concatenated,
                    remainder dropped, labels=input_ids) and greedy ids from a text prompt
  tiny_wp_adapter/  a peft LoRA adapter for tiny_wp (r=4, c_attn, modules_to_save wte+lm_head, vocabulary resized
                    64 -> 66 first, random nonzero lora_B, wte and lm_head different); tiny_wp/eval.json holds the
                    PeftModel loss and greedy ids too

  --check-merged DIR   instead: load a cpt4j-merged checkpoint DIR with transformers and compare its loss on
                       tiny_wp's blocks with the PeftModel loss recorded in tiny_wp/eval.json

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


WP_VOCAB = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "，", "。", "！", "？", "gpt", "##2", "a", "b"]
            + list("春眠不觉晓处闻啼鸟夜来风雨声花落知多少床前明月光疑是地上霜举头望低思故乡白日依山尽黄河入海流欲穷千里目"))
WP_TEXT = ["春眠不觉晓，处处闻啼鸟。", "夜来风雨声，花落知多少。", "", "床前明月光，疑是地上霜。",
           "举头望明月，低头思故乡。", "   ", "白日依山尽，黄河入海流。", "欲穷千里目，更上一层楼。",
           "gpt2 a b 春风！", "明月千里，故乡多少？", "花落春来，风雨不知。", "山海日月光，白头望故乡。"]
WP_BLOCK = 16


def wp_model():
    cfg = GPT2Config(vocab_size=len(WP_VOCAB), n_positions=96, n_embd=32, n_layer=2, n_head=4, n_inner=64,
                     activation_function="gelu_fast", tie_word_embeddings=True,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=2, eos_token_id=3)
    torch.manual_seed(31)
    model = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name.endswith("ln_f.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))
    return model


def wp_blocks(tok):
    ids = []
    for line in WP_TEXT:
        if line.strip():
            ids += tok(line)["input_ids"]  # special tokens as the post-processor adds them: [CLS] ... [SEP]
    n = len(ids) // WP_BLOCK
    return ids, torch.tensor(ids[:n * WP_BLOCK]).view(n, WP_BLOCK)


def wp_greedy(model, prompt, new_tokens):
    with torch.no_grad():
        out = model.generate(input_ids=torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                             do_sample=False, max_new_tokens=new_tokens, min_new_tokens=new_tokens, eos_token_id=3,
                             pad_token_id=0, output_scores=True, return_dict_in_generate=True)
    margin = min(float((s[0].topk(2).values[0] - s[0].topk(2).values[1])) for s in out.scores)
    if margin < 1e-3:
        sys.exit(f"greedy margin too small ({margin}); pick another seed")
    return out.sequences[0, len(prompt):].tolist(), margin


def wp_fixtures():
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import BertTokenizer
    d = os.path.join(OUT, "tiny_wp")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(WP_VOCAB) + "\n")
    with open(os.path.join(d, "text.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(WP_TEXT) + "\n")
    tok = BertTokenizer(os.path.join(d, "vocab.txt"))
    ids, blocks = wp_blocks(tok)
    model = wp_model()
    save_model(model, d)
    prompt_text = "春眠不觉"
    prompt = tok(prompt_text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        base_loss = float(model(blocks, labels=blocks).loss)
    base_ids, base_margin = wp_greedy(model, prompt, 40)

    # the adapter: vocabulary grown by two rows first (what a user does after adding tokens), then LoRA on c_attn
    # with wte and lm_head trained in full (the seed's --modules_to_save transformer.wte,lm_head)
    base = wp_model()
    base.resize_token_embeddings(len(WP_VOCAB) + 2)
    lcfg = LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"], modules_to_save=["wte", "lm_head"],
                      lora_dropout=0.0, fan_in_fan_out=True, task_type="CAUSAL_LM")
    pm = get_peft_model(base, lcfg)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_A" in name or "lora_B" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
            elif "modules_to_save" in name:
                p.add_(0.2 * torch.randn(p.shape, generator=g))
    pm.eval()
    ad = os.path.join(OUT, "tiny_wp_adapter")
    pm.save_pretrained(ad)
    for extra in ("README.md",):
        if os.path.exists(os.path.join(ad, extra)):
            os.remove(os.path.join(ad, extra))
    # reload exactly as a user would: fresh base, resized, PeftModel.from_pretrained
    base2 = wp_model()
    base2.resize_token_embeddings(len(WP_VOCAB) + 2)
    pm2 = PeftModel.from_pretrained(base2, ad).eval()
    with torch.no_grad():
        adapter_loss = float(pm2(input_ids=blocks, labels=blocks).loss)
    adapter_ids, adapter_margin = wp_greedy(pm2, prompt, 64)
    merged = pm2.merge_and_unload()
    with torch.no_grad():
        merged_loss = float(merged(blocks, labels=blocks).loss)
    write_json("tiny_wp/eval.json", {
        "block_size": WP_BLOCK, "tokens": len(ids), "blocks": int(blocks.shape[0]), "ids": ids,
        "base_loss": base_loss, "adapter_loss": adapter_loss, "peft_merged_loss": merged_loss,
        "prompt_text": prompt_text, "prompt": prompt, "eos_token_id": 3, "pad_token_id": 0,
        "base_greedy": base_ids, "base_margin": base_margin,
        "adapter_greedy": adapter_ids, "adapter_margin": adapter_margin})
    return blocks, adapter_loss


def check_merged(path):
    from transformers import BertTokenizer
    tok = BertTokenizer(os.path.join(OUT, "tiny_wp", "vocab.txt"))
    _, blocks = wp_blocks(tok)
    with open(os.path.join(OUT, "tiny_wp", "eval.json"), encoding="utf-8") as f:
        want = json.load(f)["adapter_loss"]
    m = GPT2LMHeadModel.from_pretrained(path).eval()
    with torch.no_grad():
        got = float(m(blocks, labels=blocks).loss)
    print(f"transformers loss of {path}: {got:.7f}; PeftModel loss: {want:.7f}; |diff| {abs(got - want):.2e}")
    if abs(got - want) > 1e-4:
        sys.exit("merged checkpoint does not reproduce the adapter's loss")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check-merged":
        check_merged(sys.argv[2])
        return
    os.makedirs(OUT, exist_ok=True)
    wp_fixtures()
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
