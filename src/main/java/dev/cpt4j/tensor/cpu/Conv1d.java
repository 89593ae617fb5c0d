package dev.cpt4j.tensor.cpu;

import dev.cpt4j.tensor.Parallel;

/**
 * The transformers {@code Conv1D} layer (GPT-2's {@code c_attn}, {@code c_proj}, {@code c_fc}): y = x·W + b with W
 * stored {@code [in, out]} — the transpose of {@code torch.nn.Linear}'s {@code [out, in]}, which is why this is not
 * called Linear: an {@code nn.Linear} weight (LLaMA's {@code q_proj}, a head) passed here would be read transposed.
 * Forward and backward through {@link Gemm}; plus the bias and residual helpers the blocks use. N rows, IN / OUT
 * widths.
 */
public final class Conv1d {
    private Conv1d() {}

    /** out (N, OUT) = x (N, IN) · W (IN, OUT) + b (OUT); b may be null. */
    public static void forward(Gemm gemm, Parallel par, float[] out, int outOff, float[] x, int xOff,
                               float[] w, int wOff, float[] b, int bOff, int N, int IN, int OUT) {
        if (b != null) {
            fillBias(par, out, outOff, b, bOff, N, OUT);
        }
        gemm.sgemm(false, false, N, OUT, IN, x, xOff, IN, w, wOff, OUT, b != null ? 1f : 0f, out, outOff, OUT);
    }

    /**
     * dx (N, IN) += dout · Wᵀ; dW (IN, OUT) += xᵀ · dout; db (OUT) += Σ_rows dout. Any of dx, dW, db may be null
     * (not needed / frozen).
     */
    public static void backward(Gemm gemm, Parallel par, float[] dx, int dxOff, float[] dw, int dwOff, float[] db, int dbOff,
                                float[] dout, int dOff, float[] x, int xOff, float[] w, int wOff, int N, int IN, int OUT) {
        if (dx != null) gemm.sgemm(false, true, N, IN, OUT, dout, dOff, OUT, w, wOff, OUT, 1f, dx, dxOff, IN);
        if (dw != null) gemm.sgemm(true, false, IN, OUT, N, x, xOff, IN, dout, dOff, OUT, 1f, dw, dwOff, OUT);
        if (db != null) biasBackward(par, db, dbOff, dout, dOff, N, OUT);
    }

    /** {@link #forward} with W stored as bfloat16 bits ({@link Gemm#sgemmBf16}): a frozen base kept in bf16. */
    public static void forwardBf16(Gemm gemm, Parallel par, float[] out, int outOff, float[] x, int xOff,
                                   short[] w, int wOff, float[] b, int bOff, int N, int IN, int OUT) {
        if (b != null) {
            fillBias(par, out, outOff, b, bOff, N, OUT);
        }
        gemm.sgemmBf16(false, false, N, OUT, IN, x, xOff, IN, w, wOff, OUT, b != null ? 1f : 0f, out, outOff, OUT);
    }

    /**
     * {@link #backward} with W stored as bfloat16 bits, which is frozen: dx (N, IN) += dout · Wᵀ; db (OUT) += Σ_rows
     * dout. dx or db may be null.
     */
    public static void backwardBf16(Gemm gemm, Parallel par, float[] dx, int dxOff, float[] db, int dbOff,
                                    float[] dout, int dOff, short[] w, int wOff, int N, int IN, int OUT) {
        if (dx != null) gemm.sgemmBf16(false, true, N, IN, OUT, dout, dOff, OUT, w, wOff, OUT, 1f, dx, dxOff, IN);
        if (db != null) biasBackward(par, db, dbOff, dout, dOff, N, OUT);
    }

    /** out (N, OUT) = b broadcast over the rows (the bias a product then accumulates onto); shared with {@link NnLinear}. */
    static void fillBias(Parallel par, float[] out, int outOff, float[] b, int bOff, int N, int OUT) {
        par.forRange(N, (r0, r1) -> {
            for (int r = r0; r < r1; r++) System.arraycopy(b, bOff, out, outOff + r * OUT, OUT);
        });
    }

    /** db (OUT) += Σ_rows dout (N, OUT); threads split the columns, rows summed in order. */
    public static void biasBackward(Parallel par, float[] db, int dbOff, float[] dout, int dOff, int N, int OUT) {
        int S = VecMath.S.length();
        par.forRange((OUT + S - 1) / S, (b0, b1) -> {
            int c0 = b0 * S, c1 = Math.min(OUT, b1 * S);
            for (int r = 0; r < N; r++) VecMath.add(dout, dOff + r * OUT + c0, db, dbOff + c0, c1 - c0);
        });
    }

    /** out[i] = a[i] + b[i] for i in [0, n) (the residual connection; its backward passes dout to both). */
    public static void residualForward(Parallel par, float[] out, int outOff, float[] a, int aOff, float[] b, int bOff, int n) {
        int S = VecMath.S.length(), blk = 4096;
        par.forRange((n + blk - 1) / blk, (b0, b1) -> {
            int i = b0 * blk, end = Math.min(n, b1 * blk);
            int ub = i + VecMath.S.loopBound(end - i);
            for (; i < ub; i += S)
                jdk.incubator.vector.FloatVector.fromArray(VecMath.S, a, aOff + i)
                        .add(jdk.incubator.vector.FloatVector.fromArray(VecMath.S, b, bOff + i)).intoArray(out, outOff + i);
            for (; i < end; i++) out[outOff + i] = a[aOff + i] + b[bOff + i];
        });
    }

    /** Naive twin of {@link #forward}. */
    public static void forwardNaive(float[] out, float[] x, float[] w, float[] b, int N, int IN, int OUT) {
        GemmNaive.sgemm(false, false, N, OUT, IN, x, 0, IN, w, 0, OUT, 0f, out, 0, OUT);
        if (b != null) for (int r = 0; r < N; r++) for (int j = 0; j < OUT; j++) out[r * OUT + j] += b[j];
    }

    /** Naive twin of {@link #backward}. */
    public static void backwardNaive(float[] dx, float[] dw, float[] db, float[] dout, float[] x, float[] w, int N, int IN, int OUT) {
        GemmNaive.sgemm(false, true, N, IN, OUT, dout, 0, OUT, w, 0, OUT, 1f, dx, 0, IN);
        GemmNaive.sgemm(true, false, IN, OUT, N, x, 0, IN, dout, 0, OUT, 1f, dw, 0, OUT);
        for (int r = 0; r < N; r++) for (int j = 0; j < OUT; j++) db[j] += dout[r * OUT + j];
    }
}
