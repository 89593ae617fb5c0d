package dev.cpt4j.model.llama;

import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.WeightStore;

/**
 * Every tensor of a LLaMA-family model by role: the one weight table shared by the training engine
 * ({@link LlamaModel}, where every tensor is an offset into its flat fp32 buffer) and the KV-cache decoder
 * ({@link LlamaDecoder}, which also takes tensors stored one by one, fp32 or bf16, for models past one buffer's
 * reach). Absent tensors (biases, q/k norms, an untied head) are null; with tied embeddings {@link #head} is the
 * embedding.
 */
public record LlamaWeights(WeightStore.Tensor embed, WeightStore.Tensor norm, WeightStore.Tensor head,
                           WeightStore.Tensor[] q, WeightStore.Tensor[] qb, WeightStore.Tensor[] k, WeightStore.Tensor[] kb,
                           WeightStore.Tensor[] v, WeightStore.Tensor[] vb, WeightStore.Tensor[] o, WeightStore.Tensor[] ob,
                           WeightStore.Tensor[] qNorm, WeightStore.Tensor[] kNorm,
                           WeightStore.Tensor[] gate, WeightStore.Tensor[] gateB, WeightStore.Tensor[] up,
                           WeightStore.Tensor[] upB, WeightStore.Tensor[] down, WeightStore.Tensor[] downB,
                           WeightStore.Tensor[] ln1, WeightStore.Tensor[] ln2) {

    /** The table over flat {@code params} laid out by {@code layout} (= {@link LlamaLayout#of}(c)). */
    public static LlamaWeights of(LlamaConfig c, ParamLayout layout, float[] params) {
        if (params.length < layout.size())
            throw new IllegalArgumentException("params has " + params.length + " floats, layout needs " + layout.size());
        return of(c, WeightStore.of(layout, params));
    }

    /** The table over a store holding every tensor of {@link LlamaLayout#of}(c). */
    public static LlamaWeights of(LlamaConfig c, WeightStore s) {
        int L = c.numLayers();
        WeightStore.Tensor embed = required(s, LlamaLayout.EMBED);
        return new LlamaWeights(embed, required(s, LlamaLayout.NORM),
                c.tieWordEmbeddings() ? embed : required(s, LlamaLayout.LM_HEAD),
                layer(s, L, "self_attn.q_proj.weight"), layer(s, L, "self_attn.q_proj.bias"),
                layer(s, L, "self_attn.k_proj.weight"), layer(s, L, "self_attn.k_proj.bias"),
                layer(s, L, "self_attn.v_proj.weight"), layer(s, L, "self_attn.v_proj.bias"),
                layer(s, L, "self_attn.o_proj.weight"), layer(s, L, "self_attn.o_proj.bias"),
                layer(s, L, "self_attn.q_norm.weight"), layer(s, L, "self_attn.k_norm.weight"),
                layer(s, L, "mlp.gate_proj.weight"), layer(s, L, "mlp.gate_proj.bias"),
                layer(s, L, "mlp.up_proj.weight"), layer(s, L, "mlp.up_proj.bias"),
                layer(s, L, "mlp.down_proj.weight"), layer(s, L, "mlp.down_proj.bias"),
                layer(s, L, "input_layernorm.weight"), layer(s, L, "post_attention_layernorm.weight"));
    }

    /** The offset of a tensor in its array, −1 for an absent one. */
    static int off(WeightStore.Tensor t) {
        return t == null ? -1 : t.offset();
    }

    private static WeightStore.Tensor required(WeightStore s, String name) {
        WeightStore.Tensor t = s.get(name);
        if (t == null) throw new IllegalArgumentException("no tensor " + name);
        return t;
    }

    private static WeightStore.Tensor[] layer(WeightStore s, int L, String suffix) {
        WeightStore.Tensor[] t = new WeightStore.Tensor[L];
        for (int l = 0; l < L; l++) t[l] = s.get(LlamaLayout.layer(l, suffix));
        return t;
    }
}
