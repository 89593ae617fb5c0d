#!/usr/bin/env python3
"""Writes the LLaMA-family golden fixtures under src/test/resources/golden/llama/<name>/ with transformers'
LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM and MistralForCausalLM.

Run: /work/venv-ref/bin/python tools/golden/make_llama_golden.py [case ...]
     (torch 2.13 CPU, transformers 5.x, safetensors; fp32 compute, attn_implementation="eager", dropout 0; a few
     seconds on one core). With no argument it rewrites every case; it then reloads every fixture it wrote with
     transformers and checks that the stored logits, loss and greedy tokens are reproduced.

Per case directory:
  config.json                 as save_pretrained writes it (transformers 5 style: "rope_parameters" holding
                              "rope_type", "rope_theta" and the scaling keys, and "dtype") -- EXCEPT qwen2_tied_yarn,
                              which is post-processed into the legacy hub style: top-level "rope_theta" plus
                              "rope_scaling" {"rope_type": "yarn", ...} and "torch_dtype" instead of "dtype" (the
                              script checks that transformers loads it to the same rope_parameters and logits).
  model.safetensors           the weights (F32), HF names (model.embed_tokens.weight, model.layers.{i}.self_attn.
                              {q,k,v,o}_proj.{weight,bias}, model.layers.{i}.self_attn.{q,k}_norm.weight (qwen3),
                              model.layers.{i}.mlp.{gate,up,down}_proj.{weight,bias}, model.layers.{i}.{input,
                              post_attention}_layernorm.weight, model.norm.weight, lm_head.weight (untied only)).
                              mistral_onekv_bf16 instead has BF16 weights SHARDED as model-0000k-of-0000n.safetensors
                              plus model.safetensors.index.json ({"metadata": {...}, "weight_map": {name: file}}).
  expected.safetensors        input_ids I32 (B, T); logits F32 (B, T, V); loss F32 (1) (mean next-token
                              cross-entropy, labels = input_ids, HF shift); adamw_losses F32 (11): the loss before
                              each of 10 torch.optim.AdamW(model.parameters(), lr 1e-3, betas (0.9, 0.999), eps 1e-8,
                              weight_decay 0.01 on ALL parameters, no clipping) steps, then the loss after the last;
                              prompt_ids I32 (1, 5); greedy_ids I32 (1, 32): the 32 new tokens of
                              model.generate(prompt, do_sample=False, max_new_tokens=32, min_new_tokens=32) with eos
                              disabled (eos_token_id None everywhere, so nothing is suppressed: plain argmax), on the
                              initial weights, KV cache on (transformers' default DynamicCache);
                              loss_rope_default F32 (1): the loss of the same weights and ids with the rope scaling
                              replaced by {"rope_type": "default", "rope_theta": <same theta>} (equal to loss for the
                              cases whose rope already is default). llama_dynamic_rope also has greedy_ids_nocache
                              I32 (1, 32): greedy decoding by re-running the whole sequence every step (see below).
  grads.safetensors           F32 gradient of every parameter named_parameters() yields, of the first
                              forward/backward of loss (HF names; a tied model has no lm_head.weight here).
  golden.json                 batch, time, vocab (config vocab_size), id_range (ids drawn from range(id_range)),
                              lr, betas, eps, weight_decay, steps, torch, transformers, loss, loss_rope_default,
                              rope_rel_diff = |loss - loss_rope_default| / loss, rope_parameters, and for
                              mistral_sliding_window "sliding_window_rule".

Weights are "sharp": HF init with initializer_range 0.1, then N(0, 0.05) noise on every parameter; every RMSNorm
weight (input/post_attention/final norm, q_norm/k_norm) is then set to 1 + N(0, 0.1); so biases and norms are
non-trivial. Rope thetas are small (100..1000) so that logits vary strongly with position; for every scaled case
|loss - loss_rope_default| / loss > 1e-3 (printed; a WARNING is printed otherwise).

Cases (2 layers each; B, T, V = config vocab_size, heads/kv heads, head_dim, rope):
  llama_untied_llama3_bias  2, 19, 131, 4/2, 8, llama3 theta 100 factor 4 low 1 high 4 original 32 (wavelengths
                            6.28 < 8 kept, 19.9 smoothed, 62.8 and 199 > 32 divided: all three branches); untied;
                            attention_bias + mlp_bias (q/k/v/o and gate/up/down biases).
  qwen2_tied_yarn           3, 15, 181 (ids < 164), 4/2, 10, yarn theta 100 factor 4 original 64
                            (max_position_embeddings 256 = factor * original; correction range low 0, high 3 -> ramp
                            0, 1/3, 2/3, 1, 1; attention factor 0.1 ln 4 + 1); tied; q/k/v biases; legacy config.json.
  qwen3_headdim_qknorm      2, 11, 127, 4/2, 16 (hidden 40), default theta 1000; tied; q_norm/k_norm.
  mistral_onekv_bf16        2, 17, 131, 5/1, 8, default theta 500; untied; sliding_window null; bf16 shards.
  llama_linear_rope         2, 20, 101, 4/4, 8, linear theta 100 factor 2; untied.
  llama_dynamic_rope        2, 18, 103, 4/2, 8, dynamic theta 100 factor 2, max_position_embeddings 8; tied.
  mistral_sliding_window    2, 13, 97, 4/2, 8, default theta 100, sliding_window 6; untied.

Rope types (transformers 5.18 modeling_rope_utils.py): llama3, yarn, linear, dynamic as in ROPE_INIT_FUNCTIONS.
yarn here has no "truncate" key (-> True: correction range floor/ceil) and no attention_factor (->
0.1*ln(factor)+1, multiplies cos and sin).

Dynamic NTK rope ("dynamic", factor f, max_position_embeddings M, head dim d): inv_freq for a sequence length L is
theta' = theta * (f*L/M - (f-1)) ** (d/(d-2)) with L = max(L, M), inv_freq = theta' ** (-(2i)/d). transformers applies
it through the @dynamic_rope_update decorator on the rotary module's forward, with L = max(position_ids) + 1 of the
CURRENT call and state kept in the module:
  * growth: if L > max_seq_len_cached (initially M), inv_freq is recomputed for L and max_seq_len_cached = L;
  * reset: if L < M and max_seq_len_cached > M, inv_freq goes back to the original and max_seq_len_cached = M;
  * otherwise the current inv_freq is kept (so a call with M < L <= max_seq_len_cached reuses the base of the longest
    call so far -- state that leaks between calls; this script computes the forward on a freshly loaded model).
So a plain forward of length T > M uses theta'(T) for all positions. During generate with the KV cache the prompt
(P = 5 <= M) is prefilled with the original theta; then each decode step feeds one token at position p, so
L = p + 1: once p + 1 > M, every step recomputes theta'(p + 1) and rotates ONLY the new query and key with it; keys
already in the cache keep the rotation of the step that produced them (prompt keys: original theta; key at
position p: theta'(p + 1)). greedy_ids reproduces exactly that (checked by logging the rotary calls of generate:
prefill positions 0..4 and decode positions 5..7 use theta 100, position p >= 8 uses theta'(p + 1), e.g. 1600 at
p = 35); greedy_ids_nocache is what re-running the full sequence each step (all positions rotated with
theta'(current length)) gives instead -- for this fixture the two first differ at new token 13.

Sliding window (mistral_sliding_window, eager): found by reading the exact zeros of the layer-0 attention
probabilities (output_attentions=True) and recorded in golden.json "sliding_window_rule".
"""
import copy
import json
import math
import os
import shutil
import sys

