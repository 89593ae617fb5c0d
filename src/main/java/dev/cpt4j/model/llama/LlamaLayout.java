package dev.cpt4j.model.llama;

import dev.cpt4j.tensor.ParamLayout;

/**
 * The flat parameter layout of a LLaMA-family causal LM with the tensor names and shapes of transformers'
 * {@code LlamaForCausalLM} (and the Qwen2/Qwen3/Mistral classes, which share them).
 *
 * <p>Orientation, stated once: every projection is an {@code nn.Linear}, stored as HF stores it, {@code [out, in]},
 * and applied as {@code y = x·Wᵀ + b}; {@code embed_tokens} and an untied {@code lm_head} are {@code [V, C]}.
 * Importing and exporting HF checkpoints never transposes anything.
 *
 * <p>Dimensions: V vocab, C hidden, L layers, F intermediate, Q = NH·hd query width, K = NKV·hd key/value width.
 */
public final class LlamaLayout {
    public static final String EMBED = "model.embed_tokens.weight";
    public static final String NORM = "model.norm.weight";
    public static final String LM_HEAD = "lm_head.weight";

    private LlamaLayout() {}

    /** Name of a per-layer tensor, e.g. {@code layer(3, "self_attn.q_proj.weight")}. */
    public static String layer(int l, String suffix) {
        return "model.layers." + l + "." + suffix;
    }

    public static ParamLayout of(LlamaConfig c) {
        int V = c.vocabSize(), C = c.hiddenSize(), F = c.intermediateSize(), Q = c.qDim(), K = c.kvDim();
        ParamLayout p = new ParamLayout();
        p.add(EMBED, V, C);
        for (int l = 0; l < c.numLayers(); l++) {
            p.add(layer(l, "self_attn.q_proj.weight"), Q, C);
            if (c.qkvBias()) p.add(layer(l, "self_attn.q_proj.bias"), Q);
            p.add(layer(l, "self_attn.k_proj.weight"), K, C);
            if (c.qkvBias()) p.add(layer(l, "self_attn.k_proj.bias"), K);
            p.add(layer(l, "self_attn.v_proj.weight"), K, C);
            if (c.qkvBias()) p.add(layer(l, "self_attn.v_proj.bias"), K);
            p.add(layer(l, "self_attn.o_proj.weight"), C, Q);
            if (c.oBias()) p.add(layer(l, "self_attn.o_proj.bias"), C);
            if (c.qkNorm()) {
                p.add(layer(l, "self_attn.q_norm.weight"), c.headDim());
                p.add(layer(l, "self_attn.k_norm.weight"), c.headDim());
            }
            p.add(layer(l, "mlp.gate_proj.weight"), F, C);
            if (c.mlpBias()) p.add(layer(l, "mlp.gate_proj.bias"), F);
            p.add(layer(l, "mlp.up_proj.weight"), F, C);
            if (c.mlpBias()) p.add(layer(l, "mlp.up_proj.bias"), F);
            p.add(layer(l, "mlp.down_proj.weight"), C, F);
            if (c.mlpBias()) p.add(layer(l, "mlp.down_proj.bias"), C);
            p.add(layer(l, "input_layernorm.weight"), C);
            p.add(layer(l, "post_attention_layernorm.weight"), C);
        }
        p.add(NORM, C);
        if (!c.tieWordEmbeddings()) p.add(LM_HEAD, V, C);
        return p;
    }

    /** True for tensors AdamW must not decay: biases and RMSNorm weights (HF Trainer's rule: no bias, no norm). */
    public static boolean noDecay(String name) {
        return name.endsWith(".bias") || name.endsWith("norm.weight");
    }
}
