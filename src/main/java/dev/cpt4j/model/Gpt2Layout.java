package dev.cpt4j.model;

import dev.cpt4j.tensor.ParamLayout;

/**
 * The flat parameter layout of a GPT-2, with the tensor names and shapes of transformers'
 * {@code GPT2LMHeadModel} state dict.
 *
 * <p>Orientation, stated once: every {@code Conv1D} weight (c_attn, c_proj, c_fc) is stored as HF stores it,
 * {@code [in, out]}, and applied as {@code y = x·W + b}; the embeddings {@code wte} {@code [V, C]} and the untied
 * {@code lm_head.weight} {@code [V, C]} (an {@code nn.Linear}, {@code [out, in]}) are applied as
 * {@code logits = x·Wᵀ}. So importing and exporting HF checkpoints never transposes anything.
 *
 * <p>Dimensions: V vocab, maxT positions, C width, L layers, F = n_inner.
 */
public final class Gpt2Layout {
    public static final String WTE = "transformer.wte.weight";
    public static final String WPE = "transformer.wpe.weight";
    public static final String LNF_W = "transformer.ln_f.weight";
    public static final String LNF_B = "transformer.ln_f.bias";
    public static final String LM_HEAD = "lm_head.weight";

    private Gpt2Layout() {}

    /** Name of a per-layer tensor, e.g. {@code layer(3, "attn.c_attn.weight")}. */
    public static String layer(int l, String suffix) {
        return "transformer.h." + l + "." + suffix;
    }

    /** Per-layer tensor suffixes, in HF state-dict order. */
    public static final String[] LAYER_SUFFIXES = {
        "ln_1.weight", "ln_1.bias",
        "attn.c_attn.weight", "attn.c_attn.bias",
        "attn.c_proj.weight", "attn.c_proj.bias",
        "ln_2.weight", "ln_2.bias",
        "mlp.c_fc.weight", "mlp.c_fc.bias",
        "mlp.c_proj.weight", "mlp.c_proj.bias",
    };

    public static ParamLayout of(Gpt2Config c) {
        int V = c.vocabSize(), C = c.nEmbd(), F = c.nInner();
        ParamLayout p = new ParamLayout();
        p.add(WTE, V, C);                                   // (V, C)
        p.add(WPE, c.nPositions(), C);                      // (maxT, C)
        for (int l = 0; l < c.nLayer(); l++) {
            p.add(layer(l, "ln_1.weight"), C);
            p.add(layer(l, "ln_1.bias"), C);
            p.add(layer(l, "attn.c_attn.weight"), C, 3 * C); // (C, 3C) Conv1D [in, out]
            p.add(layer(l, "attn.c_attn.bias"), 3 * C);
            p.add(layer(l, "attn.c_proj.weight"), C, C);     // (C, C)
            p.add(layer(l, "attn.c_proj.bias"), C);
            p.add(layer(l, "ln_2.weight"), C);
            p.add(layer(l, "ln_2.bias"), C);
            p.add(layer(l, "mlp.c_fc.weight"), C, F);        // (C, F)
            p.add(layer(l, "mlp.c_fc.bias"), F);
            p.add(layer(l, "mlp.c_proj.weight"), F, C);      // (F, C)
            p.add(layer(l, "mlp.c_proj.bias"), C);
        }
        p.add(LNF_W, C);
        p.add(LNF_B, C);
        if (!c.tieWordEmbeddings()) p.add(LM_HEAD, V, C);  // (V, C) nn.Linear [out, in]
        return p;
    }

    /** True for tensors AdamW must not decay: biases and LayerNorm weights (HF Trainer's rule). */
    public static boolean noDecay(String name) {
        return name.endsWith(".bias") || name.contains(".ln_") || name.startsWith("transformer.ln_f");
    }
}