import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import (GenerationConfig, LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "test", "resources", "golden", "llama")
LR, BETAS, EPS, WD, STEPS = 1e-3, (0.9, 0.999), 1e-8, 0.01, 10
P, NEW = 5, 32

COMMON = dict(num_hidden_layers=2, hidden_act="silu", initializer_range=0.1, attention_dropout=0.0,
              bos_token_id=None, eos_token_id=None, pad_token_id=None, attn_implementation="eager")

# name: (model class, config class, config kwargs, B, T, ids drawn from range(vocab - pad_rows), options)
CASES = {
    "llama_untied_llama3_bias": (LlamaForCausalLM, LlamaConfig, dict(
        vocab_size=131, hidden_size=32, intermediate_size=48, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=128, rms_norm_eps=1e-5, tie_word_embeddings=False, attention_bias=True, mlp_bias=True,
        rope_parameters=dict(rope_type="llama3", rope_theta=100.0, factor=4.0, low_freq_factor=1.0,
                             high_freq_factor=4.0, original_max_position_embeddings=32)), 2, 19, 0, {}),
    "qwen2_tied_yarn": (Qwen2ForCausalLM, Qwen2Config, dict(
        vocab_size=181, hidden_size=40, intermediate_size=56, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=256, rms_norm_eps=1e-6, tie_word_embeddings=True, use_sliding_window=False,
        rope_parameters=dict(rope_type="yarn", rope_theta=100.0, factor=4.0, original_max_position_embeddings=64)),
        3, 15, 17, {"legacy_config": True}),
    "qwen3_headdim_qknorm": (Qwen3ForCausalLM, Qwen3Config, dict(
        vocab_size=127, hidden_size=40, intermediate_size=48, num_attention_heads=4, num_key_value_heads=2,
        head_dim=16, max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=True, attention_bias=False,
        use_sliding_window=False, rope_parameters=dict(rope_type="default", rope_theta=1000.0)), 2, 11, 0, {}),
    "mistral_onekv_bf16": (MistralForCausalLM, MistralConfig, dict(
        vocab_size=131, hidden_size=40, intermediate_size=64, num_attention_heads=5, num_key_value_heads=1,
        head_dim=8, max_position_embeddings=64, rms_norm_eps=1e-5, tie_word_embeddings=False, sliding_window=None,
        rope_parameters=dict(rope_type="default", rope_theta=500.0)), 2, 17, 0, {"bf16_shards": 30000}),
    "llama_linear_rope": (LlamaForCausalLM, LlamaConfig, dict(
        vocab_size=101, hidden_size=32, intermediate_size=56, num_attention_heads=4, num_key_value_heads=4,
        max_position_embeddings=32, rms_norm_eps=1e-6, tie_word_embeddings=False,
        rope_parameters=dict(rope_type="linear", rope_theta=100.0, factor=2.0)), 2, 20, 0, {}),
    "llama_dynamic_rope": (LlamaForCausalLM, LlamaConfig, dict(
        vocab_size=103, hidden_size=32, intermediate_size=48, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=8, rms_norm_eps=1e-6, tie_word_embeddings=True,
        rope_parameters=dict(rope_type="dynamic", rope_theta=100.0, factor=2.0)), 2, 18, 0, {"nocache": True}),
    "mistral_sliding_window": (MistralForCausalLM, MistralConfig, dict(
        vocab_size=97, hidden_size=32, intermediate_size=48, num_attention_heads=4, num_key_value_heads=2,
        head_dim=8, max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=False, sliding_window=6,
        rope_parameters=dict(rope_type="default", rope_theta=100.0)), 2, 13, 0, {"sliding": True}),
}


