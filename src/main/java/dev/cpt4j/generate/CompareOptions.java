package dev.cpt4j.generate;

import dev.cpt4j.UserError;
import dev.cpt4j.hf.ModelSource;

import java.nio.file.Path;
import java.util.List;

/**
 * What {@code cpt4j compare} compares: two models — by default {@code model} without and with {@code adapter}; with
 * {@code baseModel} and/or {@code baseAdapter} any two (a base and its full fine-tune, two adapters, two
 * {@code checkpoint-N} folders) — on held-out perplexity and sampled continuations of the same prompts with the same
 * seed ({@link Comparison}). Held-out blocks come from a prepared store's validation split ({@code data}) or a text
 * file. Validated on construction; messages name the command-line flag to change. Build one with {@link #builder()}.
 *
 * @param model              the model compared (right column): a model directory, a full fine-tune's output or
 *                           checkpoint, or with {@code adapter} the base of that adapter
 * @param adapter            a LoRA adapter on {@code model}, or null
 * @param baseModel          the reference model (left column), or null for {@code model}'s own base
 * @param baseAdapter        a LoRA adapter on the reference model, or null
 * @param data               a prepared store whose validation split is the held-out data, or null
 * @param textFile           held-out UTF-8 text, one example per line (when {@code data} is null)
 * @param blockSize          tokens per block with {@code textFile}; 0 = {@link Evaluation#DEFAULT_BLOCK_SIZE} capped
 *                           at the model's context (eval's and train's default)
 * @param batchSize          blocks per forward pass
 * @param prompts            the prompts, one sample set each
 * @param seed               the sampling seed, the same for both models
 * @param numReturnSequences samples per prompt and model
 * @param maxNewTokens       new tokens per sample
 * @param topP               nucleus filter (sampling with top-k 50, temperature 1)
 * @param eosTokenIds        end-of-text ids, or null for the tokenizer's
 * @param threads            worker threads
 * @param neatPacking        score each document (line) of a block alone, as {@code train --neat_packing} trains
 * @param generalEvalFile    general-domain held-out text measured on both models too (forgetting), or null
 */
