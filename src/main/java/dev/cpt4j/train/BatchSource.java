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

    /** The position in the training stream, as JSON (stored in checkpoints verbatim). */
    JsonNode state();

    /** Returns to a position saved by {@link #state()}. */
    void restore(JsonNode state);
}
