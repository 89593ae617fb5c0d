package dev.cpt4j.tensor.cpu;

import dev.cpt4j.tensor.Parallel;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * LayerNorm over the last dimension (torch.nn.LayerNorm: biased variance, eps inside the square root), forward
 * and backward as in llm.c's layernorm_forward/backward. N rows of width C; mean and rstd (N) are saved for
 * backward. Backward adds into dx, dw, db. The weight gradients are reduced column-wise (threads split the
 * columns, each walks all rows in order), so the result does not depend on the thread count.
 */
public final class LayerNorm {
    private LayerNorm() {}

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    /** out (N, C) = (x − mean)·rstd·w + b; mean, rstd (N). */
    public static void forward(Parallel par, float[] out, int outOff, float[] mean, float[] rstd, int mOff,
                               float[] x, int xOff, float[] w, int wOff, float[] b, int bOff, int N, int C, float eps) {
        par.forRange(N, (r0, r1) -> {
            for (int r = r0; r < r1; r++) {
                int xo = xOff + r * C, oo = outOff + r * C;
                float m = VecMath.sum(x, xo, C) / C;
                int i = 0, ub = S.loopBound(C);
                FloatVector acc = FloatVector.zero(S);
                for (; i < ub; i += S.length()) {
                    FloatVector d = FloatVector.fromArray(S, x, xo + i).sub(m);
                    acc = d.fma(d, acc);
                }
                float v = VecMath.hsum(acc);
                for (; i < C; i++) { float d = x[xo + i] - m; v += d * d; }
                v /= C;
                float s = (float) (1.0 / Math.sqrt(v + eps));
                for (i = 0; i < ub; i += S.length()) {
                    FloatVector n = FloatVector.fromArray(S, x, xo + i).sub(m).mul(s);
                    n.fma(FloatVector.fromArray(S, w, wOff + i), FloatVector.fromArray(S, b, bOff + i)).intoArray(out, oo + i);
                }
                for (; i < C; i++) out[oo + i] = (x[xo + i] - m) * s * w[wOff + i] + b[bOff + i];
                mean[mOff + r] = m;
                rstd[mOff + r] = s;
            }
        });
    }

    /**
     * dx (N, C) += ∂/∂x; dw, db (C) += ∂/∂w, ∂/∂b (either may be null: not wanted); dout (N, C); x the forward input;
     * mean, rstd from forward.
     */
    public static void backward(Parallel par, float[] dx, int dxOff, float[] dw, int dwOff, float[] db, int dbOff,
                                float[] dout, int dOff, float[] x, int xOff, float[] mean, float[] rstd, int mOff,
                                float[] w, int wOff, int N, int C) {
        par.forRange(N, (r0, r1) -> {
            for (int r = r0; r < r1; r++) {
                int xo = xOff + r * C, go = dOff + r * C, dxo = dxOff + r * C;
                float m = mean[mOff + r], s = rstd[mOff + r];
                // dnorm = dout·w; dx = (dnorm − mean(dnorm) − norm·mean(dnorm·norm))·rstd
                int i = 0, ub = S.loopBound(C);
                FloatVector a1 = FloatVector.zero(S), a2 = FloatVector.zero(S);
                for (; i < ub; i += S.length()) {
                    FloatVector dn = FloatVector.fromArray(S, dout, go + i).mul(FloatVector.fromArray(S, w, wOff + i));
                    FloatVector nv = FloatVector.fromArray(S, x, xo + i).sub(m).mul(s);
                    a1 = a1.add(dn);
                    a2 = dn.fma(nv, a2);
                }
                float dnMean = VecMath.hsum(a1), dnnMean = VecMath.hsum(a2);
                for (; i < C; i++) {
                    float dn = dout[go + i] * w[wOff + i], nv = (x[xo + i] - m) * s;
                    dnMean += dn;
                    dnnMean += dn * nv;
                }
                dnMean /= C;
                dnnMean /= C;
                for (i = 0; i < ub; i += S.length()) {
                    FloatVector dn = FloatVector.fromArray(S, dout, go + i).mul(FloatVector.fromArray(S, w, wOff + i));
                    FloatVector nv = FloatVector.fromArray(S, x, xo + i).sub(m).mul(s);
                    FloatVector g = dn.sub(dnMean).sub(nv.mul(dnnMean)).mul(s);
                    g.add(FloatVector.fromArray(S, dx, dxo + i)).intoArray(dx, dxo + i);
                }
                for (; i < C; i++) {
                    float dn = dout[go + i] * w[wOff + i], nv = (x[xo + i] - m) * s;
                    dx[dxo + i] += (dn - dnMean - nv * dnnMean) * s;
                }
            }
        });
        if (dw == null && db == null) return;                // frozen: no parameter gradient wanted
        if (dw == null || db == null) {                        // only one of them wanted (rare): the other into scratch
            float[] w0 = dw == null ? new float[C] : dw, b0 = db == null ? new float[C] : db;
            paramGrads(par, w0, dw == null ? 0 : dwOff, b0, db == null ? 0 : dbOff, dout, dOff, x, xOff, mean, rstd, mOff, N, C);
        } else {
            paramGrads(par, dw, dwOff, db, dbOff, dout, dOff, x, xOff, mean, rstd, mOff, N, C);
        }
    }