def load(cls, out_dir):
    m = cls.from_pretrained(out_dir, dtype=torch.float32, attn_implementation="eager")
    m.train()  # dropout is 0 anyway
    return m


def loss_of(model, ids):
    return model(input_ids=ids, labels=ids).loss


def greedy(model, prompt):
    model.generation_config.eos_token_id = None
    model.generation_config.bos_token_id = None
    gc = GenerationConfig(do_sample=False, max_new_tokens=NEW, min_new_tokens=NEW, eos_token_id=None,
                          pad_token_id=0, num_beams=1, use_cache=True)
    with torch.no_grad():
        out = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), generation_config=gc)
    new = out[:, prompt.shape[1]:]
    assert new.shape == (1, NEW), new.shape
    return new


def greedy_nocache(model, prompt):
    seq = prompt.clone()
    with torch.no_grad():
        for _ in range(NEW):
            nxt = model(input_ids=seq, use_cache=False).logits[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], 1)
    return seq[:, prompt.shape[1]:]


def sharpen(model):
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.add_(torch.randn_like(p) * 0.05)
            if n.endswith("norm.weight"):
                p.copy_(1 + torch.randn_like(p) * 0.1)


def legacy_config(out_dir):
    path = os.path.join(out_dir, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    rp = dict(cfg.pop("rope_parameters"))
    theta = rp.pop("rope_theta")
    new = {}
    for k, v in cfg.items():  # keep the key order, put the rope keys where rope_parameters was
        if k == "dtype":
            new["torch_dtype"] = v
        else:
            new[k] = v
    new["rope_theta"] = theta
    new["rope_scaling"] = rp
    with open(path, "w") as f:
        json.dump(dict(sorted(new.items())), f, indent=2)
        f.write("\n")


def sliding_rule(model, ids, W):
    with torch.no_grad():
        att = model(input_ids=ids, output_attentions=True).attentions[0]  # (B, H, T, T)
    vis = (att != 0).all(0).all(0)  # visible for every batch row and head
    anyvis = (att != 0).any(0).any(0)
    assert torch.equal(vis, anyvis), "mask differs between heads/rows"
    T = vis.shape[0]
    rule = torch.tensor([[(j <= i) and (j > i - W) for j in range(T)] for i in range(T)])
    assert torch.equal(vis, rule), f"unexpected mask\n{vis.int()}"
    return (f"sliding window W={W}: key j visible to query i iff i - W < j <= i (the query itself and the W-1 "
            f"keys before it, W keys in all; checked on the exact zeros of the eager attention probabilities "
            f"for T={T}; generate with the KV cache gives the same tokens as re-running the full sequence)")


def make(name, seed):
    cls, ccls, kw, B, T, pad_rows, opt = CASES[name]
    torch.manual_seed(seed)
    cfg = ccls(**COMMON, **kw)
    assert cfg._attn_implementation == "eager"
    model = cls(cfg).float()
    sharpen(model)
    out_dir = os.path.join(ROOT, name)
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    if "bf16_shards" in opt:
        model.to(torch.bfloat16).save_pretrained(out_dir, max_shard_size=opt["bf16_shards"])
    else:
        model.save_pretrained(out_dir)
    gen_cfg = os.path.join(out_dir, "generation_config.json")
    if os.path.exists(gen_cfg):
        os.remove(gen_cfg)
    if opt.get("legacy_config"):
        ref = load(cls, out_dir)
        legacy_config(out_dir)
        leg = load(cls, out_dir)
        assert leg.config.rope_parameters == ref.config.rope_parameters, (leg.config.rope_parameters,
                                                                          ref.config.rope_parameters)
        assert leg.config.dtype == ref.config.dtype
        x = torch.randint(0, cfg.vocab_size - pad_rows, (2, 15), generator=torch.Generator().manual_seed(7))
        with torch.no_grad():
            assert torch.equal(leg(input_ids=x).logits, ref(input_ids=x).logits)
        print(name, "legacy config loads to", leg.config.rope_parameters, file=sys.stderr)
    del model

    g = torch.Generator().manual_seed(seed + 1)
    id_range = cfg.vocab_size - pad_rows
    ids = torch.randint(0, id_range, (B, T), generator=g)
    prompt = torch.randint(0, id_range, (1, P), generator=g)

    # reference model: the weights as stored (bf16 upcast for the bf16 case), fresh rotary state
    model = load(cls, out_dir)
    out = model(input_ids=ids, labels=ids)
    out.loss.backward()
    grads = {n: p.grad.detach().clone().contiguous() for n, p in model.named_parameters()}
    logits = out.logits.detach().clone()
    loss = out.loss.detach().reshape(1).clone()

    gen_model = load(cls, out_dir)
    greedy_ids = greedy(gen_model, prompt)
    nocache_ids = greedy_nocache(load(cls, out_dir), prompt)
    same_nocache = torch.equal(greedy_ids, nocache_ids)

    rope = dict(model.config.rope_parameters)
    dcfg = copy.deepcopy(model.config)
    dcfg.rope_parameters = {"rope_type": "default", "rope_theta": rope["rope_theta"]}
    dmodel = cls(dcfg).float()
    dmodel.load_state_dict(model.state_dict())
    with torch.no_grad():
        loss_default = loss_of(dmodel, ids).detach().reshape(1).clone()
    rel = abs(loss.item() - loss_default.item()) / loss.item()

    rule = sliding_rule(load(cls, out_dir), ids, cfg.sliding_window) if opt.get("sliding") else None

    model.zero_grad(set_to_none=True)
    optim = torch.optim.AdamW(model.parameters(), lr=LR, betas=BETAS, eps=EPS, weight_decay=WD)
    losses = []
    for _ in range(STEPS):
        optim.zero_grad(set_to_none=True)
        l = loss_of(model, ids)
        losses.append(l.item())
        l.backward()
        optim.step()
    with torch.no_grad():
        losses.append(loss_of(model, ids).item())

    exp = {"input_ids": ids.to(torch.int32).contiguous(), "logits": logits.contiguous(), "loss": loss,
           "adamw_losses": torch.tensor(losses, dtype=torch.float32),
           "prompt_ids": prompt.to(torch.int32).contiguous(), "greedy_ids": greedy_ids.to(torch.int32).contiguous(),
           "loss_rope_default": loss_default}
    if opt.get("nocache"):
        exp["greedy_ids_nocache"] = nocache_ids.to(torch.int32).contiguous()
    else:
        assert same_nocache, f"{name}: generate with cache != full recompute"
    save_file(exp, os.path.join(out_dir, "expected.safetensors"))
    save_file(grads, os.path.join(out_dir, "grads.safetensors"))
    meta = {"batch": B, "time": T, "vocab": cfg.vocab_size, "id_range": id_range, "lr": LR, "betas": BETAS,
            "eps": EPS, "weight_decay": WD, "steps": STEPS, "prompt_len": P, "new_tokens": NEW,
            "torch": torch.__version__, "transformers": transformers.__version__, "loss": loss.item(),
            "loss_rope_default": loss_default.item(), "rope_rel_diff": rel, "rope_parameters": rope,
            "weights_dtype": "bfloat16" if "bf16_shards" in opt else "float32",
            "greedy_cache_equals_nocache": same_nocache}
    if rule:
        meta["sliding_window_rule"] = rule
    with open(os.path.join(out_dir, "golden.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    c = model.config
    print(f"{name}: B={B} T={T} V={c.vocab_size} heads={c.num_attention_heads} kv={c.num_key_value_heads} "
          f"head_dim={getattr(c, 'head_dim', None)} tied={c.tie_word_embeddings} rope={rope} loss={loss.item():.6f} "
          f"loss_rope_default={loss_default.item():.6f} rel={rel:.4g} cache==nocache={same_nocache} "
          f"losses={[round(x, 5) for x in losses]}", file=sys.stderr)
    if rope["rope_type"] != "default" and rel < 1e-3:
        print(f"WARNING {name}: rope scaling barely matters (rel {rel:.3g})", file=sys.stderr)
    return rule


def verify(name):
    cls = CASES[name][0]
    d = os.path.join(ROOT, name)
    exp = load_file(os.path.join(d, "expected.safetensors"))
    ids = exp["input_ids"].long()
    m = load(cls, d)
    with torch.no_grad():
        out = m(input_ids=ids, labels=ids)
    dl = (out.logits - exp["logits"]).abs().max().item()
    assert dl < 1e-5 and abs(out.loss.item() - exp["loss"].item()) < 1e-6, (name, dl)
    assert torch.equal(greedy(load(cls, d), exp["prompt_ids"].long()), exp["greedy_ids"].long()), name
    grads = load_file(os.path.join(d, "grads.safetensors"))
    assert set(grads) == {n for n, _ in m.named_parameters()}, name
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    print(f"verified {name}: logits max diff {dl:.2g}, {size / 1024:.0f} KiB, files {sorted(os.listdir(d))}",
          file=sys.stderr)


if __name__ == "__main__":
    torch.set_num_threads(1)
    names = sys.argv[1:] or list(CASES)
    for name in names:
        make(name, 4321 + 29 * list(CASES).index(name))
    for name in names:
        verify(name)
