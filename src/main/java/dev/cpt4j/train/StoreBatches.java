package dev.cpt4j.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.UserError;
import dev.cpt4j.data.BatchCursor;
import dev.cpt4j.data.TokenBlocks;
import dev.cpt4j.data.TokenStore;

/**
 * A {@link BatchSource} over a prepared {@link TokenStore}: training blocks through a seeded, shuffling
 * {@link BatchCursor} (every epoch a fresh permutation, a batch running past an epoch's end continues into the next),
 * evaluation blocks in stored order. The cursor position goes into checkpoints as {@code {"epoch", "position"}}.
 */
public final class StoreBatches implements BatchSource {
    private final TokenBlocks train, validation;
    private final BatchCursor cursor;
    private final boolean packed;

    /** Batches of {@code batch} training blocks of {@code store}, shuffled with {@code seed}. */
    public StoreBatches(TokenStore store, int batch, long seed) {
        this(store, batch, seed, -1, -1, false);
    }

    /** As {@link #StoreBatches(TokenStore, int, long)}; with {@code neatPacking} the blocks come with their document starts. */
    public StoreBatches(TokenStore store, int batch, long seed, boolean neatPacking) {
        this(store, batch, seed, -1, -1, neatPacking);
    }

    /**
     * As {@link #StoreBatches(TokenStore, int, long)} on the first {@code maxTrain} training and {@code maxEval}
     * validation blocks (−1: all), as run_clm's {@code --max_train_samples} / {@code --max_eval_samples} select them;
     * with {@code neatPacking} the blocks come with their document starts ({@link #packed()}), which the store must
     * record.
     */
    public StoreBatches(TokenStore store, int batch, long seed, long maxTrain, long maxEval, boolean neatPacking) {
        if (neatPacking && !store.hasDocumentStarts())
            throw new UserError(store.dir() + " was prepared without document boundaries (by an older cpt4j); "
                    + "--neat_packing needs them: give --dataset_dir to prepare it again");
        this.packed = neatPacking;
        this.train = maxTrain < 0 ? store.train() : store.train().first(maxTrain);
        this.validation = maxEval < 0 ? store.validation() : store.validation().first(maxEval);
        if (train.blockCount() < 1)
            throw new UserError(store.dir() + ": the training split holds no block of " + store.blockSize() + " tokens; add "
                    + "text to --dataset_dir or lower --block_size");
        this.cursor = new BatchCursor(train, batch, seed, true);
    }

    @Override
    public int blockSize() {
        return train.blockSize();
    }

    @Override
    public long trainBlocks() {
        return train.blockCount();
    }

    @Override
    public void nextTrain(int[] dst, int batch) {
        if (batch != cursor.batchSize())
            throw new IllegalArgumentException("batch " + batch + " differs from the cursor's " + cursor.batchSize());
        cursor.next(dst);
    }

    @Override
    public boolean packed() {
        return packed;
    }

    @Override
    public void nextTrain(int[] dst, int[] docStarts, int batch) {
        if (batch != cursor.batchSize())
            throw new IllegalArgumentException("batch " + batch + " differs from the cursor's " + cursor.batchSize());
        cursor.next(dst, docStarts);
    }

    @Override
    public void evalBlocks(int[] dst, int[] docStarts, long first, int count) {
        evalBlocks(dst, first, count);
        if (docStarts == null) return;
        int T = validation.blockSize();
        for (int i = 0; i < count; i++) validation.readDocStarts(first + i, docStarts, i * T);
    }

    @Override
    public long evalBlocks() {
        return validation.blockCount();
    }

    @Override
    public void evalBlocks(int[] dst, long first, int count) {
        int T = validation.blockSize();
        for (int i = 0; i < count; i++) validation.readBlock(first + i, dst, i * T);
    }

    @Override
    public JsonNode state() {
        BatchCursor.State s = cursor.state();
        ObjectNode o = JsonNodeFactory.instance.objectNode();
        o.put("epoch", s.epoch());
        o.put("position", s.position());
        o.put("train_blocks", train.blockCount());
        if (packed) o.put("neat_packing", true);  // (absent for plain packing: such checkpoints read as before)
        return o;
    }

    @Override
    public void restore(JsonNode state) {
        if ("mixed".equals(state.path("kind").asText()))
            throw new UserError("the checkpoint was trained on several mixed sources (--interleave_probs); resume with "
                    + "the same --dataset_dir and --interleave_probs");
        if (state.path("neat_packing").asBoolean(false) != packed)
            throw new UserError("the checkpoint was trained " + (packed ? "without" : "with") + " --neat_packing; resume "
                    + (packed ? "without" : "with") + " it (the same data order and loss), or start a new --output_dir");
        long blocks = state.path("train_blocks").asLong(train.blockCount());
        if (blocks != train.blockCount())
            throw new UserError("the checkpoint was trained on " + blocks + " training blocks, the prepared data now has "
                    + train.blockCount() + "; resume with the same --dataset_dir, tokenizer and --block_size");
        cursor.restore(new BatchCursor.State(state.path("epoch").asLong(), state.path("position").asLong()));
    }
}
