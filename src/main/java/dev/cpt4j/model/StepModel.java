package dev.cpt4j.model;

/**
 * A causal language model that decodes N sequences together, one token per step, keeping its own state (a KV
 * cache) between calls. Returned logits arrays are owned by the model and overwritten by the next call. Each
 * family's decoder implements it ({@link ModelFamily#decoder}).
 */
public interface StepModel {
    /** Width of a logits row (the output vocabulary). */
    int vocabSize();

    /** Most positions a sequence may have (the model's context, e.g. GPT-2's n_positions). */
    int contextLength();

    /** Most sequences one prefill may start. */
    int maxSequences();

    /** Most positions (prompt + new tokens) a sequence may reach in this model's cache. */
    int maxLength();

    /**
     * Forgets all sequences and starts {@code numSeq} sequences that share {@code prompt}; returns the next-token
     * logits after the prompt, {@code (numSeq, V)} row-major (all rows equal).
     */
    float[] prefill(int[] prompt, int numSeq);

    /**
     * Appends {@code lastTokens[n]} to every sequence n with {@code active[n]} and returns the next-token logits,
     * {@code (numSeq, V)}; rows of inactive sequences are left unspecified (they may be skipped).
     */
    float[] next(int[] lastTokens, boolean[] active);
}
