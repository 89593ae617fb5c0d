package dev.cpt4j.tensor.cpu;

import dev.cpt4j.tensor.Parallel;
import jdk.incubator.vector.FloatVector;

/**
 * Causal multi-head self-attention on GPT-2's fused qkv, forward and backward, without keeping the (B, NH, T, T)
 * attention matrix: forward saves only the output and each row's log-sum-exp; backward recomputes the scores row
 * by row (FlashAttention, Dao et al. 2022, Algorithm 2 specialised to one row at a time). Attention-probability
 * dropout (transformers' attn_dropout) uses a {@link Dropout} mask regenerated from the seed in backward.
 *
 * <p>B batch, T time, C width, NH heads, hd = C/NH. qkv (B, T, 3C) holds q | k | v per row, head h at columns
 * h·hd. Work is split over (b, h) pairs, which write disjoint slices, so results do not depend on the thread count.
 */
public final class Attention {
    private Attention() {}

    /**
     * out (B, T, C) = softmax(scale·q·kᵀ + causal mask) · v per head (dropout p on the probabilities);
     * lse (B, NH, T) = log Σ_j exp(scale·q_i·k_j).
     */
    public static void forward(Parallel par, float[] out, int outOff, float[] lse, int lseOff,
                               float[] qkv, int qkvOff, int B, int T, int C, int NH, float scale,
                               float dropP, long seed, long stream) {
        int hd = C / NH, C3 = 3 * C;
        long key = Dropout.key(seed, stream);
        par.forRange(B * NH, (p0, p1) -> {
            float[] s = new float[T + 1];
            float[] kt = new float[hd * T]; // (hd, T) this head's keys, transposed
            float[] acc = new float[hd];
            for (int bh = p0; bh < p1; bh++) {
                int b = bh / NH, h = bh % NH;
                int base = qkvOff + b * T * C3 + h * hd;
                transpose(qkv, base + C, C3, kt, T, hd);
                for (int i = 0; i < T; i++) {
                    int n = i + 1;
                    scores(qkv, base + i * C3, scale, kt, T, hd, s, n);
                    float max = max(s, n);
                    float sum = expShift(s, n, max);
                    lse[lseOff + bh * T + i] = max + (float) Math.log(sum);
                    scaleBy(s, n, 1f / sum);
                    if (dropP > 0f) Dropout.scaleRow(Dropout.rowKey(key, (long) bh * T + i), dropP, s, 0, n);
                    java.util.Arrays.fill(acc, 0f);
                    int j = 0;
                    for (; j + 4 <= n; j += 4)
                        axpy4(s[j], s[j + 1], s[j + 2], s[j + 3], qkv, base + j * C3 + 2 * C, C3, acc, hd);
                    for (; j < n; j++) VecMath.axpy(s[j], qkv, base + j * C3 + 2 * C, acc, 0, hd);
                    System.arraycopy(acc, 0, out, outOff + (b * T + i) * C + h * hd, hd);
                }
            }
        });
    }