    /** dw += Σ_rows dout·norm, db += Σ_rows dout: split columns in blocks of the vector width. */
    private static void paramGrads(Parallel par, float[] dw, int dwOff, float[] db, int dbOff, float[] dout, int dOff,
                                   float[] x, int xOff, float[] mean, float[] rstd, int mOff, int N, int C) {
        int blocks = (C + S.length() - 1) / S.length();
        par.forRange(blocks, (b0, b1) -> {
            int c0 = b0 * S.length(), c1 = Math.min(C, b1 * S.length());
            for (int r = 0; r < N; r++) {
                int xo = xOff + r * C, go = dOff + r * C;
                float m = mean[mOff + r], s = rstd[mOff + r];
                int c = c0;
                for (; c + S.length() <= c1; c += S.length()) {
                    FloatVector g = FloatVector.fromArray(S, dout, go + c);
                    FloatVector nv = FloatVector.fromArray(S, x, xo + c).sub(m).mul(s);
                    g.fma(nv, FloatVector.fromArray(S, dw, dwOff + c)).intoArray(dw, dwOff + c);
                    g.add(FloatVector.fromArray(S, db, dbOff + c)).intoArray(db, dbOff + c);
                }
                for (; c < c1; c++) {
                    float g = dout[go + c];
                    dw[dwOff + c] += g * (x[xo + c] - m) * s;
                    db[dbOff + c] += g;
                }
            }
        });
    }

    /** Naive twin of {@link #forward} (double accumulation, plain loops). */
    public static void forwardNaive(float[] out, float[] mean, float[] rstd, float[] x, float[] w, float[] b,
                                    int N, int C, float eps) {
        for (int r = 0; r < N; r++) {
            double m = 0;
            for (int i = 0; i < C; i++) m += x[r * C + i];
            m /= C;
            double v = 0;
            for (int i = 0; i < C; i++) v += (x[r * C + i] - m) * (x[r * C + i] - m);
            v /= C;
            double s = 1.0 / Math.sqrt(v + eps);
            for (int i = 0; i < C; i++) out[r * C + i] = (float) ((x[r * C + i] - m) * s * w[i] + b[i]);
            mean[r] = (float) m;
            rstd[r] = (float) s;
        }
    }

    /** Naive twin of {@link #backward}. */
    public static void backwardNaive(float[] dx, float[] dw, float[] db, float[] dout, float[] x, float[] mean,
                                     float[] rstd, float[] w, int N, int C) {
        for (int r = 0; r < N; r++) {
            double a1 = 0, a2 = 0;
            for (int i = 0; i < C; i++) {
                double dn = dout[r * C + i] * w[i], nv = (x[r * C + i] - mean[r]) * rstd[r];
                a1 += dn;
                a2 += dn * nv;
            }
            a1 /= C;
            a2 /= C;
            for (int i = 0; i < C; i++) {
                double dn = dout[r * C + i] * w[i], nv = (x[r * C + i] - mean[r]) * rstd[r];
                dx[r * C + i] += (float) ((dn - a1 - nv * a2) * rstd[r]);
                dw[i] += (float) (dout[r * C + i] * nv);
                db[i] += dout[r * C + i];
            }
        }
    }
}
