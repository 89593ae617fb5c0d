package dev.cpt4j.tensor.cpu;

import dev.cpt4j.tensor.Parallel;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * RMSNorm over the last dimension as transformers' LlamaRMSNorm (modeling_llama.py; also Qwen2/Qwen3/Mistral, and
 * Qwen3's per-head q_norm/k_norm with rows = tokens·heads, C = head_dim): out = w ⊙ (x·rstd),
 * rstd = 1/√(mean(x²) + eps), statistics in fp32. Not Gemma's (1 + w) variant.
 *
 * <p>N rows of width C, contiguous (row stride C); rstd (N) is saved for backward. Forward sums x² in lane-wise fp32
 * partial sums reduced in lane order (never {@code reduceLanes}), so a row's result does not depend on the JIT tier.
 * Backward adds into dx (a residual-stream gradient) and, unless null, dw; the weight gradient is reduced column-wise
 * (threads split the columns, each walks all rows in order), so results do not depend on the thread count.
 */
public final class RmsNorm {
    private RmsNorm() {}

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    /** out (N, C) = w ⊙ x·rstd; rstd (N). out must not alias x. */
    public static void forward(Parallel par, float[] out, int outOff, float[] rstd, int rstdOff, float[] x, int xOff,
                               float[] w, int wOff, int rows, int C, float eps) {
        par.forRange(rows, (r0, r1) -> {
            int ub = S.loopBound(C);
            for (int r = r0; r < r1; r++) {
                int xo = xOff + r * C, oo = outOff + r * C;
                float ss = VecMath.dot(x, xo, x, xo, C);
                float s = (float) (1.0 / Math.sqrt(ss / C + eps));
                int i = 0;
                for (; i < ub; i += S.length())
                    FloatVector.fromArray(S, x, xo + i).mul(s).mul(FloatVector.fromArray(S, w, wOff + i)).intoArray(out, oo + i);
                for (; i < C; i++) out[oo + i] = x[xo + i] * s * w[wOff + i];
                rstd[rstdOff + r] = s;
            }
        });
    }

    /**
     * dx (N, C) += ∂/∂x; dw (C) += ∂/∂w unless dw is null (a frozen weight); dout (N, C); x, w the forward's inputs;
     * rstd from forward. With n = x·rstd and g = dout ⊙ w: dx = rstd·(g − n·mean(g ⊙ n)).
     */
    public static void backward(Parallel par, float[] dx, int dxOff, float[] dw, int dwOff, float[] dout, int doutOff,
                                float[] x, int xOff, float[] w, int wOff, float[] rstd, int rstdOff, int rows, int C) {
        par.forRange(rows, (r0, r1) -> {
            int ub = S.loopBound(C);
            for (int r = r0; r < r1; r++) {
                int xo = xOff + r * C, go = doutOff + r * C, dxo = dxOff + r * C;
                float s = rstd[rstdOff + r];
                // Σ g·x (rstd factored out of the sum: Σ g·n = rstd·Σ g·x)
                int i = 0;
                FloatVector acc = FloatVector.zero(S);
                for (; i < ub; i += S.length()) {
                    FloatVector g = FloatVector.fromArray(S, dout, go + i).mul(FloatVector.fromArray(S, w, wOff + i));
                    acc = g.fma(FloatVector.fromArray(S, x, xo + i), acc);
                }
                float gx = VecMath.hsum(acc);
                for (; i < C; i++) gx += dout[go + i] * w[wOff + i] * x[xo + i];
                float k = s * s * s * gx / C; // dx = rstd·g − x·rstd³·mean(g·x)
                for (i = 0; i < ub; i += S.length()) {
                    FloatVector g = FloatVector.fromArray(S, dout, go + i).mul(FloatVector.fromArray(S, w, wOff + i));
                    FloatVector d = g.mul(s).sub(FloatVector.fromArray(S, x, xo + i).mul(k));
                    d.add(FloatVector.fromArray(S, dx, dxo + i)).intoArray(dx, dxo + i);
                }
                for (; i < C; i++) dx[dxo + i] += dout[go + i] * w[wOff + i] * s - x[xo + i] * k;
            }
        });
        if (dw == null) return;
        // dw += Σ_rows dout·x·rstd: threads split the columns in blocks of the vector width, rows walked in order
        int blocks = (C + S.length() - 1) / S.length();
        par.forRange(blocks, (b0, b1) -> {
            int c0 = b0 * S.length(), c1 = Math.min(C, b1 * S.length());
            for (int r = 0; r < rows; r++) {
                int xo = xOff + r * C, go = doutOff + r * C;
                float s = rstd[rstdOff + r];
                int c = c0;
                for (; c + S.length() <= c1; c += S.length()) {
                    FloatVector nv = FloatVector.fromArray(S, x, xo + c).mul(s);
                    FloatVector.fromArray(S, dout, go + c).fma(nv, FloatVector.fromArray(S, dw, dwOff + c)).intoArray(dw, dwOff + c);
                }
                for (; c < c1; c++) dw[dwOff + c] += dout[go + c] * (x[xo + c] * s);
            }
        });
    }

    /** Naive twin of {@link #forward} (double accumulation, plain loops). */
    public static void forwardNaive(float[] out, float[] rstd, float[] x, float[] w, int rows, int C, float eps) {
        for (int r = 0; r < rows; r++) {
            double ss = 0;
            for (int i = 0; i < C; i++) ss += (double) x[r * C + i] * x[r * C + i];
            double s = 1.0 / Math.sqrt(ss / C + eps);
            for (int i = 0; i < C; i++) out[r * C + i] = (float) (w[i] * (x[r * C + i] * s));
            rstd[r] = (float) s;
        }
    }

    /** Naive twin of {@link #backward} (dw may be null). */
    public static void backwardNaive(float[] dx, float[] dw, float[] dout, float[] x, float[] w, float[] rstd,
                                     int rows, int C) {
        for (int r = 0; r < rows; r++) {
            double s = rstd[r], gn = 0;
            for (int i = 0; i < C; i++) gn += (double) dout[r * C + i] * w[i] * x[r * C + i] * s;
            gn /= C;
            for (int i = 0; i < C; i++) {
                double n = x[r * C + i] * s;
                dx[r * C + i] += (float) (s * ((double) dout[r * C + i] * w[i] - n * gn));
                if (dw != null) dw[i] += (float) (dout[r * C + i] * n);
            }
        }
    }
}
