package dev.cpt4j.model.llama;

import dev.cpt4j.UserError;
import dev.cpt4j.model.ModelConfig;
import dev.cpt4j.model.ModelFamily;
import dev.cpt4j.tensor.cpu.Rope;

import java.util.Arrays;

/**
 * Hyper-parameters of the LLaMA family as transformers' {@code LlamaConfig}, {@code Qwen2Config},
 * {@code Qwen3Config} and {@code MistralConfig} define them, reduced to what changes the computation. Validated on
 * construction; messages name the config.json field to change.
 *
 * @param modelType       "llama", "qwen2", "qwen3" or "mistral" (written back unchanged)
 * @param headDim         given apart from hidden/heads (Qwen3: 128 for hidden 1024 and 16 heads)
 * @param qkvBias         q/k/v projections have biases (Qwen2 always; LLaMA/Qwen3 {@code attention_bias})
 * @param oBias           o_proj has a bias (LLaMA/Qwen3 {@code attention_bias}; never Qwen2)
 * @param mlpBias         gate/up/down have biases (LLaMA {@code mlp_bias})
 * @param qkNorm          Qwen3's per-head RMSNorm of q and k before the rotation
 * @param slidingWindow   per layer: 0 = full causal attention, w = each query sees the last w positions (itself included)
 */
public record LlamaConfig(
        String modelType,
        int vocabSize,
        int hiddenSize,
        int intermediateSize,
        int numLayers,
        int numHeads,
        int numKvHeads,
        int headDim,
        int maxPositionEmbeddings,
        float rmsNormEps,
        double ropeTheta,
        Rope.Scaling ropeScaling,
        boolean qkvBias,
        boolean oBias,
        boolean mlpBias,
        boolean qkNorm,
        boolean tieWordEmbeddings,
        int[] slidingWindow,
        float initializerRange) implements ModelConfig {

    public static final java.util.List<String> MODEL_TYPES = java.util.List.of("llama", "qwen2", "qwen3", "mistral");

    public LlamaConfig {
        if (!MODEL_TYPES.contains(modelType)) throw new UserError("config: model_type '" + modelType + "' is not one of " + MODEL_TYPES);
        if (vocabSize <= 0) throw new UserError("config: vocab_size must be positive, got " + vocabSize);
        if (hiddenSize <= 0) throw new UserError("config: hidden_size must be positive, got " + hiddenSize);
        if (intermediateSize <= 0) throw new UserError("config: intermediate_size must be positive, got " + intermediateSize);
        if (numLayers <= 0) throw new UserError("config: num_hidden_layers must be positive, got " + numLayers);
        if (numHeads <= 0) throw new UserError("config: num_attention_heads must be positive, got " + numHeads);
        if (numKvHeads <= 0 || numHeads % numKvHeads != 0)
            throw new UserError("config: num_attention_heads (" + numHeads + ") must be a multiple of num_key_value_heads ("
                    + numKvHeads + ")");
        if (headDim <= 0 || headDim % 2 != 0)
            throw new UserError("config: head_dim must be a positive even number, got " + headDim
                    + (headDim <= 0 ? "" : " (rotary embeddings rotate pairs)"));
        if (maxPositionEmbeddings <= 0) throw new UserError("config: max_position_embeddings must be positive");
        if (!(rmsNormEps > 0)) throw new UserError("config: rms_norm_eps must be positive");
        if (!(ropeTheta > 0)) throw new UserError("config: rope_theta must be positive, got " + ropeTheta);
        if (slidingWindow.length != numLayers)
            throw new UserError("config: one sliding window per layer expected, got " + slidingWindow.length);
        slidingWindow = slidingWindow.clone();
    }

    @Override
    public ModelFamily family() {
        return LlamaFamily.INSTANCE;
    }

    @Override
    public int contextLength() {
        return maxPositionEmbeddings;
    }

    @Override
    public int numAttentionHeads() {
        return numHeads;
    }

    /** Query width NH·hd (may differ from hidden_size). */
    public int qDim() {
        return numHeads * headDim;
    }

    /** Key/value width NKV·hd. */
    public int kvDim() {
        return numKvHeads * headDim;
    }

    public int window(int layer) {
        return slidingWindow[layer];
    }

    @Override
    public int[] slidingWindow() {
        return slidingWindow.clone();
    }

    @Override
    public LlamaConfig withVocabSize(int v) {
        return new LlamaConfig(modelType, v, hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads, headDim,
                maxPositionEmbeddings, rmsNormEps, ropeTheta, ropeScaling, qkvBias, oBias, mlpBias, qkNorm,
                tieWordEmbeddings, slidingWindow, initializerRange);
    }

    @Override
    public LlamaConfig withTiedEmbeddings(boolean tied) {
        return new LlamaConfig(modelType, vocabSize, hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads, headDim,
                maxPositionEmbeddings, rmsNormEps, ropeTheta, ropeScaling, qkvBias, oBias, mlpBias, qkNorm, tied,
                slidingWindow, initializerRange);
    }

    /** The family has no dropout in its forward (attention_dropout is 0 in every released config). */
    @Override
    public LlamaConfig withoutDropout() {
        return this;
    }

    /** The rotary embedding of this config. */
    public Rope rope() {
        return Rope.of(ropeScaling, ropeTheta, headDim, maxPositionEmbeddings);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof LlamaConfig c && modelType.equals(c.modelType) && vocabSize == c.vocabSize
                && hiddenSize == c.hiddenSize && intermediateSize == c.intermediateSize && numLayers == c.numLayers
                && numHeads == c.numHeads && numKvHeads == c.numKvHeads && headDim == c.headDim
                && maxPositionEmbeddings == c.maxPositionEmbeddings && rmsNormEps == c.rmsNormEps
                && ropeTheta == c.ropeTheta && ropeScaling.equals(c.ropeScaling) && qkvBias == c.qkvBias
                && oBias == c.oBias && mlpBias == c.mlpBias && qkNorm == c.qkNorm
                && tieWordEmbeddings == c.tieWordEmbeddings && Arrays.equals(slidingWindow, c.slidingWindow)
                && initializerRange == c.initializerRange;
    }

    @Override
    public int hashCode() {
        return java.util.Objects.hash(modelType, vocabSize, hiddenSize, numLayers, headDim);
    }
}
