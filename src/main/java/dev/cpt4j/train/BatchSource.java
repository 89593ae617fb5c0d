package dev.cpt4j.train;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * Token blocks for training and evaluation, with a resumable position. Implemented over the prepared token store;
 * the order of training blocks (shuffling per epoch) is the source's business, but must be a pure function of
 * its seed and cursor so that {@link #restore} reproduces the exact same sequence.
 */
public interface BatchSource {
    /** Tokens per block. */
    int blockSize();

    /** Number of training blocks (one epoch). */
    long trainBlocks();

    /** Fills {@code dst[0 … batch·blockSize)} with the next {@code batch} training blocks, starting a new epoch as needed. */
    void nextTrain(int[] dst, int batch);

    /** Number of held-out evaluation blocks. */
    long evalBlocks();

    /** Fills {@code dst} with evaluation blocks {@code [first, first+count)}. */
    void evalBlocks(int[] dst, long first, int count);

    /** Whether blocks come with document starts (neat packing): then use the methods that take {@code docStarts}. */
    default boolean packed() {
        return false;
    }

    /**
     * As {@link #nextTrain(int[], int)}, also filling {@code docStarts[0 … batch·blockSize)} with each token's document
     * start in its block when {@link #packed()} (null: plain blocks).
     */
    default void nextTrain(int[] dst, int[] docStarts, int batch) {
        if (docStarts != null) throw new UnsupportedOperationException("this batch source has no document starts");
        nextTrain(dst, batch);
    }

    /** As {@link #evalBlocks(int[], long, int)}, with document starts when {@code docStarts} is not null. */
    default void evalBlocks(int[] dst, int[] docStarts, long first, int count) {
        if (docStarts != null) throw new UnsupportedOperationException("this batch source has no document starts");
        evalBlocks(dst, first, count);
    }

    /**
     * Cumulative tokens served per source since the start of training, keyed by the source as the user gave it (in
     * the order given), or an empty map for a single source. Restored with {@link #restore}.
     */
    default java.util.Map<String, Long> tokensBySource() {
        return java.util.Map.of();
    }

    /** The position in the training stream, as JSON (stored in checkpoints verbatim). */
    JsonNode state();

    /** Returns to a position saved by {@link #state()}. */
    void restore(JsonNode state);
}
