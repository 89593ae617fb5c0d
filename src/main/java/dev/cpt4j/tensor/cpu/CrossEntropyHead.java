package dev.cpt4j.tensor.cpu;

import dev.cpt4j.tensor.Parallel;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * The output head fused with cross-entropy: logits = x·Wᵀ (W is {@code [V, C]}: the tied wte or an untied lm_head),
 * loss = −log softmax(logits)[target], processed R rows at a time so the whole (N, V) logits never exist. In
 * training the same pass produces dx and dW directly from dlogits = (softmax − onehot)·gradScale (llm.c's
 * crossentropy_softmax_backward, fused). Rows whose target is negative (e.g. −100) are skipped entirely.
 */
public final class CrossEntropyHead {
    private CrossEntropyHead() {}

    /** Floats of scratch {@link #forward} needs for chunks of R rows. */
    public static int scratchSize(int R, int C, int V) {
        return R * V + 2 * R * C;
    }

    /**
     * Returns Σ over rows with target ≥ 0 of the cross-entropy (summed in row order, in double). If dx is not null
     * also dx (N, C) += gradScale·∂loss/∂x, and if dw is not null dW (V, C) += gradScale·∂loss/∂W.
     *
     * @param x       (N, C) final hidden states
     * @param targets (N) target ids, negative = ignored
     * @param scratch at least {@link #scratchSize}(R, C, V) floats
     */
    public static double forward(Gemm gemm, Parallel par, float[] x, int xOff, float[] w, int wOff,
                                 int[] targets, int tOff, int N, int C, int V, float gradScale,
                                 float[] dx, int dxOff, float[] dw, int dwOff, float[] scratch, int R) {
        int lo = 0, xg = R * V, dxg = R * V + R * C; // scratch: logits (R, V) | gathered x (R, C) | dx rows (R, C)
        int[] rows = new int[R];
        double[] rowLoss = new double[R];
        double total = 0;
        int r = 0;
        while (r < N) {
            int n = 0;
            for (; r < N && n < R; r++) if (targets[tOff + r] >= 0) rows[n++] = r;
            if (n == 0) continue;
            final int cnt = n;
            for (int k = 0; k < cnt; k++) System.arraycopy(x, xOff + rows[k] * C, scratch, xg + k * C, C);
            gemm.sgemm(false, true, cnt, V, C, scratch, xg, C, w, wOff, C, 0f, scratch, lo, V); // (n, V)
            par.forRange(cnt, (k0, k1) -> {
                for (int k = k0; k < k1; k++) {
                    int o = lo + k * V, tgt = targets[tOff + rows[k]];
                    float max = max(scratch, o, V), target = scratch[o + tgt];
                    float sum = VecMath.expShift(scratch, o, V, max);
                    double lse = max + StrictMath.log(sum); // StrictMath: fixed bits at every JIT tier
                    rowLoss[k] = lse - target;
                    if (dx != null) {
                        float inv = gradScale / sum;
                        scale(scratch, o, V, inv);
                        scratch[o + tgt] -= gradScale;
                    }
                }
            });
            for (int k = 0; k < cnt; k++) total += rowLoss[k];
            if (dx != null) {
                gemm.sgemm(false, false, cnt, C, V, scratch, lo, V, w, wOff, C, 0f, scratch, dxg, C); // (n, C)
                for (int k = 0; k < cnt; k++) VecMath.add(scratch, dxg + k * C, dx, dxOff + rows[k] * C, C);
                if (dw != null) gemm.sgemm(true, false, V, C, cnt, scratch, lo, V, scratch, xg, C, 1f, dw, dwOff, C);
            }
        }
        return total;
    }

    /** out (N, V) = x (N, C) · Wᵀ. */
    public static void logits(Gemm gemm, float[] out, int outOff, float[] x, int xOff, float[] w, int wOff, int N, int C, int V) {
        gemm.sgemm(false, true, N, V, C, x, xOff, C, w, wOff, C, 0f, out, outOff, V);
    }

    private static float max(float[] a, int off, int n) {
        var S = VecMath.S;
        int i = 0, ub = S.loopBound(n);
        FloatVector m = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
        for (; i < ub; i += S.length()) m = m.max(FloatVector.fromArray(S, a, off + i));
        float r = m.reduceLanes(VectorOperators.MAX);
        for (; i < n; i++) r = Math.max(r, a[off + i]);
        return r;
    }


    private static void scale(float[] a, int off, int n, float f) {
        var S = VecMath.S;
        int i = 0, ub = S.loopBound(n);
        for (; i < ub; i += S.length()) FloatVector.fromArray(S, a, off + i).mul(f).intoArray(a, off + i);
        for (; i < n; i++) a[off + i] *= f;
    }

    /** Naive twin of {@link #forward}: full logits, double softmax. */
    public static double forwardNaive(float[] x, float[] w, int[] targets, int N, int C, int V, float gradScale,
                                      float[] dx, float[] dw) {
        double total = 0;
        for (int r = 0; r < N; r++) {
            if (targets[r] < 0) continue;
            double[] lg = new double[V];
            double max = Double.NEGATIVE_INFINITY;
            for (int v = 0; v < V; v++) {
                double d = 0;
                for (int c = 0; c < C; c++) d += (double) x[r * C + c] * w[v * C + c];
                lg[v] = d;
                max = Math.max(max, d);
            }
            double sum = 0;
            for (int v = 0; v < V; v++) sum += Math.exp(lg[v] - max);
            total += max + Math.log(sum) - lg[targets[r]];
            if (dx == null) continue;
            for (int v = 0; v < V; v++) {
                double g = (Math.exp(lg[v] - max) / sum - (v == targets[r] ? 1 : 0)) * gradScale;
                for (int c = 0; c < C; c++) {
                    dx[r * C + c] += (float) (g * w[v * C + c]);
                    if (dw != null) dw[v * C + c] += (float) (g * x[r * C + c]);
                }
            }
        }
        return total;
    }
}
