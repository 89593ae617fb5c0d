package dev.cpt4j.model;

/**
 * Resizing an embedding matrix {@code (V, C)} to a new vocabulary size, as transformers'
 * {@code resize_token_embeddings(n, pad_to_multiple_of, mean_resizing=True)} does: the first {@code min(V, V')}
 * rows are kept; each new row is initialised from the old rows' mean. transformers samples new rows from
 * N(mean, 1e-9·Σ) (Σ the rows' covariance) and falls back to exactly the mean when Σ is not positive-definite;
 * cpt4j always takes exactly the mean — the sampled deviation is at most ~3e-5·σ, so this is the same start up to
 * noise and keeps the result a pure function of the base weights (resume and adapter loading need no seed).
 */
public final class VocabResize {
    private VocabResize() {}

    /** transformers' {@code pad_to_multiple_of}: {@code n} rounded up to a multiple of {@code multiple} (0 = n). */
    public static int padded(int n, int multiple) {
        if (multiple <= 0) return n;
        return (int) (((long) n + multiple - 1) / multiple * multiple);
    }

    /**
     * Copies {@code src} {@code (oldV, C)} at {@code srcOff} into {@code dst} {@code (newV, C)} at {@code dstOff}:
     * kept rows verbatim, new rows = the mean of all old rows (accumulated in double).
     */
    public static void copyResized(float[] src, int srcOff, int oldV, float[] dst, int dstOff, int newV, int C) {
        int keep = Math.min(oldV, newV);
        System.arraycopy(src, srcOff, dst, dstOff, keep * C);
        if (newV <= oldV) return;
        double[] mean = new double[C];
        for (int v = 0; v < oldV; v++)
            for (int c = 0; c < C; c++) mean[c] += src[srcOff + v * C + c];
        for (int c = 0; c < C; c++) mean[c] /= oldV;
        for (int v = oldV; v < newV; v++)
            for (int c = 0; c < C; c++) dst[dstOff + v * C + c] = (float) mean[c];
    }
}
