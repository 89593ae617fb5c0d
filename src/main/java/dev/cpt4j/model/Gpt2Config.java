package dev.cpt4j.model;

import dev.cpt4j.UserError;

/**
 * GPT-2 hyper-parameters as transformers' {@code GPT2Config} defines them (n_inner null means 4·n_embd).
 * Validated on construction; messages say which config.json field to change.
 *
 * @param activation one of {@code gelu_new}, {@code gelu_fast}, {@code gelu}, {@code gelu_pytorch_tanh}, {@code relu},
 *                   {@code quick_gelu}, {@code silu}
 */
public record Gpt2Config(
        int vocabSize,
        int nPositions,
        int nEmbd,
        int nLayer,
        int nHead,
        int nInner,
        String activation,
        float layerNormEpsilon,
        float initializerRange,
        float embdPdrop,
        float attnPdrop,
        float residPdrop,
        boolean tieWordEmbeddings,
        boolean scaleAttnWeights,
        boolean scaleAttnByInverseLayerIdx) implements ModelConfig {

    public static final java.util.Set<String> ACTIVATIONS =
            java.util.Set.of("gelu_new", "gelu_fast", "gelu", "gelu_pytorch_tanh", "relu", "quick_gelu", "silu");

    public Gpt2Config {
        if (vocabSize <= 0) throw new UserError("config: vocab_size must be positive, got " + vocabSize);
        if (nPositions <= 0) throw new UserError("config: n_positions must be positive, got " + nPositions);
        if (nLayer <= 0) throw new UserError("config: n_layer must be positive, got " + nLayer);
        if (nHead <= 0 || nEmbd <= 0 || nEmbd % nHead != 0)
            throw new UserError("config: n_embd (" + nEmbd + ") must be a positive multiple of n_head (" + nHead + ")");
        if (nInner <= 0) throw new UserError("config: n_inner must be positive or null, got " + nInner);
        if (!ACTIVATIONS.contains(activation))
            throw new UserError("config: activation_function '" + activation + "' is not supported; use one of " + ACTIVATIONS);
        for (float p : new float[] {embdPdrop, attnPdrop, residPdrop})
            if (p < 0 || p >= 1) throw new UserError("config: dropout probabilities must be in [0, 1), got " + p);
        if (!(layerNormEpsilon > 0)) throw new UserError("config: layer_norm_epsilon must be positive");
    }

    /** A small config with transformers' defaults for everything not given; dropout off. */
    public static Gpt2Config of(int vocabSize, int nPositions, int nEmbd, int nLayer, int nHead) {
        return new Gpt2Config(vocabSize, nPositions, nEmbd, nLayer, nHead, 4 * nEmbd, "gelu_new", 1e-5f, 0.02f,
                0f, 0f, 0f, true, true, false);
    }

    public int headSize() {
        return nEmbd / nHead;
    }

    public Gpt2Config withVocabSize(int v) {
        return new Gpt2Config(v, nPositions, nEmbd, nLayer, nHead, nInner, activation, layerNormEpsilon,
                initializerRange, embdPdrop, attnPdrop, residPdrop, tieWordEmbeddings, scaleAttnWeights,
                scaleAttnByInverseLayerIdx);
    }

    public Gpt2Config withDropout(float embd, float attn, float resid) {
        return new Gpt2Config(vocabSize, nPositions, nEmbd, nLayer, nHead, nInner, activation, layerNormEpsilon,
                initializerRange, embd, attn, resid, tieWordEmbeddings, scaleAttnWeights, scaleAttnByInverseLayerIdx);
    }

    public Gpt2Config withTiedEmbeddings(boolean tied) {
        return new Gpt2Config(vocabSize, nPositions, nEmbd, nLayer, nHead, nInner, activation, layerNormEpsilon,
                initializerRange, embdPdrop, attnPdrop, residPdrop, tied, scaleAttnWeights, scaleAttnByInverseLayerIdx);
    }

    private static final Gpt2Family FAMILY = new Gpt2Family();

    @Override
    public ModelFamily family() {
        return FAMILY;
    }

    @Override
    public String modelType() {
        return "gpt2";
    }

    @Override
    public int contextLength() {
        return nPositions;
    }

    @Override
    public int hiddenSize() {
        return nEmbd;
    }

    @Override
    public int numLayers() {
        return nLayer;
    }

    @Override
    public int numAttentionHeads() {
        return nHead;
    }

    @Override
    public Gpt2Config withoutDropout() {
        return withDropout(0f, 0f, 0f);
    }
}
