package dev.cpt4j.model;

/**
 * The hyper-parameters of one model, whatever its family: what code above the model package may ask of a config
 * without knowing the architecture. Each family's record ({@link Gpt2Config}, {@code LlamaConfig}) implements it
 * and is validated in its own compact constructor.
 */
public interface ModelConfig {
    /** The family that parses, lays out and runs this config. */
    ModelFamily family();

    /** transformers' {@code model_type} ("gpt2", "llama", "qwen2", …). */
    String modelType();

    /** Embedding rows (config.json's vocab_size; may be larger than the tokenizer, as Qwen pads it). */
    int vocabSize();

    /** Most positions a sequence may have (n_positions / max_position_embeddings). */
    int contextLength();

    /** Width of the residual stream. */
    int hiddenSize();

    int numLayers();

    /** Attention (query) heads per layer. */
    int numAttentionHeads();

    boolean tieWordEmbeddings();

    /** This config with {@code v} embedding rows (a resized vocabulary). */
    ModelConfig withVocabSize(int v);

    /** This config with the output head tied to (or untied from) the token embedding. */
    ModelConfig withTiedEmbeddings(boolean tied);

    /** This config with every dropout probability set to zero (evaluation, benchmarks, decoding). */
    ModelConfig withoutDropout();
}
