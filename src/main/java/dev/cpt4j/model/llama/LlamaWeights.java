package dev.cpt4j.model.llama;

import dev.cpt4j.tensor.ParamLayout;

/**
 * Where every tensor of a LLaMA-family model lives in its flat parameter buffer: the one offset table shared by the
 * training engine ({@link LlamaModel}) and the KV-cache decoder ({@link LlamaDecoder}). Offsets of absent tensors
 * (biases, q/k norms, an untied head) are −1; with tied embeddings {@link #head} is the embedding's offset.
 */
public record LlamaWeights(float[] params, int embed, int norm, int head,
                           int[] q, int[] qb, int[] k, int[] kb, int[] v, int[] vb, int[] o, int[] ob,
                           int[] qNorm, int[] kNorm, int[] gate, int[] gateB, int[] up, int[] upB, int[] down, int[] downB,
                           int[] ln1, int[] ln2) {

    /** The table of {@code params} laid out by {@code layout} (= {@link LlamaLayout#of}(c)). */
    public static LlamaWeights of(LlamaConfig c, ParamLayout layout, float[] params) {
        if (params.length < layout.size())
            throw new IllegalArgumentException("params has " + params.length + " floats, layout needs " + layout.size());
        int L = c.numLayers();
        int embed = layout.get(LlamaLayout.EMBED).offset();
        return new LlamaWeights(params, embed, layout.get(LlamaLayout.NORM).offset(),
                c.tieWordEmbeddings() ? embed : layout.get(LlamaLayout.LM_HEAD).offset(),
                offsets(layout, L, "self_attn.q_proj.weight"), offsets(layout, L, "self_attn.q_proj.bias"),
                offsets(layout, L, "self_attn.k_proj.weight"), offsets(layout, L, "self_attn.k_proj.bias"),
                offsets(layout, L, "self_attn.v_proj.weight"), offsets(layout, L, "self_attn.v_proj.bias"),
                offsets(layout, L, "self_attn.o_proj.weight"), offsets(layout, L, "self_attn.o_proj.bias"),
                offsets(layout, L, "self_attn.q_norm.weight"), offsets(layout, L, "self_attn.k_norm.weight"),
                offsets(layout, L, "mlp.gate_proj.weight"), offsets(layout, L, "mlp.gate_proj.bias"),
                offsets(layout, L, "mlp.up_proj.weight"), offsets(layout, L, "mlp.up_proj.bias"),
                offsets(layout, L, "mlp.down_proj.weight"), offsets(layout, L, "mlp.down_proj.bias"),
                offsets(layout, L, "input_layernorm.weight"), offsets(layout, L, "post_attention_layernorm.weight"));
    }

    private static int[] offsets(ParamLayout layout, int L, String suffix) {
        int[] o = new int[L];
        for (int l = 0; l < L; l++) {
            String n = LlamaLayout.layer(l, suffix);
            o[l] = layout.has(n) ? layout.get(n).offset() : -1;
        }
        return o;
    }
}
