package dev.cpt4j.data;

import dev.cpt4j.UserError;

import java.nio.file.Path;
import java.util.List;

/**
 * What {@link Prepare} builds. Validated on construction; messages name the CLI flag to change.
 *
 * @param dataset            directories (walked recursively) and/or corpus files
 * @param output             the store directory (created if missing; must be empty or a cpt4j store)
 * @param blockSize          tokens per block (T), at least 1
 * @param validationFraction fraction of blocks held out, in [0, 1): 0.001 = 0.1 % (as the seed's
 *                           {@code --validation_split_percentage}, which despite its name is a fraction)
 * @param workers            tokenizer threads, at least 1
 * @param seed               seed of the validation split
 * @param skipInvalidLines   skip (and count) lines that are not valid UTF-8 / JSON instead of failing
 * @param maxBlockSize       the model's context length when known (block size must not exceed it), else 0
 * @param documentStarts     the store must record where documents start ({@code --neat_packing}): an older store
 *                           without them is prepared again (new stores always record them)
 */
public record PrepareOptions(List<Path> dataset, Path output, int blockSize, double validationFraction, int workers,
                             long seed, boolean skipInvalidLines, int maxBlockSize, boolean documentStarts) {
    /** Default split seed, as {@code transformers.TrainingArguments.seed}. */
    public static final long DEFAULT_SEED = 42;
    /**
     * {@code run_clm_pt_with_peft.py}'s default {@code --validation_split_percentage} (a fraction: 5 %), shared by
     * {@code prepare} and {@code train} so that a {@code prepare} followed by a {@code train} with the same flags
     * reuses the cache.
     */
    public static final double DEFAULT_VALIDATION_FRACTION = 0.05;

    /** Options that accept a store without document starts. */
    public PrepareOptions(List<Path> dataset, Path output, int blockSize, double validationFraction, int workers,
                          long seed, boolean skipInvalidLines, int maxBlockSize) {
        this(dataset, output, blockSize, validationFraction, workers, seed, skipInvalidLines, maxBlockSize, false);
    }

    public PrepareOptions {
        dataset = List.copyOf(dataset);
        if (dataset.isEmpty()) throw new UserError("no dataset given; pass --dataset_dir DIR");
        if (output == null) throw new UserError("no output directory given; pass --output DIR (or --data_cache_dir DIR)");
        if (blockSize < 1) throw new UserError("--block_size must be at least 1, got " + blockSize + "; the seed uses 512");
        if (maxBlockSize > 0 && blockSize > maxBlockSize) {
            throw new UserError("--block_size " + blockSize + " is larger than the model's context of " + maxBlockSize
                    + " positions; pass --block_size " + maxBlockSize + " or less");
        }
        if (!(validationFraction >= 0 && validationFraction < 1)) {
            throw new UserError("--validation_split_percentage is a fraction in [0, 1) (0.001 = 0.1 %), got "
                    + validationFraction + "; for 5 % pass 0.05");
        }
        if (workers < 1) throw new UserError("--preprocessing_num_workers must be at least 1, got " + workers);
        if (maxBlockSize < 0) throw new IllegalArgumentException("maxBlockSize must be >= 0");
    }

    /** Options with the defaults: validation fraction 0.05, all cores, seed 42, strict input, no context limit. */
    public static PrepareOptions of(List<Path> dataset, Path output, int blockSize) {
        return new PrepareOptions(dataset, output, blockSize, DEFAULT_VALIDATION_FRACTION,
                Runtime.getRuntime().availableProcessors(), DEFAULT_SEED, false, 0);
    }

    public PrepareOptions withValidationFraction(double f) {
        return new PrepareOptions(dataset, output, blockSize, f, workers, seed, skipInvalidLines, maxBlockSize, documentStarts);
    }

    public PrepareOptions withWorkers(int k) {
        return new PrepareOptions(dataset, output, blockSize, validationFraction, k, seed, skipInvalidLines, maxBlockSize, documentStarts);
    }

    public PrepareOptions withSeed(long s) {
        return new PrepareOptions(dataset, output, blockSize, validationFraction, workers, s, skipInvalidLines, maxBlockSize, documentStarts);
    }

    public PrepareOptions withSkipInvalidLines(boolean skip) {
        return new PrepareOptions(dataset, output, blockSize, validationFraction, workers, seed, skip, maxBlockSize, documentStarts);
    }

    /** Whether the store must record document starts (see {@link #documentStarts()}). */
    public PrepareOptions withDocumentStarts(boolean need) {
        return new PrepareOptions(dataset, output, blockSize, validationFraction, workers, seed, skipInvalidLines, maxBlockSize, need);
    }

    /** The model's context length: a larger block size is refused. */
    public PrepareOptions withMaxBlockSize(int max) {
        return new PrepareOptions(dataset, output, blockSize, validationFraction, workers, seed, skipInvalidLines, max, documentStarts);
    }

    /** A builder with the defaults of {@link #of}: validation fraction 0.001, all cores, seed 42, strict input. */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Builds {@link PrepareOptions} one named setting at a time; {@link #build()} validates.
     *
     * <pre>{@code
     * PrepareOptions o = PrepareOptions.builder()
     *         .dataset(Path.of("corpus"))
     *         .output(Path.of("cache"))
     *         .blockSize(512)
     *         .build();
     * }</pre>
     */
    public static final class Builder {
        private List<Path> dataset = List.of();
        private Path output;
        private int blockSize;
        private double validationFraction = DEFAULT_VALIDATION_FRACTION;
        private int workers = Runtime.getRuntime().availableProcessors();
        private long seed = DEFAULT_SEED;
        private boolean skipInvalidLines;
        private int maxBlockSize;
        private boolean documentStarts;

        private Builder() {}

        /** Corpus directories (walked recursively) and/or files. Required. */
        public Builder dataset(Path... v) {
            dataset = List.of(v);
            return this;
        }

        /** Corpus directories and/or files. Required. */
        public Builder dataset(List<Path> v) {
            dataset = v;
            return this;
        }

        /** The store directory (new, empty, or a previous store). Required. */
        public Builder output(Path v) {
            output = v;
            return this;
        }

        /** Tokens per block. Required. */
        public Builder blockSize(int v) {
            blockSize = v;
            return this;
        }

        /** Fraction of blocks held out for validation, in [0, 1) (default {@value PrepareOptions#DEFAULT_VALIDATION_FRACTION}). */
        public Builder validationFraction(double v) {
            validationFraction = v;
            return this;
        }

        /** Tokenizer threads (default: all cores). */
        public Builder workers(int v) {
            workers = v;
            return this;
        }

        /** Seed of the validation split (default {@value PrepareOptions#DEFAULT_SEED}). */
        public Builder seed(long v) {
            seed = v;
            return this;
        }

        /** Skip (and count) lines that are not valid UTF-8 / JSON instead of failing (default false). */
        public Builder skipInvalidLines(boolean v) {
            skipInvalidLines = v;
            return this;
        }

        /** The model's context length: a larger block size is refused (default 0: no limit). */
        public Builder maxBlockSize(int v) {
            maxBlockSize = v;
            return this;
        }

        /**
         * The store must record where documents start (for {@code --neat_packing}): a store prepared before cpt4j
         * recorded them is prepared again (default false: any store is reused; new stores always record them).
         */
        public Builder documentStarts(boolean v) {
            documentStarts = v;
            return this;
        }

        /** The validated options. */
        public PrepareOptions build() {
            return new PrepareOptions(dataset, output, blockSize, validationFraction, workers, seed, skipInvalidLines,
                    maxBlockSize, documentStarts);
        }
    }
}
