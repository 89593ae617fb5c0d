package dev.cpt4j.tensor.cpu;

import dev.cpt4j.tensor.Parallel;

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
        float dropScale = 1f / (1f - dropP);
        par.forRange(B * NH, (p0, p1) -> {
            float[] s = new float[T];
            for (int bh = p0; bh < p1; bh++) {
                int b = bh / NH, h = bh % NH;
                int base = qkvOff + b * T * C3 + h * hd;
                for (int i = 0; i < T; i++) {
                    int qo = base + i * C3;
                    float max = Float.NEGATIVE_INFINITY;
                    for (int j = 0; j <= i; j++) {
                        s[j] = scale * VecMath.dot(qkv, qo, qkv, base + j * C3 + C, hd);
                        max = Math.max(max, s[j]);
                    }
                    float sum = expShift(s, i + 1, max);
                    lse[lseOff + bh * T + i] = max + (float) Math.log(sum);
                    float inv = 1f / sum;
                    int oo = outOff + (b * T + i) * C + h * hd;
                    java.util.Arrays.fill(out, oo, oo + hd, 0f);
                    long rowIdx = ((long) bh * T + i) * T;
                    for (int j = 0; j <= i; j++) {
                        float pj = s[j] * inv;
                        if (dropP > 0f) pj = Dropout.keep(key, rowIdx + j, dropP) ? pj * dropScale : 0f;
                        VecMath.axpy(pj, qkv, base + j * C3 + 2 * C, out, oo, hd);
                    }
                }
            }
        });
    }

    /** s[j] = exp(s[j] − max) for j < n; returns the sum. */
    private static float expShift(float[] s, int n, float max) {
        var S = VecMath.S;
        int j = 0, ub = S.loopBound(n);
        var acc = jdk.incubator.vector.FloatVector.zero(S);
        for (; j < ub; j += S.length()) {
            var e = VecMath.exp(jdk.incubator.vector.FloatVector.fromArray(S, s, j).sub(max));
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

    /**
     * dqkv (B, T, 3C) += gradient of the loss w.r.t. qkv, given dout (B, T, C) and the forward's out, lse, qkv and
     * dropout settings.
     */
    public static void backward(Parallel par, float[] dqkv, int dqkvOff, float[] dout, int doutOff,
                                float[] out, int outOff, float[] lse, int lseOff, float[] qkv, int qkvOff,
                                int B, int T, int C, int NH, float scale, float dropP, long seed, long stream) {
        int hd = C / NH, C3 = 3 * C;
        long key = Dropout.key(seed, stream);
        float dropScale = 1f / (1f - dropP);
        par.forRange(B * NH, (p0, p1) -> {
            float[] s = new float[T];
            for (int bh = p0; bh < p1; bh++) {
                int b = bh / NH, h = bh % NH;
                int base = qkvOff + b * T * C3 + h * hd, dbase = dqkvOff + b * T * C3 + h * hd;
                for (int i = 0; i < T; i++) {
                    int qo = base + i * C3, go = doutOff + (b * T + i) * C + h * hd;
                    // D_i = Σ_j P_ij·dP_ij = dout_i · out_i (holds with dropout too, since out = (P∘M)·v)
                    float D = VecMath.dot(dout, go, out, outOff + (b * T + i) * C + h * hd, hd);
                    float l = lse[lseOff + bh * T + i];
                    for (int j = 0; j <= i; j++) s[j] = scale * VecMath.dot(qkv, qo, qkv, base + j * C3 + C, hd);
                    expShift(s, i + 1, l);
                    long rowIdx = ((long) bh * T + i) * T;
                    int dqo = dbase + i * C3;
                    for (int j = 0; j <= i; j++) {
                        float pj = s[j];
                        float m = dropP > 0f ? (Dropout.keep(key, rowIdx + j, dropP) ? dropScale : 0f) : 1f;
                        int vo = base + j * C3 + 2 * C;
                        float dP = m == 0f ? 0f : VecMath.dot(dout, go, qkv, vo, hd) * m;
                        float dS = pj * (dP - D) * scale;
                        if (m != 0f) VecMath.axpy(pj * m, dout, go, dqkv, dbase + j * C3 + 2 * C, hd);
                        VecMath.axpy(dS, qkv, qo, dqkv, dbase + j * C3 + C, hd);
                        VecMath.axpy(dS, qkv, base + j * C3 + C, dqkv, dqo, hd);
                    }
                }
            }
        });
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
                            if (dropP > 0f) p = Dropout.keep(key, ((long) bh * T + i) * T + j, dropP) ? p / (1 - dropP) : 0;
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
                        mk[j] = dropP > 0f ? (Dropout.keep(key, ((long) bh * T + i) * T + j, dropP) ? 1 / (1.0 - dropP) : 0) : 1;
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