public record CompareOptions(Path model, Path adapter, Path baseModel, Path baseAdapter, Path data, Path textFile,
                             int blockSize, int batchSize, List<String> prompts, long seed, int numReturnSequences,
                             int maxNewTokens, float topP, int[] eosTokenIds, int threads, boolean neatPacking,
                             Path generalEvalFile) {
    public static final int DEFAULT_NUM_RETURN_SEQUENCES = 3;
    public static final int DEFAULT_MAX_NEW_TOKENS = 64;
    /** The blog's sampling: top-p 0.9. */
    public static final float DEFAULT_TOP_P = 0.9f;

    /** Options with plain packing and no general-domain text. */
    public CompareOptions(Path model, Path adapter, Path baseModel, Path baseAdapter, Path data, Path textFile,
                          int blockSize, int batchSize, List<String> prompts, long seed, int numReturnSequences,
                          int maxNewTokens, float topP, int[] eosTokenIds, int threads) {
        this(model, adapter, baseModel, baseAdapter, data, textFile, blockSize, batchSize, prompts, seed,
                numReturnSequences, maxNewTokens, topP, eosTokenIds, threads, false, null);
    }

    public CompareOptions {
        if (model == null) throw new UserError("no model given; pass --model DIR");
        if ((data == null) == (textFile == null))
            throw new UserError(data == null ? "no held-out data given; pass --text-file FILE or --data DIR"
                    : "--data and --text-file both given; use one");
        prompts = prompts == null ? List.of() : List.copyOf(prompts);
        if (prompts.isEmpty()) throw new UserError("no prompts to compare; give --prompts FILE with one prompt per line");
        if (adapter == null && baseModel == null && baseAdapter == null && !isAdapter(model))
            throw new UserError("nothing to compare --model " + model + " with; pass --adapter DIR (base vs. base + "
                    + "adapter), or --base-model DIR and/or --base-adapter DIR (any two models)");
        if (blockSize != 0 && blockSize < 2) throw new UserError("--block-size must be at least 2, got " + blockSize);
        if (batchSize < 1) throw new UserError("--batch-size must be at least 1, got " + batchSize);
        if (numReturnSequences < 1)
            throw new UserError("--num-return-sequences must be at least 1, got " + numReturnSequences);
        if (threads < 1) throw new UserError("--threads must be at least 1, got " + threads);
        eosTokenIds = eosTokenIds == null ? null : eosTokenIds.clone();
        sampling(topP, numReturnSequences, maxNewTokens, eosTokenIds, seed); // checked before anything loads
    }

    private static GenerationConfig sampling(float topP, int n, int maxNewTokens, int[] eos, long seed) {
        return new GenerationConfig(true, 1f, 50, topP, 1f, n, GenerationConfig.UNSET, maxNewTokens, 0, eos,
                GenerationConfig.UNSET, seed);
    }

    private static boolean isAdapter(Path dir) {
        return java.nio.file.Files.isRegularFile(dir.resolve(dev.cpt4j.hf.PeftAdapters.CONFIG));
    }

    /** The model compared, resolved ({@link ModelSource#resolve}). */
    public ModelSource after() {
        return ModelSource.resolve(model, adapter);
    }

    /** The reference model, resolved: {@code baseModel} (default: the compared model's base) + {@code baseAdapter}. */
    public ModelSource before(ModelSource after) {
        if (baseModel == null && baseAdapter == null) return new ModelSource(after.model(), null);
        return ModelSource.resolve(baseModel != null ? baseModel : after.model(), baseAdapter, "--base-model", "--base-adapter");
    }

    /** The sampling settings, with {@code defaultEos} when no eos ids were given. */
    public GenerationConfig generation(int[] defaultEos) {
        return sampling(topP, numReturnSequences, maxNewTokens, eosTokenIds != null ? eosTokenIds : defaultEos, seed);
    }

    @Override
    public int[] eosTokenIds() {
        return eosTokenIds == null ? null : eosTokenIds.clone();
    }

    /** A builder: 3 samples of 64 new tokens per prompt, top-p 0.9, seed 42, batch 8, the default block size. */
    public static Builder builder() {
        return new Builder();
    }

    /** Builds {@link CompareOptions} one named setting at a time; {@link #build()} validates. */
    public static final class Builder {
        private Path model, adapter, baseModel, baseAdapter, data, textFile;
        private int blockSize, batchSize = EvalOptions.DEFAULT_BATCH_SIZE, numReturnSequences = DEFAULT_NUM_RETURN_SEQUENCES,
                maxNewTokens = DEFAULT_MAX_NEW_TOKENS, threads = Runtime.getRuntime().availableProcessors();
        private List<String> prompts = List.of();
        private long seed = GenerateOptions.DEFAULT_SEED;
        private float topP = DEFAULT_TOP_P;
        private int[] eosTokenIds;
        private boolean neatPacking;
        private Path generalEvalFile;

        private Builder() {}

        /** Score each document (line) of a block alone (default: off). */
        public Builder neatPacking(boolean v) {
            neatPacking = v;
            return this;
        }

        /** General-domain held-out text measured on both models too (default: none). */
        public Builder generalEvalFile(Path v) {
            generalEvalFile = v;
            return this;
        }

        /** The model compared (right column). Required. */
        public Builder model(Path v) {
            model = v;
            return this;
        }

        /** A LoRA adapter on {@link #model} (default: none). */
        public Builder adapter(Path v) {
            adapter = v;
            return this;
        }

        /** The reference model (left column; default: {@link #model} without {@link #adapter}). */
        public Builder baseModel(Path v) {
            baseModel = v;
            return this;
        }

        /** A LoRA adapter on the reference model (default: none). */
        public Builder baseAdapter(Path v) {
            baseAdapter = v;
            return this;
        }

        /** A prepared store whose validation split is the held-out data (or give {@link #textFile}). */
        public Builder data(Path v) {
            data = v;
            return this;
        }

        /** Held-out UTF-8 text, one example per line (or give {@link #data}). */
        public Builder textFile(Path v) {
            textFile = v;
            return this;
        }

        /** Tokens per block with a text file (default 0: {@link Evaluation#DEFAULT_BLOCK_SIZE} capped at the context). */
        public Builder blockSize(int v) {
            blockSize = v;
            return this;
        }

        /** Blocks per forward pass (default 8). */
        public Builder batchSize(int v) {
            batchSize = v;
            return this;
        }

        /** The prompts. Required. */
        public Builder prompts(List<String> v) {
            prompts = v;
            return this;
        }

        /** The sampling seed, the same for both models (default 42). */
        public Builder seed(long v) {
            seed = v;
            return this;
        }

        /** Samples per prompt and model (default 3). */
        public Builder numReturnSequences(int v) {
            numReturnSequences = v;
            return this;
        }

        /** New tokens per sample (default 64). */
        public Builder maxNewTokens(int v) {
            maxNewTokens = v;
            return this;
        }

        /** Nucleus filter (default 0.9). */
        public Builder topP(float v) {
            topP = v;
            return this;
        }

        /** End-of-text ids (default: the tokenizer's). */
        public Builder eosTokenIds(int... v) {
            eosTokenIds = v;
            return this;
        }

        /** Worker threads (default: all cores). */
        public Builder threads(int v) {
            threads = v;
            return this;
        }

        /** The validated options. */
        public CompareOptions build() {
            return new CompareOptions(model, adapter, baseModel, baseAdapter, data, textFile, blockSize, batchSize,
                    prompts, seed, numReturnSequences, maxNewTokens, topP, eosTokenIds, threads, neatPacking, generalEvalFile);
        }
    }
}