    /**
     * dqkv (B, T, 3C) += gradient of the loss w.r.t. qkv, given dout (B, T, C) and the forward's out, lse, qkv and
     * dropout settings.
     */
    public static void backward(Parallel par, float[] dqkv, int dqkvOff, float[] dout, int doutOff,
                                float[] out, int outOff, float[] lse, int lseOff, float[] qkv, int qkvOff,
                                int B, int T, int C, int NH, float scale, float dropP, long seed, long stream) {
        int hd = C / NH, C3 = 3 * C;
        long key = Dropout.key(seed, stream);
        par.forRange(B * NH, (p0, p1) -> {
            float[] s = new float[T + 1], dp = new float[T + 1], mk = new float[T + 1];
            float[] kt = new float[hd * T], vt = new float[hd * T], dkt = new float[hd * T], dvt = new float[hd * T];
            for (int bh = p0; bh < p1; bh++) {
                int b = bh / NH, h = bh % NH;
                int base = qkvOff + b * T * C3 + h * hd, dbase = dqkvOff + b * T * C3 + h * hd;
                transpose(qkv, base + C, C3, kt, T, hd);
                transpose(qkv, base + 2 * C, C3, vt, T, hd);
                java.util.Arrays.fill(dkt, 0f);
                java.util.Arrays.fill(dvt, 0f);
                for (int i = 0; i < T; i++) {
                    int n = i + 1, qo = base + i * C3, go = doutOff + (b * T + i) * C + h * hd;
                    // D_i = Σ_j P_ij·dP_ij = dout_i · out_i (holds with dropout too, since out = (P∘M)·v)
                    float D = VecMath.dot(dout, go, out, outOff + (b * T + i) * C + h * hd, hd);
                    scores(qkv, qo, scale, kt, T, hd, s, n);
                    expShift(s, n, lse[lseOff + bh * T + i]); // s = P_i
                    scores(dout, go, 1f, vt, T, hd, dp, n);   // dp = dout_i · v_j (gradient of the dropped P)
                    java.util.Arrays.fill(mk, 0, n, 1f);
                    if (dropP > 0f) Dropout.scaleRow(Dropout.rowKey(key, (long) bh * T + i), dropP, mk, 0, n);
                    softmaxGrad(s, dp, mk, D, scale, n);     // dp = dS·scale, s = P∘M
                    for (int d = 0; d < hd; d++) {
                        VecMath.axpy(dout[go + d], s, 0, dvt, d * T, n);
                        VecMath.axpy(qkv[qo + d], dp, 0, dkt, d * T, n);
                        dqkv[dbase + i * C3 + d] += VecMath.dot(dp, 0, kt, d * T, n);
                    }
                }
                for (int j = 0; j < T; j++)
                    for (int d = 0; d < hd; d++) {
                        dqkv[dbase + j * C3 + C + d] += dkt[d * T + j];
                        dqkv[dbase + j * C3 + 2 * C + d] += dvt[d * T + j];
                    }
            }
        });
    }

    /** dst (hd, T) = the (T, hd) rows src[off + j·stride + d]. */
    private static void transpose(float[] src, int off, int stride, float[] dst, int T, int hd) {
        for (int j = 0; j < T; j++) {
            int o = off + j * stride;
            for (int d = 0; d < hd; d++) dst[d * T + j] = src[o + d];
        }
    }

    /** s[j] = scale · Σ_d x[xOff + d]·kt[d·T + j] for j < n; four d at a time so s is loaded once per four. */
    private static void scores(float[] x, int xOff, float scale, float[] kt, int T, int hd, float[] s, int n) {
        var S = VecMath.S;
        int ub = S.loopBound(n);
        java.util.Arrays.fill(s, 0, n, 0f);
        int d = 0;
        for (; d + 4 <= hd; d += 4) {
            float a0 = x[xOff + d] * scale, a1 = x[xOff + d + 1] * scale, a2 = x[xOff + d + 2] * scale, a3 = x[xOff + d + 3] * scale;
            FloatVector v0 = FloatVector.broadcast(S, a0), v1 = FloatVector.broadcast(S, a1),
                    v2 = FloatVector.broadcast(S, a2), v3 = FloatVector.broadcast(S, a3);
            int r0 = d * T, r1 = r0 + T, r2 = r1 + T, r3 = r2 + T;
            int j = 0;
            for (; j < ub; j += S.length()) {
                FloatVector acc = FloatVector.fromArray(S, s, j);
                acc = FloatVector.fromArray(S, kt, r0 + j).fma(v0, acc);
                acc = FloatVector.fromArray(S, kt, r1 + j).fma(v1, acc);
                acc = FloatVector.fromArray(S, kt, r2 + j).fma(v2, acc);
                acc = FloatVector.fromArray(S, kt, r3 + j).fma(v3, acc);
                acc.intoArray(s, j);
            }
            for (; j < n; j++) s[j] += a0 * kt[r0 + j] + a1 * kt[r1 + j] + a2 * kt[r2 + j] + a3 * kt[r3 + j];
        }
        for (; d < hd; d++) VecMath.axpy(x[xOff + d] * scale, kt, d * T, s, 0, n);
    }

