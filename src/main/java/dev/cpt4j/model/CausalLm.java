package dev.cpt4j.model;

import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.RowSparseGrad;

import java.util.function.Predicate;

/**
 * A causal language model's training engine, whatever its family: one flat parameter buffer laid out by
 * {@link #layout()} (HF names and shapes), hand-written forward and backward, activations allocated once for
 * (maxBatch, maxT). Labels are the inputs shifted by one inside the model, as transformers computes the causal-LM
 * loss with {@code labels=input_ids}. Results are deterministic for a given dropout seed and thread count; not
 * thread-safe.
 */
public interface CausalLm {
    ModelConfig config();

    /** Layout of {@link #params()}. */
    ParamLayout layout();

    /** All fp32 parameters, flat; a loader writes them, the optimizer updates them in place. */
    float[] params();

    /** Gradients of the views that are not frozen, at {@link #gradOffset(String)}; backward ADDS into it. */
    float[] grads();

    /** Where view {@code name}'s gradient starts in {@link #grads()} (−1 when frozen). */
    int gradOffset(String name);

    int maxBatch();

    int maxT();

    /** HF's random init for this family, deterministic in the seed. */
    void initRandom(long seed);

    /** Views for which no weight gradient is computed (call before the first forward). */
    void setFrozen(Predicate<String> isFrozen);

    /** Multiplies every gradient backward adds (gradient accumulation). */
    void setGradScale(float s);

    void zeroGrad();

    /**
     * Mean next-token cross-entropy over (B, T) {@code tokens}; labels null means labels = tokens, negative labels
     * are ignored. With {@code training} dropout applies (seeded) and the head's gradient is already added: call
     * {@link #backward()} next. NaN when no position has a label.
     */
    default float forward(int[] tokens, int[] labels, int B, int T, boolean training, long dropoutSeed) {
        return forward(tokens, labels, null, B, T, training, dropoutSeed);
    }

    /**
     * As {@link #forward(int[], int[], int, int, boolean, long)} with documents packed in each row (neat packing):
     * {@code docStarts} (B, T) holds, for every token, the index in its row where its document begins
     * ({@link #checkDocStarts}). A token then attends only to earlier tokens of its own document, its position counts
     * from the document's start, and no position is trained on predicting the first token of the next document
     * ({@link #shiftedTargets(int[], int[], int[], int, int, int, int[])}): the result equals running every document
     * piece alone, the mean taken over all trained positions of the batch. Null: one sequence per row.
     */
    float forward(int[] tokens, int[] labels, int[] docStarts, int B, int T, boolean training, long dropoutSeed);

    /**
     * Where the next training forward's batch sits in a larger one split over ranks: the global index of its first
     * token. Dropout then draws, for each element, the mask the whole batch would draw there (0: the batch is whole).
     */
    void setDropoutOrigin(long firstToken);

    default float forward(int[] tokens, int B, int T, boolean training, long dropoutSeed) {
        return forward(tokens, null, B, T, training, dropoutSeed);
    }

    /** Eval-mode mean loss, no gradient work. */
    default float evalLoss(int[] tokens, int B, int T) {
        return forward(tokens, null, B, T, false, 0L);
    }

    /** Adds d(mean loss)/d(params) of the last training forward into {@link #grads()}. */
    void backward();

    /** Eval-mode logits (B, T, V) into {@code out}. */
    void logits(int[] tokens, int B, int T, float[] out);

    // ------------------------------------------------------------ what training a prepared model needs

    /** The layout of {@link #params()}: {@link #layout()} less any views stored in bf16 outside it. */
    default ParamLayout storageLayout() {
        return layout();
    }

    /** Where view {@code name} starts in {@link #params()}, or −1 when it is stored in bf16. */
    default int paramOffset(String name) {
        return layout().get(name).offset();
    }

    /** Sets view {@code name} from {@code src[srcOff ..]} (its size), rounding to bf16 when it is stored so. */
    default void writeView(String name, float[] src, int srcOff) {
        ParamLayout.View v = layout().get(name);
        System.arraycopy(src, srcOff, params(), paramOffset(name), v.size());
    }

