package dev.cpt4j.generate;

import java.util.random.RandomGenerator;

/**
 * Picks the next token of each sequence from its logits, as transformers' {@code _sample} does: the logits processors
 * in the order {@code _get_logits_processor} builds them (repetition penalty, then min-new-tokens eos suppression),
 * then for sampling the warpers temperature → top-k → top-p, then softmax and a multinomial draw; without sampling
 * the argmax (first index on ties, as {@code torch.argmax}).
 *
 * <p>Holds one row of scratch and, per sequence, the set of ids seen so far (for the repetition penalty); allocated
 * once for the whole generation. Draws come from the {@link RandomGenerator} passed in, one {@code nextDouble()} per
 * sampled token, sequences in order, so a seed fixes the output.
 */
public final class TokenChooser {
    private final GenerationConfig cfg;
    private final int V, numSeq;
    private final int[] eos;
    private final boolean[][] seen;   // (N, V) whether a token occurs in sequence n
    private final int[][] seenList;   // (N, ≤V) the distinct ids of sequence n
    private final int[] seenCount;    // (N)
    private final int[] generated;    // (N) new tokens so far
    private final float[] rowScratch; // (V)
    private final double[] probs;     // (V)
    private final long[] keys;        // (V)
    private final int[] cand;         // (V) ids left after top-k, ascending
    private int nCand = -1;           // entries of cand for the row last processed; -1: all V

    public TokenChooser(GenerationConfig cfg, int vocabSize, int numSeq) {
        this.cfg = cfg;
        this.V = vocabSize;
        this.numSeq = numSeq;
        this.eos = cfg.eosTokenIds();
        boolean penalty = cfg.repetitionPenalty() != 1f;
        this.seen = new boolean[penalty ? numSeq : 0][];
        this.seenList = new int[penalty ? numSeq : 0][];
        for (int n = 0; n < seen.length; n++) {
            seen[n] = new boolean[V];
            seenList[n] = new int[V];
        }
        this.seenCount = new int[numSeq];
        this.generated = new int[numSeq];
        this.rowScratch = new float[V];
        this.probs = new double[V];
        this.keys = new long[V];
        this.cand = new int[V];
    }

    /** Records the prompt as the start of every sequence. */
    public void start(int[] prompt) {
        for (int n = 0; n < numSeq; n++) {
            generated[n] = 0;
            seenCount[n] = 0;
            if (seen.length > 0) java.util.Arrays.fill(seen[n], false);
            for (int t : prompt) remember(n, t);
        }
    }

    /** Records the token appended to sequence n (the chosen one, or pad for a finished sequence). */
    public void append(int n, int token) {
        generated[n]++;
        remember(n, token);
    }

    private void remember(int n, int t) {
        if (seen.length == 0 || t < 0 || t >= V || seen[n][t]) return;
        seen[n][t] = true;
        seenList[n][seenCount[n]++] = t;
    }

    /**
     * Applies the processors (and warpers, when sampling) to row n of {@code logits}, {@code (N, V)}, in place; the
     * row then holds HF's processed {@code scores} for that step.
     */
    public void process(float[] logits, int n) {
        int off = n * V;
        nCand = -1;
        if (cfg.repetitionPenalty() != 1f)
            LogitsProcessors.repetitionPenalty(logits, off, V, seenList[n], seenCount[n], cfg.repetitionPenalty());
        if (generated[n] < cfg.minNewTokens()) LogitsProcessors.suppress(logits, off, V, eos);
        if (!cfg.doSample()) return;
        if (cfg.temperature() != 1f) LogitsProcessors.temperature(logits, off, V, cfg.temperature());
        if (cfg.topK() != 0 && cfg.topK() < V) {
            LogitsProcessors.topK(logits, off, V, cfg.topK(), rowScratch);
            // top-k leaves about k finite scores: top-p and the draw then visit those only (same sums, same order)
            nCand = LogitsProcessors.finiteIndices(logits, off, V, cand);
        }
        if (cfg.topP() < 1f) {
            if (nCand >= 0) LogitsProcessors.topP(logits, off, cand, nCand, cfg.topP(), probs, keys);
            else LogitsProcessors.topP(logits, off, V, cfg.topP(), probs, keys);
        }
    }

    /** Processes row n and returns the chosen token. */
    public int choose(float[] logits, int n, RandomGenerator rng) {
        process(logits, n);
        int off = n * V;
        if (!cfg.doSample()) return argmax(logits, off, V);
        double u = rng.nextDouble();
        return nCand >= 0 ? sample(logits, off, cand, nCand, u) : sample(logits, off, V, u);
    }

    /** First index of the largest score. */
    public static int argmax(float[] scores, int off, int V) {
        int best = 0;
        float bv = scores[off];
        for (int i = 1; i < V; i++) {
            if (scores[off + i] > bv) {
                bv = scores[off + i];
                best = i;
            }
        }
        return best;
    }

    /**
     * {@link #sample} on a row whose only finite scores are at {@code cand[0, n)}, ascending ids: the same draw,
     * visiting those positions only.
     */
    public static int sample(float[] scores, int off, int[] cand, int n, double u) {
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < n; j++) max = Math.max(max, scores[off + cand[j]]);
        double total = 0;
        for (int j = 0; j < n; j++) {
            float s = scores[off + cand[j]];
            if (s != Float.NEGATIVE_INFINITY) total += Math.exp(s - max);
        }
        double target = u * total, acc = 0;
        int last = -1;
        for (int j = 0; j < n; j++) {
            int i = cand[j];
            float s = scores[off + i];
            if (s == Float.NEGATIVE_INFINITY) continue;
            double p = Math.exp(s - max);
            if (p == 0) continue;
            acc += p;
            last = i;
            if (acc > target) return i;
        }
        return last;
    }

    /**
     * Inverse-CDF draw from softmax(scores): the first token, in id order, whose cumulative probability exceeds
     * {@code u} in [0, 1). Filtered (-inf) tokens have probability 0 and are never drawn.
     */
    public static int sample(float[] scores, int off, int V, double u) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < V; i++) max = Math.max(max, scores[off + i]);
        double total = 0;
        for (int i = 0; i < V; i++) {
            float s = scores[off + i];
            if (s != Float.NEGATIVE_INFINITY) total += Math.exp(s - max);
        }
        double target = u * total, acc = 0;
        int last = -1;
        for (int i = 0; i < V; i++) {
            float s = scores[off + i];
            if (s == Float.NEGATIVE_INFINITY) continue;
            double p = Math.exp(s - max);
            if (p == 0) continue;
            acc += p;
            last = i;
            if (acc > target) return i;
        }
        return last; // rounding left target at or above the sum: the last possible token
    }
}
