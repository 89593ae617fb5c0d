package dev.cpt4j.generate;

import dev.cpt4j.UserError;

import java.util.Arrays;

/**
 * Decoding settings with the meaning and defaults of transformers' {@code GenerationConfig} (greedy unless
 * {@code doSample}; with sampling, {@code top_k} 50, {@code top_p} 1, {@code temperature} 1; 20 new tokens when no
 * length is given). Validated on construction; messages name the command-line flag to change.
 *
 * @param maxLength    total length, prompt included (HF {@code max_length}); {@link #UNSET} if not given
 * @param maxNewTokens new tokens (HF {@code max_new_tokens}); {@link #UNSET} if not given. Giving both is an error.
 * @param minNewTokens eos is suppressed until this many tokens were generated (HF {@code min_new_tokens})
 * @param eosTokenIds  generation of a sequence stops at any of these; empty means never
 * @param padTokenId   fills finished sequences (HF semantics); {@link #UNSET} means the first eos id
 * @param topK         0 disables top-k
 */
public record GenerationConfig(
        boolean doSample,
        float temperature,
        int topK,
        float topP,
        float repetitionPenalty,
        int numReturnSequences,
        int maxLength,
        int maxNewTokens,
        int minNewTokens,
        int[] eosTokenIds,
        int padTokenId,
        long seed) {

    /** Marks a length or id that was not given. */
    public static final int UNSET = -1;

    /** HF's default when neither max_length nor max_new_tokens is set: 20 new tokens. */
    public static final int DEFAULT_NEW_TOKENS = 20;

    public GenerationConfig {
        eosTokenIds = eosTokenIds == null ? new int[0] : eosTokenIds.clone();
        if (!(temperature > 0) || !Float.isFinite(temperature))
            throw new UserError("--temperature must be a positive number, got " + temperature
                    + (temperature == 0 ? " (for greedy decoding use --do-sample false)" : ""));
        if (topK < 0) throw new UserError("--top-k must be 0 (off) or positive, got " + topK);
        if (!(topP >= 0 && topP <= 1)) throw new UserError("--top-p must be in [0, 1], got " + topP);
        if (!(repetitionPenalty > 0) || !Float.isFinite(repetitionPenalty))
            throw new UserError("--repetition-penalty must be a positive number, got " + repetitionPenalty);
        if (numReturnSequences < 1)
            throw new UserError("--num-return-sequences must be at least 1, got " + numReturnSequences);
        if (!doSample && numReturnSequences > 1)
            throw new UserError("greedy decoding returns one sequence; use --do-sample true for --num-return-sequences "
                    + numReturnSequences);
        if (maxLength != UNSET && maxNewTokens != UNSET)
            throw new UserError("--max-length and --max-new-tokens both given; use only one (--max-length counts the prompt)");
        if (maxLength != UNSET && maxLength < 1) throw new UserError("--max-length must be positive, got " + maxLength);
        if (maxNewTokens != UNSET && maxNewTokens < 1)
            throw new UserError("--max-new-tokens must be positive, got " + maxNewTokens);
        if (minNewTokens < 0) throw new UserError("--min-new-tokens must be 0 or more, got " + minNewTokens);
        for (int e : eosTokenIds) if (e < 0) throw new UserError("--eos-token-id must be a token id (>= 0), got " + e);
        if (padTokenId < UNSET) throw new UserError("--pad-token-id must be a token id (>= 0), got " + padTokenId);
    }

    /** Greedy decoding, one sequence, HF defaults otherwise. */
    public static GenerationConfig greedy(int maxNewTokens, int... eosTokenIds) {
        return new GenerationConfig(false, 1f, 50, 1f, 1f, 1, UNSET, maxNewTokens, 0, eosTokenIds, UNSET, 0L);
    }

    /** The seed recipe's sampling: top-p 0.9 (and HF's default top-k 50). */
    public static GenerationConfig sampling(float topP, int numReturnSequences, int maxNewTokens, long seed, int... eosTokenIds) {
        return new GenerationConfig(true, 1f, 50, topP, 1f, numReturnSequences, UNSET, maxNewTokens, 0, eosTokenIds,
                UNSET, seed);
    }

    /** The token that fills finished sequences: pad, else the first eos, else 0 (then nothing finishes). */
    public int effectivePadTokenId() {
        if (padTokenId != UNSET) return padTokenId;
        return eosTokenIds.length > 0 ? eosTokenIds[0] : 0;
    }

    /**
     * How many new tokens to generate for a prompt of {@code promptLength} tokens on a model with
     * {@code contextLength} positions, with HF's rules; a prompt or length that does not fit is a {@link UserError}.
     */
    public int newTokens(int promptLength, int contextLength) {
        if (promptLength == 0) throw new UserError("the prompt is empty (no tokens); give a non-empty --prompt or --prompt-file");
        if (promptLength >= contextLength)
            throw new UserError("the prompt has " + promptLength + " tokens but the model's context is " + contextLength
                    + " positions; shorten the prompt to at most " + (contextLength - 1) + " tokens");
        if (maxNewTokens != UNSET) {
            if (promptLength + maxNewTokens > contextLength)
                throw new UserError("prompt (" + promptLength + " tokens) + --max-new-tokens " + maxNewTokens
                        + " exceeds the model's context of " + contextLength + "; use --max-new-tokens "
                        + (contextLength - promptLength) + " or less");
            return maxNewTokens;
        }
        if (maxLength != UNSET) {
            if (maxLength <= promptLength)
                throw new UserError("--max-length " + maxLength + " counts the prompt, which already has " + promptLength
                        + " tokens; raise --max-length or use --max-new-tokens");
            if (maxLength > contextLength)
                throw new UserError("--max-length " + maxLength + " exceeds the model's context of " + contextLength
                        + " positions; use --max-length " + contextLength + " or less");
            return maxLength - promptLength;
        }
        // HF: max_length = 20 + prompt length, capped at the model's max_position_embeddings
        return Math.min(DEFAULT_NEW_TOKENS, contextLength - promptLength);
    }

    boolean isEos(int token) {
        for (int e : eosTokenIds) if (e == token) return true;
        return false;
    }

    @Override
    public int[] eosTokenIds() {
        return eosTokenIds.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GenerationConfig g && doSample == g.doSample && temperature == g.temperature
                && topK == g.topK && topP == g.topP && repetitionPenalty == g.repetitionPenalty
                && numReturnSequences == g.numReturnSequences && maxLength == g.maxLength
                && maxNewTokens == g.maxNewTokens && minNewTokens == g.minNewTokens
                && Arrays.equals(eosTokenIds, g.eosTokenIds) && padTokenId == g.padTokenId && seed == g.seed;
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(eosTokenIds) * 31 + Long.hashCode(seed) + numReturnSequences;
    }

    @Override
    public String toString() {
        return "GenerationConfig[doSample=" + doSample + ", temperature=" + temperature + ", topK=" + topK + ", topP="
                + topP + ", repetitionPenalty=" + repetitionPenalty + ", numReturnSequences=" + numReturnSequences
                + ", maxLength=" + maxLength + ", maxNewTokens=" + maxNewTokens + ", minNewTokens=" + minNewTokens
                + ", eosTokenIds=" + Arrays.toString(eosTokenIds) + ", padTokenId=" + padTokenId + ", seed=" + seed + "]";
    }
}
