#!/usr/bin/env python3
"""Writes PEFT LoRA adapter fixtures for the LLaMA family under src/test/resources/golden/peft_llama/<name>/, made
with peft on two of the base models tools/golden/make_llama_golden.py wrote (src/test/resources/golden/llama/<name>/,
read as they are: config.json + model.safetensors, never rewritten here).

Run: /work/venv-ref/bin/python tools/golden/make_peft_llama_golden.py
     (torch 2.13 CPU, transformers 5.18, peft 0.21; fp32, attn_implementation="eager"; a few seconds.)
     It then reloads every adapter it wrote with PeftModel.from_pretrained on a fresh base (resized first where the
     adapter's vocabulary is larger) and checks that the stored logits are reproduced.

     /work/venv-ref/bin/python tools/golden/make_peft_llama_golden.py --check-java-output NAME DIR
     loads DIR (an adapter cpt4j wrote for the base of case NAME) with PeftModel.from_pretrained and prints the max
     |difference| of its logits on the case's input_ids against DIR/cpt4j_logits.safetensors ("logits" F32 (B, T, V));
     exits 1 above 1e-5 relative (of max(1, |ref|)).

Per case directory:
  adapter_config.json         peft save_pretrained (LoraConfig r 4, lora_alpha 8, lora_dropout 0, target_modules
                              q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, bias "none")
  adapter_model.safetensors   peft keys: base_model.model.model.layers.{i}.self_attn.{q,k,v,o}_proj.lora_{A,B}.weight,
                              base_model.model.model.layers.{i}.mlp.{gate,up,down}_proj.lora_{A,B}.weight
                              (A [r, in], B [out, r]); with modules_to_save also base_model.model.model.embed_tokens.weight
                              and base_model.model.lm_head.weight (full [V', C] copies) -- and, because the vocabulary
                              was resized, peft's save_embedding_layers="auto" also writes the wrapper's whole state:
                              <module>.modules_to_save.weight (the same trained copy again) and
                              <module>.original_module.weight (the resized base tensor)
  expected.safetensors        input_ids I32 (B, T); logits F32 (B, T, V') of the PeftModel (LoRA applied unmerged);
                              merged_logits F32 (B, T, V') of merge_and_unload() of the same model

lora_A keeps peft's kaiming init; lora_B (zero after init) is set to N(0, 0.2) so the adapter changes the output;
the modules_to_save copies are the base tensors (resized) plus N(0, 0.05) noise, drawn independently for
embed_tokens and lm_head.

Cases:
  llama_untied_llama3_bias   base llama, untied, biases on every projection; LoRA on all seven projections;
                             s = alpha / r = 2.  B 2, T 9, V' = 131.
  qwen2_tied_yarn            base qwen2, tied; the base's vocabulary is first resized 181 -> 184
                             (resize_token_embeddings, mean_resizing=False) as when tokens were added, then
                             modules_to_save=["embed_tokens", "lm_head"] (peft makes two independent trainable copies of
                             the tied tensor: the adapter unties them), use_rslora=True (s = alpha / sqrt(r) = 4).
                             B 2, T 7, ids < 184 (the new rows are used), V' = 184.
"""
import json
import os
import shutil
import sys

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
BASES = os.path.join(HERE, "..", "..", "src", "test", "resources", "golden", "llama")
ROOT = os.path.join(HERE, "..", "..", "src", "test", "resources", "golden", "peft_llama")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# name: (B, T, added tokens, modules_to_save, use_rslora, seed)
CASES = {
    "llama_untied_llama3_bias": (2, 9, 0, None, False, 11),
    "qwen2_tied_yarn": (2, 7, 3, ["embed_tokens", "lm_head"], True, 12),
}


def base_model(name, added):
    m = AutoModelForCausalLM.from_pretrained(os.path.join(BASES, name), dtype=torch.float32, attn_implementation="eager")
    if added:
        m.resize_token_embeddings(m.config.vocab_size + added, mean_resizing=False)
    m.eval()
    return m


def logits_of(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits.float().contiguous()


def make(name):
    B, T, added, save, rslora, seed = CASES[name]
    torch.manual_seed(seed)
    base = base_model(name, added)
    V = base.config.vocab_size
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TARGETS, modules_to_save=save,
                     use_rslora=rslora, bias="none", task_type="CAUSAL_LM")
    model = get_peft_model(base, cfg)
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
            elif "modules_to_save" in n:
                p.add_(torch.randn(p.shape, generator=g) * 0.05)
    model.eval()
    ids = torch.randint(0, V, (B, T), generator=g)
    logits = logits_of(model, ids)

    out = os.path.join(ROOT, name)
    shutil.rmtree(out, ignore_errors=True)
    model.save_pretrained(out)
    if os.path.exists(os.path.join(out, "README.md")):
        os.remove(os.path.join(out, "README.md"))
    with open(os.path.join(out, "adapter_config.json")) as f:
        c = json.load(f)
    c["base_model_name_or_path"] = "src/test/resources/golden/llama/" + name  # not this machine's absolute path
    with open(os.path.join(out, "adapter_config.json"), "w") as f:
        json.dump(c, f, indent=2, sort_keys=True)
    merged = model.merge_and_unload()
    merged_logits = logits_of(merged, ids)
    save_file({"input_ids": ids.to(torch.int32).contiguous(), "logits": logits,
               "merged_logits": merged_logits}, os.path.join(out, "expected.safetensors"))
    keys = sorted(load_file(os.path.join(out, "adapter_model.safetensors")).keys())
    print(f"{name}: V {V}, {len(keys)} adapter tensors (e.g. {keys[0]}), "
          f"max |peft - merged| {(logits - merged_logits).abs().max().item():.3g}, "
          f"max |peft - base| {(logits - logits_of(base_model(name, added), ids)).abs().max().item():.3g}")


def load_adapter(name, adapter_dir):
    added = CASES[name][2]
    return PeftModel.from_pretrained(base_model(name, added), adapter_dir).eval()


def max_rel(a, b):
    return ((a - b).abs() / b.abs().clamp(min=1.0)).max().item()


def verify(name):
    d = os.path.join(ROOT, name)
    e = load_file(os.path.join(d, "expected.safetensors"))
    ids = e["input_ids"].long()
    got = logits_of(load_adapter(name, d), ids)
    diff = max_rel(got, e["logits"])
    print(f"{name}: reloaded adapter logits max rel diff {diff:.3g}")
    assert diff <= 1e-6, name
    for f in os.listdir(d):
        assert os.path.getsize(os.path.join(d, f)) < 300_000, f


def check_java_output(name, adapter_dir):
    e = load_file(os.path.join(ROOT, name, "expected.safetensors"))
    ids = e["input_ids"].long()
    got = logits_of(load_adapter(name, adapter_dir), ids)
    ours = load_file(os.path.join(adapter_dir, "cpt4j_logits.safetensors"))["logits"]
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        c = json.load(f)
    diff = max_rel(ours, got)
    print(f"peft loaded {adapter_dir} (target_modules {c['target_modules']}, fan_in_fan_out {c['fan_in_fan_out']}, "
          f"modules_to_save {c['modules_to_save']}): logits max rel diff vs cpt4j {diff:.3g}")
    sys.exit(0 if diff <= 1e-5 else 1)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--check-java-output":
        check_java_output(sys.argv[2], sys.argv[3])
    names = sys.argv[1:] or list(CASES)
    for n in names:
        make(n)
    for n in names:
        verify(n)
