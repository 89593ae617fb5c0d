package dev.cpt4j.tensor.cpu;

import dev.cpt4j.tensor.Parallel;

/**
 * PyTorch's {@code nn.Linear}: y = x·Wᵀ + b with W stored {@code [out, in]} (the LLaMA family's projections; GPT-2's
 * {@code Conv1D} stores {@code [in, out]} and has its own class), forward and backward through {@link Gemm}.
 * N rows, IN / OUT widths.
 */
public final class NnLinear {
    private NnLinear() {}

    /** out (N, OUT) = x (N, IN) · Wᵀ (W is (OUT, IN)) + b (OUT); b may be null. */
    public static void forward(Gemm gemm, Parallel par, float[] out, int outOff, float[] x, int xOff,
                               float[] w, int wOff, float[] b, int bOff, int N, int IN, int OUT) {
        if (b != null) Conv1d.fillBias(par, out, outOff, b, bOff, N, OUT);
        gemm.sgemm(false, true, N, OUT, IN, x, xOff, IN, w, wOff, IN, b != null ? 1f : 0f, out, outOff, OUT);
    }

    /** {@link #forward} with W stored as bfloat16 bits (a frozen base kept in bf16; widened while packing). */
    public static void forwardBf16(Gemm gemm, Parallel par, float[] out, int outOff, float[] x, int xOff,
                                   short[] w, int wOff, float[] b, int bOff, int N, int IN, int OUT) {
        if (b != null) Conv1d.fillBias(par, out, outOff, b, bOff, N, OUT);
        gemm.sgemmBf16(false, true, N, OUT, IN, x, xOff, IN, w, wOff, IN, b != null ? 1f : 0f, out, outOff, OUT);
    }

    /**
     * dx (N, IN) += dout · W; dW (OUT, IN) += doutᵀ · x; db (OUT) += Σ_rows dout. Any of dx, dW, db may be null
     * (not needed / frozen).
     */
    public static void backward(Gemm gemm, Parallel par, float[] dx, int dxOff, float[] dw, int dwOff, float[] db, int dbOff,
                                float[] dout, int dOff, float[] x, int xOff, float[] w, int wOff, int N, int IN, int OUT) {
        if (dx != null) gemm.sgemm(false, false, N, IN, OUT, dout, dOff, OUT, w, wOff, IN, 1f, dx, dxOff, IN);
        if (dw != null) gemm.sgemm(true, false, OUT, IN, N, dout, dOff, OUT, x, xOff, IN, 1f, dw, dwOff, IN);
        if (db != null) Conv1d.biasBackward(par, db, dbOff, dout, dOff, N, OUT);
    }

    /** Naive twin of {@link #forward}. */
    public static void forwardNaive(float[] out, float[] x, float[] w, float[] b, int N, int IN, int OUT) {
        for (int r = 0; r < N; r++)
            for (int o = 0; o < OUT; o++) {
                double s = b == null ? 0 : b[o];
                for (int i = 0; i < IN; i++) s += (double) x[r * IN + i] * w[o * IN + i];
                out[r * OUT + o] = (float) s;
            }
    }

    /** Naive twin of {@link #backward} (all three gradients accumulated). */
    public static void backwardNaive(float[] dx, float[] dw, float[] db, float[] dout, float[] x, float[] w, int N, int IN, int OUT) {
        for (int r = 0; r < N; r++)
            for (int o = 0; o < OUT; o++) {
                float d = dout[r * OUT + o];
                db[o] += d;
                for (int i = 0; i < IN; i++) {
                    dx[r * IN + i] += d * w[o * IN + i];
                    dw[o * IN + i] += d * x[r * IN + i];
                }
            }
    }
}
