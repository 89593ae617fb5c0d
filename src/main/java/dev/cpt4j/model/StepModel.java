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

    /**
     * Continuous batching: starts sequence {@code slot} with its own {@code prompt} while the other sequences keep
     * their caches (they may be mid-decode), and returns the logits array with row {@code slot} holding the
     * next-token logits after the prompt (other rows unspecified). The slot's row then takes part in {@link #next}
     * like any other; its logits equal those of a single-sequence {@link #prefill} of the same prompt.
     */
    default float[] prefillSlot(int slot, int[] prompt) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " does not start one sequence alone");
    }

    /**
     * A LoRA adapter prepared for one decoder ({@link #prepareAdapter}), applied unmerged to the sequences it is set
     * on ({@link #setAdapter}) while the base weights stay shared by all sequences.
     */
    interface Adapter {}

    /**
     * Prepares {@code adapter} for this decoder (its pairs checked against the model, its head laid out for decode
     * steps); the result can be set on any number of sequences, which then share the base weights with the others.
     */
    default Adapter prepareAdapter(UnmergedAdapter adapter) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " does not apply adapters per sequence");
    }

    /**
     * Applies {@code adapter} (null: none, the base model) to sequence {@code slot} from its next
     * {@link #prefillSlot} on.
     */
    default void setAdapter(int slot, Adapter adapter) {
        if (adapter != null)
            throw new UnsupportedOperationException(getClass().getSimpleName() + " does not apply adapters per sequence");
    }

    /** Forgets sequence {@code slot} (its cache positions are free for the next {@link #prefillSlot}). */
    default void release(int slot) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " does not release one sequence");
    }

    /**
     * Mean next-token cross-entropy of {@code tokens} (positions 0..n−2 predict 1..n−1), as the training forward
     * computes it in eval mode, through this decoder's cache: a prefill of the first token, then one step per token.
     * A decoder may override it with a faster equivalent. Forgets all sequences.
     */
    default double sequenceLoss(int[] tokens) {
        if (tokens.length < 2) throw new IllegalArgumentException("a loss needs at least 2 tokens");
        double sum = 0;
        float[] lg = prefill(new int[] {tokens[0]}, 1);
        int V = vocabSize();
        for (int t = 1; t < tokens.length; t++) {
            sum += nll(lg, 0, V, tokens[t]);
            if (t + 1 < tokens.length) lg = next(new int[] {tokens[t]}, new boolean[] {true});
        }
        return sum / (tokens.length - 1);
    }

    /** −log softmax(logits[off, off+V))[target], through the row's maximum. */
    static double nll(float[] logits, int off, int V, int target) {
        float max = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < V; j++) max = Math.max(max, logits[off + j]);
        double z = 0;
        for (int j = 0; j < V; j++) z += Math.exp(logits[off + j] - max);
        return max + Math.log(z) - logits[off + target];
    }
}