    /** acc (hd) += Σ_{r<4} a_r · x[off + r·stride ..]. */
    private static void axpy4(float a0, float a1, float a2, float a3, float[] x, int off, int stride, float[] acc, int hd) {
        var S = VecMath.S;
        FloatVector v0 = FloatVector.broadcast(S, a0), v1 = FloatVector.broadcast(S, a1),
                v2 = FloatVector.broadcast(S, a2), v3 = FloatVector.broadcast(S, a3);
        int o1 = off + stride, o2 = o1 + stride, o3 = o2 + stride;
        int d = 0, ub = S.loopBound(hd);
        for (; d < ub; d += S.length()) {
            FloatVector r = FloatVector.fromArray(S, acc, d);
            r = FloatVector.fromArray(S, x, off + d).fma(v0, r);
            r = FloatVector.fromArray(S, x, o1 + d).fma(v1, r);
            r = FloatVector.fromArray(S, x, o2 + d).fma(v2, r);
            r = FloatVector.fromArray(S, x, o3 + d).fma(v3, r);
            r.intoArray(acc, d);
        }
        for (; d < hd; d++) acc[d] += a0 * x[off + d] + a1 * x[o1 + d] + a2 * x[o2 + d] + a3 * x[o3 + d];
    }

    /** dp ← P∘(dp∘M − D)·scale (the score gradient); p ← P∘M (the weights of v). */
    private static void softmaxGrad(float[] p, float[] dp, float[] mk, float D, float scale, int n) {
        var S = VecMath.S;
        int j = 0, ub = S.loopBound(n);
        for (; j < ub; j += S.length()) {
            FloatVector pv = FloatVector.fromArray(S, p, j), m = FloatVector.fromArray(S, mk, j);
            FloatVector g = FloatVector.fromArray(S, dp, j);
            g.fma(m, FloatVector.broadcast(S, -D)).mul(pv).mul(scale).intoArray(dp, j);
            pv.mul(m).intoArray(p, j);
        }
        for (; j < n; j++) {
            dp[j] = p[j] * (dp[j] * mk[j] - D) * scale;
            p[j] *= mk[j];
        }
    }

    private static float max(float[] s, int n) {
        var S = VecMath.S;
        int j = 0, ub = S.loopBound(n);
        FloatVector m = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
        for (; j < ub; j += S.length()) m = m.max(FloatVector.fromArray(S, s, j));
        float r = m.reduceLanes(jdk.incubator.vector.VectorOperators.MAX);
        for (; j < n; j++) r = Math.max(r, s[j]);
        return r;
    }

    private static void scaleBy(float[] s, int n, float f) {
        var S = VecMath.S;
        int j = 0, ub = S.loopBound(n);
        for (; j < ub; j += S.length()) FloatVector.fromArray(S, s, j).mul(f).intoArray(s, j);
        for (; j < n; j++) s[j] *= f;
    }

    /** s[j] = exp(s[j] − max) for j < n; returns the sum. */
    private static float expShift(float[] s, int n, float max) {
        var S = VecMath.S;
        int j = 0, ub = S.loopBound(n);
        var acc = FloatVector.zero(S);
        for (; j < ub; j += S.length()) {
            var e = VecMath.exp(FloatVector.fromArray(S, s, j).sub(max));
            e.intoArray(s, j);
            acc = acc.add(e);
        }
        float sum = acc.reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
        for (; j < n; j++) {
            s[j] = VecMath.exp(s[j] - max);
            sum += s[j];
        }
        return sum;
    }

