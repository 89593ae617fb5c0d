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
    float forward(int[] tokens, int[] labels, int B, int T, boolean training, long dropoutSeed);

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
        int[] lab = labels == null ? tokens : labels;
        if (lab.length < B * T) throw new IllegalArgumentException("labels shorter than B·T");
        int count = 0;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                int tg = t < T - 1 ? lab[b * T + t + 1] : -1;
                if (tg >= V) throw new IllegalArgumentException("label " + tg + " outside the vocabulary (" + V + ")");
                targets[b * T + t] = tg < 0 ? -1 : tg;
                if (tg >= 0) count++;
            }
        return count;
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
