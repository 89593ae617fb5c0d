package dev.cpt4j.model;

import java.util.function.ToIntFunction;

/**
 * Where every GPT-2 tensor starts in its storage, by role: the one offset table of the training engine
 * ({@link Gpt2Model}, whose frozen Conv1D weights may sit in a separate bf16 buffer) and the KV-cache decoder
 * ({@link Gpt2Decoder}), built by the same function from the same names ({@link Gpt2Layout}). With tied embeddings
 * {@link #head} is {@link #wte}.
 */
public record Gpt2Weights(int wte, int wpe, int lnfW, int lnfB, int head,
                          int[] ln1W, int[] ln1B, int[] attnW, int[] attnB, int[] projW, int[] projB,
                          int[] ln2W, int[] ln2B, int[] fcW, int[] fcB, int[] fcProjW, int[] fcProjB) {

    /** The table of {@code c}, each tensor's offset given by {@code offsetOf} (its HF name → its storage offset). */
    public static Gpt2Weights of(Gpt2Config c, ToIntFunction<String> offsetOf) {
        int L = c.nLayer();
        int wte = offsetOf.applyAsInt(Gpt2Layout.WTE);
        return new Gpt2Weights(wte, offsetOf.applyAsInt(Gpt2Layout.WPE), offsetOf.applyAsInt(Gpt2Layout.LNF_W),
                offsetOf.applyAsInt(Gpt2Layout.LNF_B), c.tieWordEmbeddings() ? wte : offsetOf.applyAsInt(Gpt2Layout.LM_HEAD),
                layer(L, "ln_1.weight", offsetOf), layer(L, "ln_1.bias", offsetOf),
                layer(L, "attn.c_attn.weight", offsetOf), layer(L, "attn.c_attn.bias", offsetOf),
                layer(L, "attn.c_proj.weight", offsetOf), layer(L, "attn.c_proj.bias", offsetOf),
                layer(L, "ln_2.weight", offsetOf), layer(L, "ln_2.bias", offsetOf),
                layer(L, "mlp.c_fc.weight", offsetOf), layer(L, "mlp.c_fc.bias", offsetOf),
                layer(L, "mlp.c_proj.weight", offsetOf), layer(L, "mlp.c_proj.bias", offsetOf));
    }

    private static int[] layer(int L, String suffix, ToIntFunction<String> offsetOf) {
        int[] o = new int[L];
        for (int l = 0; l < L; l++) o[l] = offsetOf.applyAsInt(Gpt2Layout.layer(l, suffix));
        return o;
    }
}