    /** Naive twin of {@link #forward}: the full T×T score matrix per head in double. */
    public static void forwardNaive(float[] out, float[] lse, float[] qkv, int B, int T, int C, int NH, float scale,
                                    float dropP, long seed, long stream) {
        int hd = C / NH, C3 = 3 * C;
        long key = Dropout.key(seed, stream);
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++) {
                int bh = b * NH + h;
                for (int i = 0; i < T; i++) {
                    double[] sc = new double[i + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j <= i; j++) {
                        double d = 0;
                        for (int k = 0; k < hd; k++)
                            d += (double) qkv[(b * T + i) * C3 + h * hd + k] * qkv[(b * T + j) * C3 + C + h * hd + k];
                        sc[j] = d * scale;
                        max = Math.max(max, sc[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j <= i; j++) sum += Math.exp(sc[j] - max);
                    lse[bh * T + i] = (float) (max + Math.log(sum));
                    for (int k = 0; k < hd; k++) {
                        double o = 0;
                        for (int j = 0; j <= i; j++) {
                            double p = Math.exp(sc[j] - max) / sum;
                            if (dropP > 0f) p = Dropout.keep(Dropout.rowKey(key, (long) bh * T + i), j, dropP) ? p / (1 - dropP) : 0;
                            o += p * qkv[(b * T + j) * C3 + 2 * C + h * hd + k];
                        }
                        out[(b * T + i) * C + h * hd + k] = (float) o;
                    }
                }
            }
    }

    /** Naive twin of {@link #backward}: textbook softmax backward with the full probability matrix. */
    public static void backwardNaive(float[] dqkv, float[] dout, float[] qkv, int B, int T, int C, int NH,
                                     float scale, float dropP, long seed, long stream) {
        int hd = C / NH, C3 = 3 * C;
        long key = Dropout.key(seed, stream);
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++) {
                int bh = b * NH + h;
                for (int i = 0; i < T; i++) {
                    double[] p = new double[i + 1], mk = new double[i + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j <= i; j++) {
                        double d = 0;
                        for (int k = 0; k < hd; k++)
                            d += (double) qkv[(b * T + i) * C3 + h * hd + k] * qkv[(b * T + j) * C3 + C + h * hd + k];
                        p[j] = d * scale;
                        max = Math.max(max, p[j]);
                        mk[j] = dropP > 0f ? (Dropout.keep(Dropout.rowKey(key, (long) bh * T + i), j, dropP) ? 1 / (1.0 - dropP) : 0) : 1;
                    }
                    double sum = 0;
                    for (int j = 0; j <= i; j++) sum += Math.exp(p[j] - max);
                    for (int j = 0; j <= i; j++) p[j] = Math.exp(p[j] - max) / sum;
                    double[] dp = new double[i + 1];
                    double dot = 0;
                    for (int j = 0; j <= i; j++) {
                        double d = 0;
                        for (int k = 0; k < hd; k++)
                            d += (double) dout[(b * T + i) * C + h * hd + k] * qkv[(b * T + j) * C3 + 2 * C + h * hd + k];
                        dp[j] = d * mk[j];
                        dot += p[j] * dp[j];
                    }
                    for (int j = 0; j <= i; j++) {
                        double ds = p[j] * (dp[j] - dot) * scale;
                        for (int k = 0; k < hd; k++) {
                            dqkv[(b * T + j) * C3 + 2 * C + h * hd + k] += (float) (p[j] * mk[j] * dout[(b * T + i) * C + h * hd + k]);
                            dqkv[(b * T + j) * C3 + C + h * hd + k] += (float) (ds * qkv[(b * T + i) * C3 + h * hd + k]);
                            dqkv[(b * T + i) * C3 + h * hd + k] += (float) (ds * qkv[(b * T + j) * C3 + C + h * hd + k]);
                        }
                    }
                }
            }
    }
}
