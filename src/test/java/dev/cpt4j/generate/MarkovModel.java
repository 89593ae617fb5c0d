package dev.cpt4j.generate;

import dev.cpt4j.model.StepModel;

/**
 * A fake {@link StepModel} for loop tests: the next-token logits depend only on the last token, through a fixed
 * table {@code table[last][next]}. Counts the rows it computes.
 */
final class MarkovModel implements StepModel {
    final float[][] table;
    final int context, maxSeq, maxLen;
    float[] logits;
    int[] lengths;
    int rowsComputed, prefills;

    MarkovModel(float[][] table, int context, int maxSeq, int maxLen) {
        this.table = table;
        this.context = context;
        this.maxSeq = maxSeq;
        this.maxLen = maxLen;
    }

    /** table[i] has its single maximum at next[i]; other entries 0. */
    static MarkovModel chain(int V, int[] next, int context) {
        float[][] t = new float[V][V];
        for (int i = 0; i < V; i++) t[i][next[i]] = 5f;
        return new MarkovModel(t, context, 8, context);
    }

    @Override public int vocabSize() { return table.length; }
    @Override public int contextLength() { return context; }
    @Override public int maxSequences() { return maxSeq; }
    @Override public int maxLength() { return maxLen; }

    @Override
    public float[] prefill(int[] prompt, int numSeq) {
        int V = table.length;
        logits = new float[numSeq * V];
        lengths = new int[numSeq];
        for (int n = 0; n < numSeq; n++) {
            System.arraycopy(table[prompt[prompt.length - 1]], 0, logits, n * V, V);
            lengths[n] = prompt.length;
        }
        prefills++;
        return logits;
    }

    @Override
    public float[] next(int[] lastTokens, boolean[] active) {
        int V = table.length;
        java.util.Arrays.fill(logits, Float.NaN); // inactive rows are garbage
        for (int n = 0; n < active.length; n++) {
            if (!active[n]) continue;
            if (++lengths[n] > maxLen) throw new IllegalStateException("past the cache");
            System.arraycopy(table[lastTokens[n]], 0, logits, n * V, V);
            rowsComputed++;
        }
        return logits;
    }
}
