#!/usr/bin/env python3
"""Writes the file-format fixtures under src/test/resources/golden/io/ with the Python reference
(torch, transformers, peft, safetensors). Run from the repository root:

    /work/.venv-ref/bin/python tools/golden/make_io_fixtures.py            # make the fixtures
    mvn -q -B -o -DskipTests package                                      # build target/cpt4j.jar
    /work/.venv-ref/bin/python tools/golden/make_io_fixtures.py --java    # let cpt4j save, check transformers loads it

The second form runs tools/golden/SaveTinyModel.java (cpt4j's HfCheckpoints.load + save on tiny/), writes
java_saved/, and asserts that transformers' GPT2LMHeadModel.from_pretrained loads it with every parameter equal.
The Java tests then check that cpt4j still writes exactly those bytes, so they need no Python.

Everything is seeded; the whole directory stays well under 1 MB.
"""
import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile

import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel

OUT = os.path.join("src", "test", "resources", "golden", "io")


def tiny_config(**kw):
    # Odd sizes on purpose: vocab 61, n_inner 12 (not 4*n_embd), gelu_fast, like the seed's Wenzhong config.
    args = dict(vocab_size=61, n_positions=16, n_embd=8, n_layer=2, n_head=2, n_inner=12,
                activation_function="gelu_fast", bos_token_id=0, eos_token_id=0)
    args.update(kw)
    return GPT2Config(**args)


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return model


def params_in_layout_order(model):
    """The flat parameter vector in cpt4j's Gpt2Layout order (= the state dict order, lm_head only if untied)."""
    sd = model.state_dict()
    tied = model.config.tie_word_embeddings
    parts = [v.detach().float().reshape(-1) for k, v in sd.items()
             if not (tied and k == "lm_head.weight") and not k.endswith((".attn.bias", ".attn.masked_bias"))]
    return torch.cat(parts).numpy().astype("<f4")


