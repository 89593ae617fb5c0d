package dev.cpt4j.generate;

import dev.cpt4j.UserError;

import java.nio.file.Path;

/**
 * What {@code cpt4j eval} measures: the held-out loss and perplexity of a model (optionally with an adapter) on a
 * text file ({@link Evaluation}). Validated on construction; messages name the command-line flag to change. Build
 * one with {@link #builder()}.
 *
 * @param model     a model directory, a full fine-tune's output or {@code checkpoint-N} folder, or a LoRA adapter
 *                  whose base is a local directory ({@link dev.cpt4j.hf.ModelSource})
 * @param adapter   a LoRA adapter (a LoRA run's output or {@code checkpoint-N} folder), or null
 * @param textFile  UTF-8 held-out text, one example per line
 * @param blockSize tokens per block; 0 = {@link Evaluation#DEFAULT_BLOCK_SIZE} capped at the model's context
 *                  (train's default)
 * @param batchSize blocks per forward pass; does not change the result
 * @param threads   worker threads
 * @param neatPacking score each document (line) of a block alone, as {@code train --neat_packing} trains
 */
public record EvalOptions(Path model, Path adapter, Path textFile, int blockSize, int batchSize, int threads,
                          boolean neatPacking) {
    /** Blocks per forward pass when not given. */
    public static final int DEFAULT_BATCH_SIZE = 8;

    /** Options with plain packing. */
    public EvalOptions(Path model, Path adapter, Path textFile, int blockSize, int batchSize, int threads) {
        this(model, adapter, textFile, blockSize, batchSize, threads, false);
    }

    public EvalOptions {
        if (model == null) throw new UserError("no model given; pass --model DIR");
        if (textFile == null) throw new UserError("no held-out text given; pass --text-file FILE");
        if (blockSize != 0 && blockSize < 2) throw new UserError("--block-size must be at least 2, got " + blockSize);
        if (batchSize < 1) throw new UserError("--batch-size must be at least 1, got " + batchSize);
        if (threads < 1) throw new UserError("--threads must be at least 1, got " + threads);
    }

    /** A builder: no adapter, the default block size, batch 8, all cores. */
    public static Builder builder() {
        return new Builder();
    }

    /** Builds {@link EvalOptions} one named setting at a time; {@link #build()} validates. */
    public static final class Builder {
        private Path model, adapter, textFile;
        private int blockSize, batchSize = DEFAULT_BATCH_SIZE, threads = Runtime.getRuntime().availableProcessors();
        private boolean neatPacking;

        private Builder() {}

        /** The model directory (or a training output, checkpoint or LoRA adapter folder). Required. */
        public Builder model(Path v) {
            model = v;
            return this;
        }

        /** A LoRA adapter applied to the model (default: none). */
        public Builder adapter(Path v) {
            adapter = v;
            return this;
        }

        /** The held-out UTF-8 text, one example per line. Required. */
        public Builder textFile(Path v) {
            textFile = v;
            return this;
        }

        /** Tokens per block (default 0: {@link Evaluation#DEFAULT_BLOCK_SIZE} capped at the model's context). */
        public Builder blockSize(int v) {
            blockSize = v;
            return this;
        }

        /** Blocks per forward pass (default 8). */
        public Builder batchSize(int v) {
            batchSize = v;
            return this;
        }

        /** Worker threads (default: all cores). */
        public Builder threads(int v) {
            threads = v;
            return this;
        }

        /** Score each document (line) of a block alone (default: off). */
        public Builder neatPacking(boolean v) {
            neatPacking = v;
            return this;
        }

        /** The validated options. */
        public EvalOptions build() {
            return new EvalOptions(model, adapter, textFile, blockSize, batchSize, threads, neatPacking);
        }
    }
}