    /** The row-sparse gradient of view {@code name}, or null (dense or frozen). */
    default RowSparseGrad sparseGrad(String name) {
        return null;
    }

    /**
     * Asks for a trainable, untied token embedding's gradient to be kept row-sparse ({@link #sparseGrad}); a model
     * may ignore it (the values are the same either way). Replaces and zeroes the gradients, as {@link #setFrozen}.
     */
    default void setSparseTokenEmbeddingGrad(boolean sparse) {}

    /** The opt-in phase timer ({@code -Dcpt4j.profile=true}); an engine that marks no laps returns a fresh one. */
    default PhaseProfile profile() {
        return new PhaseProfile();
    }

    /** Attaches (or with null removes) extra computation at every per-layer projection (LoRA). */
    void setLinearHook(LinearHook hook);

    /**
     * HF's causal-LM shift: {@code targets[b, t] = labels[b, t+1]} for t &lt; T−1, −1 at the last position and for
     * negative (ignored) labels; labels null means labels = tokens. Returns how many positions have a target.
     */
    static int shiftedTargets(int[] tokens, int[] labels, int B, int T, int V, int[] targets) {
        return shiftedTargets(tokens, labels, null, B, T, V, targets);
    }

    /**
     * HF's shift within each packed document: as {@link #shiftedTargets(int[], int[], int, int, int, int[])}, and −1
     * also where the next token starts a document ({@code docStarts[b, t+1] == t+1}), so the last token of a document
     * predicts nothing. docStarts null: one document per row.
     */
    static int shiftedTargets(int[] tokens, int[] labels, int[] docStarts, int B, int T, int V, int[] targets) {
        int[] lab = labels == null ? tokens : labels;
        if (lab.length < B * T) throw new IllegalArgumentException("labels shorter than B·T");
        int count = 0;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                boolean last = t == T - 1 || (docStarts != null && docStarts[b * T + t + 1] == t + 1);
                int tg = !last ? lab[b * T + t + 1] : -1;
                if (tg >= V) throw new IllegalArgumentException("label " + tg + " outside the vocabulary (" + V + ")");
                targets[b * T + t] = tg < 0 ? -1 : tg;
                if (tg >= 0) count++;
            }
        return count;
    }

    /**
     * Checks that {@code docStarts} describes documents packed in (B, T) rows: every row's first token starts a
     * document ({@code docStarts[b, 0] == 0}) and token t either starts one ({@code == t}) or continues the previous
     * token's ({@code == docStarts[b, t−1]}).
     */
    static void checkDocStarts(int[] docStarts, int B, int T) {
        if (docStarts.length < B * T) throw new IllegalArgumentException("document starts shorter than B·T");
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                int s = docStarts[b * T + t];
                if (s != (t == 0 ? 0 : t) && (t == 0 || s != docStarts[b * T + t - 1]))
                    throw new IllegalArgumentException("document start " + s + " at row " + b + ", position " + t
                            + " is neither " + t + " nor the previous token's");
            }
    }

    /** Positions with a target in a (B, T) batch packed as {@code docStarts} (null: B·(T−1)). */
    static long trainedPositions(int[] docStarts, int B, int T) {
        if (docStarts == null) return (long) B * (T - 1);
        long n = 0;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T - 1; t++) if (docStarts[b * T + t + 1] != t + 1) n++;
        return n;
    }

    /**
     * Checks a (B, T) batch against the allocated (maxB, maxT) and the vocabulary and copies its ids into
     * {@code dst}: the engines' shared entry check.
     */
    static void copyTokens(int[] toks, int B, int T, int maxB, int maxT, int V, int[] dst) {
        if (B < 1 || B > maxB || T < 1 || T > maxT)
            throw new IllegalArgumentException("batch " + B + "×" + T + " outside the allocated " + maxB + "×" + maxT);
        int N = B * T;
        if (toks.length < N) throw new IllegalArgumentException("tokens shorter than B·T");
        for (int i = 0; i < N; i++) {
            if (toks[i] < 0 || toks[i] >= V)
                throw new IllegalArgumentException("token id " + toks[i] + " outside the vocabulary (" + V + ")");
            dst[i] = toks[i];
        }
    }
}