def fresh(name):
    d = os.path.join(OUT, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    return d


def torch_zip_with_pickle(path, pkl_bytes):
    """A zip laid out like torch.save's, with a hand-made data.pkl."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl_bytes)
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")


class CallsOsSystem:
    """Pickles as a call to os.system (what a malicious checkpoint does); never unpickled here."""
    def __reduce__(self):
        return (os.system, ("echo cpt4j-would-have-been-owned > /tmp/cpt4j-pwned",))


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)

    # --- tiny: tied GPT-2, F32 safetensors as transformers saves it, plus the expected flat parameters.
    model = randomize(GPT2LMHeadModel(tiny_config()), 1).eval()
    d = fresh("tiny")
    model.save_pretrained(d)
    params_in_layout_order(model).tofile(os.path.join(OUT, "tiny_params.f32"))

    # --- tiny_f16 / tiny_bf16: the same weights stored in half precisions.
    for name, dt in (("tiny_f16", torch.float16), ("tiny_bf16", torch.bfloat16)):
        d = fresh(name)
        m = randomize(GPT2LMHeadModel(tiny_config()), 1).to(dt)
        m.save_pretrained(d)

    # --- tiny_sharded: two shards plus model.safetensors.index.json, written as transformers writes them.
    d = fresh("tiny_sharded")
    model.config.save_pretrained(d)
    sd = {k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    keys = list(sd)
    half = len(keys) // 2
    shards = {"model-00001-of-00002.safetensors": keys[:half], "model-00002-of-00002.safetensors": keys[half:]}
    weight_map, total = {}, 0
    for fname, ks in shards.items():
        save_file({k: sd[k] for k in ks}, os.path.join(d, fname), metadata={"format": "pt"})
        for k in ks:
            weight_map[k] = fname
            total += sd[k].numel() * 4
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)
    reloaded = GPT2LMHeadModel.from_pretrained(d)
    assert all(torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), model.state_dict().values()))

    # --- tiny_bin: pytorch_model.bin from torch.save(state_dict) — lm_head.weight shares wte's storage.
    d = fresh("tiny_bin")
    model.config.save_pretrained(d)
    torch.save(model.state_dict(), os.path.join(d, "pytorch_model.bin"))

    # --- tiny_bin_gpt2model: a GPT2Model-style save (no "transformer." prefix, no lm_head) with the old
    # attn.bias / attn.masked_bias buffers, transposed (non-contiguous) Conv1D weights and a storage offset.
    d = fresh("tiny_bin_gpt2model")
    model.config.save_pretrained(d)
    sd = {}
    for k, v in model.state_dict().items():
        if k == "lm_head.weight":
            continue
        k = k[len("transformer."):]
        if k.endswith("c_attn.weight"):
            v = v.t().contiguous().t()  # same values, column-major strides
        if k == "ln_f.bias":
            v = torch.cat([torch.full((5,), 9.0), v])[5:]  # storage offset 5
        sd[k] = v
        if k.endswith("ln_1.weight"):
            layer = k[: -len("ln_1.weight")]
            sd[layer + "attn.bias"] = torch.tril(torch.ones(16, 16, dtype=torch.bool)).view(1, 1, 16, 16)
            sd[layer + "attn.masked_bias"] = torch.tensor(-1e4)
    torch.save(sd, os.path.join(d, "pytorch_model.bin"))
    check = torch.load(os.path.join(d, "pytorch_model.bin"))
    assert not check["h.0.attn.c_attn.weight"].is_contiguous() and check["ln_f.bias"].storage_offset() == 5

    # --- tiny_untied: an untied head with its own values.
    d = fresh("tiny_untied")
    untied = randomize(GPT2LMHeadModel(tiny_config(tie_word_embeddings=False)), 2).eval()
    assert not torch.equal(untied.lm_head.weight, untied.transformer.wte.weight)
    untied.save_pretrained(d)
    params_in_layout_order(untied).tofile(os.path.join(OUT, "tiny_untied_params.f32"))

    # --- bad files
    d = fresh("bad")
    with open(os.path.join(OUT, "tiny", "model.safetensors"), "rb") as f:
        good = f.read()
    with open(os.path.join(d, "truncated.safetensors"), "wb") as f:
        f.write(good[: len(good) // 2])
    with open(os.path.join(d, "huge_header.safetensors"), "wb") as f:
        f.write((10**12).to_bytes(8, "little") + b'{"__metadata__":{}}' + b" " * 13)
    # os.system through __reduce__, protocol 2 like torch.save: GLOBAL 'posix system' (or 'nt system').
    torch_zip_with_pickle(os.path.join(d, "malicious.bin"), pickle.dumps({"x": CallsOsSystem()}, protocol=2))
    # builtins.eval hidden after a real tensor entry.
    evil = (b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01cbuiltins\neval\nq\x02X\x0b\x00\x00\x00print('hi')q\x03\x85q\x04Rq\x05s.")
    torch_zip_with_pickle(os.path.join(d, "eval.bin"), evil)
    torch.save({"w": torch.ones(2)}, os.path.join(d, "legacy.bin"), _use_new_zipfile_serialization=False)
    for f in ("malicious.bin", "eval.bin"):
        with zipfile.ZipFile(os.path.join(d, f)) as z:
            assert b"system" in z.read("archive/data.pkl") or b"eval" in z.read("archive/data.pkl")

    # --- peft: a real LoRA adapter for a tiny GPT-2 (r=4 on c_attn, wte and lm_head trained in full).
    make_peft()

    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(OUT) for f in fs)
    print(f"fixtures in {OUT}: {total} bytes")
    assert total < 1_000_000


def make_peft():
    from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict
    base = randomize(GPT2LMHeadModel(tiny_config()), 1).eval()
    lc = LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"], modules_to_save=["wte", "lm_head"],
                    lora_dropout=0.0, task_type="CAUSAL_LM", fan_in_fan_out=True)
    pm = get_peft_model(base, lc)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():  # make every adapter tensor non-trivial (lora_B starts at zero otherwise)
        for n, p in pm.named_parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=g))
    d = fresh("peft")
    pm.save_pretrained(d)
    os.remove(os.path.join(d, "README.md"))  # peft's model card: not a fixture
    sd = get_peft_model_state_dict(pm)
    expected = {k: {"shape": list(v.shape), "values": [float(x) for x in v.float().reshape(-1).tolist()]}
                for k, v in sd.items()}
    with open(os.path.join(OUT, "peft_expected.json"), "w") as f:
        json.dump(expected, f)
    # The same adapter as adapter_model.bin, with peft's ".default" key variants as a full model state dict has.
    d = fresh("peft_bin")
    shutil.copy(os.path.join(OUT, "peft", "adapter_config.json"), d)
    full = pm.state_dict()
    variants = {k: v for k, v in full.items() if ".lora_" in k or "modules_to_save.default" in k}
    assert len(variants) == len(sd)
    torch.save(variants, os.path.join(d, "adapter_model.bin"))
    # peft itself loads the safetensors adapter back.
    re = PeftModel.from_pretrained(randomize(GPT2LMHeadModel(tiny_config()), 1), os.path.join(OUT, "peft"))
    resd = get_peft_model_state_dict(re)
    assert all(torch.equal(resd[k], sd[k]) for k in sd)


def verify_java():
    """Runs cpt4j's save on tiny/ and checks that transformers loads the result with identical parameters."""
    jar = os.path.join("target", "cpt4j.jar")
    if not os.path.exists(jar):
        sys.exit("build target/cpt4j.jar first: mvn -q -B -o -DskipTests package")
    out = os.path.join(OUT, "java_saved")
    if os.path.isdir(out):
        shutil.rmtree(out)
    adapter_out = os.path.join(OUT, "java_adapter")
    if os.path.isdir(adapter_out):
        shutil.rmtree(adapter_out)
    # tools/find-jdk.sh picks a JDK >= 25 (the single-file program uses an instance main method)
    subprocess.run(["bash", "-c", ". tools/find-jdk.sh && exec java \"$@\"", "java", "-cp", jar, "tools/golden/SaveTinyModel.java", os.path.join(OUT, "tiny"), out,
                    os.path.join(OUT, "peft"), adapter_out], check=True)
    ref = GPT2LMHeadModel.from_pretrained(os.path.join(OUT, "tiny")).eval()
    got = GPT2LMHeadModel.from_pretrained(out).eval()
    assert got.config.to_dict()["n_inner"] == ref.config.n_inner
    for (k, a), (k2, b) in zip(ref.state_dict().items(), got.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    ids = torch.arange(12).view(1, 12) % ref.config.vocab_size
    assert torch.equal(ref(ids).logits, got(ids).logits)
    # and the F16 copy cpt4j writes loads as the rounded weights
    out16 = os.path.join(OUT, "java_saved_f16")
    got16 = GPT2LMHeadModel.from_pretrained(out16)
    for (k, a), (_, b) in zip(ref.state_dict().items(), got16.state_dict().items()):
        assert torch.equal(a.half(), b), k
    # peft loads the adapter cpt4j wrote, with every tensor equal to the one peft wrote
    from peft import PeftModel, get_peft_model_state_dict
    pm = PeftModel.from_pretrained(randomize(GPT2LMHeadModel(tiny_config()), 1), adapter_out)
    ref_pm = PeftModel.from_pretrained(randomize(GPT2LMHeadModel(tiny_config()), 1), os.path.join(OUT, "peft"))
    a, b = get_peft_model_state_dict(pm), get_peft_model_state_dict(ref_pm)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert pm.peft_config["default"].fan_in_fan_out and pm.peft_config["default"].r == 4
    ids = torch.arange(12).view(1, 12) % 61
    assert torch.equal(pm(ids).logits, ref_pm(ids).logits)
    print("transformers loads cpt4j's saved checkpoints and peft its adapter: parameters and logits identical")


if __name__ == "__main__":
    if "--java" in sys.argv:
        verify_java()
    else:
        main()
