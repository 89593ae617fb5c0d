package dev.cpt4j.generate;

import dev.cpt4j.UserError;

import java.nio.file.Path;

/**
 * What {@code cpt4j generate} does: continue a prompt with a model (optionally with an adapter), with transformers'
 * {@code generate} settings and defaults (greedy unless {@code doSample}; top-k 50, top-p 1, temperature 1; 20 new
 * tokens when no length is given). Validated on construction; messages name the command-line flag to change. Build
 * one with {@link #builder()}.
 *
 * @param model       a model directory, a full fine-tune's output or {@code checkpoint-N} folder, or a LoRA
 *                    adapter whose base is a local directory ({@link dev.cpt4j.hf.ModelSource})
 * @param adapter     a LoRA adapter (a LoRA run's output or {@code checkpoint-N} folder), or null
 * @param prompt      the prompt text, tokenized without special tokens (transformers' {@code add_special_tokens=False})
 * @param eosTokenIds end-of-text ids, or null for the tokenizer's ({@link TextGeneration#defaultEos})
 * @param threads     worker threads
 * @see GenerationConfig for the meaning of the other settings
 */
public record GenerateOptions(Path model, Path adapter, String prompt, boolean doSample, float temperature, int topK,
                              float topP, float repetitionPenalty, int numReturnSequences, int maxLength,
                              int maxNewTokens, int minNewTokens, int[] eosTokenIds, int padTokenId, long seed,
                              int threads) {
    /** The sampling seed when none is given. */
    public static final long DEFAULT_SEED = 42;

    public GenerateOptions {
        if (model == null) throw new UserError("no model given; pass --model DIR");
        if (prompt == null || prompt.isBlank()) throw new UserError("the prompt is empty; give a non-empty --prompt or --prompt-file");
        if (threads < 1) throw new UserError("--threads must be at least 1, got " + threads);
        eosTokenIds = eosTokenIds == null ? null : eosTokenIds.clone();
        // the settings are checked before anything loads (the fields are not assigned yet: pass the parameters)
        new GenerationConfig(doSample, temperature, topK, topP, repetitionPenalty, numReturnSequences, maxLength,
                maxNewTokens, minNewTokens, eosTokenIds, padTokenId, seed);
    }

    /** The decoding settings, with {@code defaultEos} when no eos ids were given. */
    public GenerationConfig generation(int[] defaultEos) {
        return new GenerationConfig(doSample, temperature, topK, topP, repetitionPenalty, numReturnSequences, maxLength,
                maxNewTokens, minNewTokens, eosTokenIds != null ? eosTokenIds : defaultEos, padTokenId, seed);
    }

    @Override
    public int[] eosTokenIds() {
        return eosTokenIds == null ? null : eosTokenIds.clone();
    }

    /** A builder with transformers' defaults: greedy, one sequence, 20 new tokens, seed 42, all cores. */
    public static Builder builder() {
        return new Builder();
    }

    /** Builds {@link GenerateOptions} one named setting at a time; {@link #build()} validates. */
    public static final class Builder {
        private Path model, adapter;
        private String prompt;
        private boolean doSample;
        private float temperature = 1f, topP = 1f, repetitionPenalty = 1f;
        private int topK = 50, numReturnSequences = 1, maxLength = GenerationConfig.UNSET,
                maxNewTokens = GenerationConfig.UNSET, minNewTokens, padTokenId = GenerationConfig.UNSET;
        private int[] eosTokenIds;
        private long seed = DEFAULT_SEED;
        private int threads = Runtime.getRuntime().availableProcessors();

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

        /** The prompt text. Required. */
        public Builder prompt(String v) {
            prompt = v;
            return this;
        }

        /** Sample (true) or decode greedily (false, the default). */
        public Builder doSample(boolean v) {
            doSample = v;
            return this;
        }

        /** Sampling temperature (default 1). */
        public Builder temperature(float v) {
            temperature = v;
            return this;
        }

        /** Top-k filter, 0 = off (default 50). */
        public Builder topK(int v) {
            topK = v;
            return this;
        }

        /** Nucleus filter (default 1 = off). */
        public Builder topP(float v) {
            topP = v;
            return this;
        }

        /** Repetition penalty (default 1 = off). */
        public Builder repetitionPenalty(float v) {
            repetitionPenalty = v;
            return this;
        }

        /** Sequences to return, decoded together as one batch (default 1; more need {@link #doSample}). */
        public Builder numReturnSequences(int v) {
            numReturnSequences = v;
            return this;
        }

        /** Total length, prompt included (default: unset). */
        public Builder maxLength(int v) {
            maxLength = v;
            return this;
        }

        /** New tokens (default: 20 when no length is set). */
        public Builder maxNewTokens(int v) {
            maxNewTokens = v;
            return this;
        }

        /** No end-of-text before this many new tokens (default 0). */
        public Builder minNewTokens(int v) {
            minNewTokens = v;
            return this;
        }

        /** End-of-text ids (default: the tokenizer's {@code <|endoftext|>}, {@code </s>} or {@code [SEP]}). */
        public Builder eosTokenIds(int... v) {
            eosTokenIds = v;
            return this;
        }

        /** Pad id for finished sequences (default: the first eos id). */
        public Builder padTokenId(int v) {
            padTokenId = v;
            return this;
        }

        /** Sampling seed (default 42). */
        public Builder seed(long v) {
            seed = v;
            return this;
        }

        /** Worker threads (default: all cores). */
        public Builder threads(int v) {
            threads = v;
            return this;
        }

        /** The validated options. */
        public GenerateOptions build() {
            return new GenerateOptions(model, adapter, prompt, doSample, temperature, topK, topP, repetitionPenalty,
                    numReturnSequences, maxLength, maxNewTokens, minNewTokens, eosTokenIds, padTokenId, seed, threads);
        }
    }
}
