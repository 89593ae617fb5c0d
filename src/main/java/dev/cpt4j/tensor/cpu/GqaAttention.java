package dev.cpt4j.tensor.cpu;

import dev.cpt4j.tensor.Parallel;
import jdk.incubator.vector.FloatVector;

import java.util.Arrays;

/**
 * Causal grouped-query attention of the LLaMA family (transformers modeling_llama.py {@code LlamaAttention} with
 * {@code eager_attention_forward}'s {@code repeat_kv}; Qwen2/Qwen3/Mistral likewise), forward and backward, without a
 * (B, NH, T, T) tensor: forward saves the output and each row's log-sum-exp, backward recomputes the scores block by
 * block (FlashAttention, Dao et al. 2022: P = exp(S − lse), dS = P∘(dP − rowsum(dO∘O))), as {@link Attention} does
 * for GPT-2. No dropout (LLaMA-family attention_dropout is 0), no padding mask, no RoPE (see {@link Rope}).
 *
 * <p>B batch, T time, NH query heads, NKV key/value heads (NH % NKV == 0; query head h reads kv head h / (NH/NKV)),
 * hd head dim (independent of the model width). Layouts, all contiguous: q, out (B·T, NH·hd); k, v (B·T, NKV·hd);
 * lse (B, NH, T). Scores are scale·q·kᵀ.
 *
 * <p>Sliding window: {@code window} W > 0 lets query i see key j iff i − W &lt; j ≤ i, i.e. the W most recent keys
 * including itself. This is transformers' masking_utils {@code sliding_window_causal_mask_function}:
 * {@code sliding_window_overlay} keeps {@code kv_idx > q_idx - sliding_window}, and-ed with the causal
 * {@code kv_idx <= q_idx}. W = 0: plain causal.
 *
 * <p>Forward splits (b, h) pairs over threads; backward splits (b, kv head) pairs, so each task owns its dk and dv
 * slices and sums its G = NH/NKV query heads into them in a fixed order: no atomics, and results do not depend on
 * the thread count. Backward overwrites dq, dk, dv (q, k, v come from GEMMs that write them once).
 */
public final class GqaAttention {
    private GqaAttention() {}

    /** Query rows processed together (the diagonal block wastes at most R/2 columns per row). */
    private static final int R = 16;

    /**
     * out (B·T, NH·hd) = softmax(scale·q·kᵀ + causal/window mask)·v per query head; lse (B, NH, T) = the log-sum-exp
     * of each row's scaled scores over its allowed keys.
     */
    public static void forward(Parallel par, float[] out, int outOff, float[] lse, int lseOff, float[] q, int qOff,
                               float[] k, int kOff, float[] v, int vOff, int B, int T, int NH, int NKV, int hd,
                               float scale, int window) {
        forward(par, out, outOff, lse, lseOff, q, qOff, k, kOff, v, vOff, null, 0, B, T, NH, NKV, hd, scale, window);
    }

    /**
     * As {@link #forward(Parallel, float[], int, float[], int, float[], int, float[], int, float[], int, int, int, int, int, int, float, int)}
     * with documents packed in each row (neat packing): {@code starts} (B, T) from {@code startsOff} holds, for every
     * token, the index in its row where its document begins; query i then sees key j only if also
     * starts[i] ≤ j. Null: one sequence per row. Key columns left of a block's first allowed key are never computed.
     */
    public static void forward(Parallel par, float[] out, int outOff, float[] lse, int lseOff, float[] q, int qOff,
                               float[] k, int kOff, float[] v, int vOff, int[] starts, int startsOff, int B, int T,
                               int NH, int NKV, int hd, float scale, int window) {
        check(NH, NKV, hd, window);
        int G = NH / NKV, ldq = NH * hd, ldk = NKV * hd;
        par.forRange(B * NH, (p0, p1) -> {
            float[] sb = new float[R * T];  // (R, T) scores → probabilities of a block of query rows
            float[] kt = new float[hd * T]; // (hd, T) the current kv head's keys, transposed
            int cached = -1;
            for (int bh = p0; bh < p1; bh++) {
                int b = bh / NH, h = bh % NH, kvh = h / G, st = startsOff + b * T;
                if (b * NKV + kvh != cached) { // consecutive heads of a group share it
                    Attention.transpose(k, kOff + b * T * ldk + kvh * hd, ldk, kt, T, hd);
                    cached = b * NKV + kvh;
                }
                int qb = qOff + b * T * ldq + h * hd, vb = vOff + b * T * ldk + kvh * hd, ob = outOff + b * T * ldq + h * hd;
                for (int i0 = 0; i0 < T; i0 += R) {
                    int r = Math.min(R, T - i0), n = i0 + r, lo = firstKey(i0, window, starts, st), N = n - lo;
                    Attention.mm(false, r, N, hd, q, qb + i0 * ldq, ldq, kt, lo, T, sb, 0, T, false);
                    for (int ii = 0; ii < r; ii++) {
                        int i = i0 + ii, o = ii * T, a = firstKey(i, window, starts, st) - lo, e = i + 1 - lo, m = e - a;
                        Attention.scaleBy(sb, o + a, m, scale);
                        float max = Attention.max(sb, o + a, m);
                        float sum = VecMath.expShift(sb, o + a, m, max);
                        lse[lseOff + bh * T + i] = max + (float) Math.log(sum);
                        Attention.scaleBy(sb, o + a, m, 1f / sum);
                        Arrays.fill(sb, o, o + a, 0f);
                        Arrays.fill(sb, o + e, o + N, 0f);
                    }
                    Attention.mm(false, r, hd, N, sb, 0, T, v, vb + lo * ldk, ldk, out, ob + i0 * ldq, ldq, false);
                }
            }
        });
    }

    /**
     * dq (B·T, NH·hd), dk, dv (B·T, NKV·hd) = the gradients (OVERWRITTEN) given dout (B·T, NH·hd) and the forward's
     * out, lse, q, k, v.
     */
    public static void backward(Parallel par, float[] dq, int dqOff, float[] dk, int dkOff, float[] dv, int dvOff,
                                float[] dout, int doutOff, float[] out, int outOff, float[] lse, int lseOff,
                                float[] q, int qOff, float[] k, int kOff, float[] v, int vOff,
                                int B, int T, int NH, int NKV, int hd, float scale, int window) {
        backward(par, dq, dqOff, dk, dkOff, dv, dvOff, dout, doutOff, out, outOff, lse, lseOff, q, qOff, k, kOff, v, vOff,
                null, 0, B, T, NH, NKV, hd, scale, window);
    }

    /** The backward of the packed {@link #forward} ({@code starts} as there; null: one sequence per row). */
    public static void backward(Parallel par, float[] dq, int dqOff, float[] dk, int dkOff, float[] dv, int dvOff,
                                float[] dout, int doutOff, float[] out, int outOff, float[] lse, int lseOff,
                                float[] q, int qOff, float[] k, int kOff, float[] v, int vOff, int[] starts,
                                int startsOff, int B, int T, int NH, int NKV, int hd, float scale, int window) {
        check(NH, NKV, hd, window);
        int G = NH / NKV, ldq = NH * hd, ldk = NKV * hd;
        par.forRange(B * NKV, (p0, p1) -> {
            float[] sb = new float[R * T], db = new float[R * T]; // (R, T) P, then dS, of a block of query rows
            float[] kt = new float[hd * T], vt = new float[hd * T]; // (hd, T) this kv head's keys and values, transposed
            for (int bk = p0; bk < p1; bk++) {
                int b = bk / NKV, kvh = bk % NKV, st = startsOff + b * T;
                int kb = kOff + b * T * ldk + kvh * hd, vb = vOff + b * T * ldk + kvh * hd;
                int dkb = dkOff + b * T * ldk + kvh * hd, dvb = dvOff + b * T * ldk + kvh * hd;
                for (int j = 0; j < T; j++) {
                    Arrays.fill(dk, dkb + j * ldk, dkb + j * ldk + hd, 0f);
                    Arrays.fill(dv, dvb + j * ldk, dvb + j * ldk + hd, 0f);
                }
                Attention.transpose(k, kb, ldk, kt, T, hd);
                Attention.transpose(v, vb, ldk, vt, T, hd);
                for (int g = 0; g < G; g++) {
                    int h = kvh * G + g, bh = b * NH + h;
                    int rowOff = b * T * ldq + h * hd, qb = qOff + rowOff, gb = doutOff + rowOff;
                    int ob = outOff + rowOff, dqb = dqOff + rowOff;
                    for (int i0 = 0; i0 < T; i0 += R) {
                        int r = Math.min(R, T - i0), n = i0 + r, lo = firstKey(i0, window, starts, st), N = n - lo;
                        Attention.mm(false, r, N, hd, q, qb + i0 * ldq, ldq, kt, lo, T, sb, 0, T, false);    // q·kᵀ
                        Attention.mm(false, r, N, hd, dout, gb + i0 * ldq, ldq, vt, lo, T, db, 0, T, false); // dout·vᵀ
                        for (int ii = 0; ii < r; ii++) {
                            int i = i0 + ii, o = ii * T, a = firstKey(i, window, starts, st) - lo, e = i + 1 - lo, m = e - a;
                            // D_i = Σ_j P_ij·dP_ij = dout_i · out_i
                            float D = VecMath.dot(dout, gb + i * ldq, out, ob + i * ldq, hd);
                            Attention.scaleBy(sb, o + a, m, scale);
                            VecMath.expShift(sb, o + a, m, lse[lseOff + bh * T + i]); // P_i
                            scoreGrad(sb, o + a, db, o + a, D, scale, m);             // db = dS·scale
                            Arrays.fill(sb, o, o + a, 0f);
                            Arrays.fill(sb, o + e, o + N, 0f);
                            Arrays.fill(db, o, o + a, 0f);
                            Arrays.fill(db, o + e, o + N, 0f);
                        }
                        Attention.mm(false, r, hd, N, db, 0, T, k, kb + lo * ldk, ldk, dq, dqb + i0 * ldq, ldq, false); // dq = dS·k
                        Attention.mm(true, N, hd, r, db, 0, T, q, qb + i0 * ldq, ldq, dk, dkb + lo * ldk, ldk, true);   // dk += dSᵀ·q
                        Attention.mm(true, N, hd, r, sb, 0, T, dout, gb + i0 * ldq, ldq, dv, dvb + lo * ldk, ldk, true); // dv += Pᵀ·dout
                    }
                }
            }
        });
    }

    /**
     * One query against a KV cache (decoding): out (NH·hd) = attention of q (NH·hd), the newest token at position
     * len − 1, over the cached keys and values (len, NKV·hd) from kOff / vOff (the window applies as in
     * {@link #forward}). scratch: at least len floats, overwritten.
     */
    public static void decodeStep(float[] out, int outOff, float[] q, int qOff, float[] kCache, int kOff,
                                  float[] vCache, int vOff, int len, int NH, int NKV, int hd, float scale, int window,
                                  float[] scratch) {
        check(NH, NKV, hd, window);
        if (len < 1) throw new IllegalArgumentException("decodeStep needs at least one cached position, got " + len);
        if (scratch.length < len)
            throw new IllegalArgumentException("decodeStep scratch needs " + len + " floats, got " + scratch.length);
        int G = NH / NKV, ldk = NKV * hd, j0 = firstKey(len - 1, window), m = len - j0;
        for (int h = 0; h < NH; h++) {
            int kvh = h / G, qo = qOff + h * hd, oo = outOff + h * hd;
            for (int j = 0; j < m; j++)
                scratch[j] = VecMath.dot(q, qo, kCache, kOff + (j0 + j) * ldk + kvh * hd, hd) * scale;
            float max = Attention.max(scratch, 0, m);
            float inv = 1f / VecMath.expShift(scratch, 0, m, max);
            Arrays.fill(out, oo, oo + hd, 0f);
            for (int j = 0; j < m; j++) VecMath.axpy(scratch[j] * inv, vCache, vOff + (j0 + j) * ldk + kvh * hd, out, oo, hd);
        }
    }

    /** The first key query i may attend to. */
    private static int firstKey(int i, int window) {
        return window > 0 ? Math.max(0, i - window + 1) : 0;
    }

    /** The first key query i of a row may attend to, its document's start included (starts null: none). */
    private static int firstKey(int i, int window, int[] starts, int rowOff) {
        int w = firstKey(i, window);
        return starts == null ? w : Math.max(w, starts[rowOff + i]);
    }

    private static void check(int NH, int NKV, int hd, int window) {
        if (NH < 1 || NKV < 1 || NH % NKV != 0)
            throw new IllegalArgumentException("attention heads (" + NH + ") must be a positive multiple of key/value heads (" + NKV + ")");
        if (hd < 1) throw new IllegalArgumentException("head_dim must be >= 1, got " + hd);
        if (window < 0) throw new IllegalArgumentException("sliding window must be >= 0 (0: none), got " + window);
    }

    /** dp ← P∘(dp − D)·scale over n entries (the score gradient, ready for the q and k products). */
    private static void scoreGrad(float[] p, int po, float[] dp, int dpo, float D, float scale, int n) {
        var S = VecMath.S;
        int j = 0, ub = S.loopBound(n);
        for (; j < ub; j += S.length()) {
            FloatVector pv = FloatVector.fromArray(S, p, po + j);
            FloatVector.fromArray(S, dp, dpo + j).sub(D).mul(pv).mul(scale).intoArray(dp, dpo + j);
        }
        for (; j < n; j++) dp[dpo + j] = (dp[dpo + j] - D) * p[po + j] * scale;
    }

    /** Naive twin of {@link #forward}: each row's scores materialised in double. */
    public static void forwardNaive(float[] out, float[] lse, float[] q, float[] k, float[] v, int B, int T, int NH,
                                    int NKV, int hd, float scale, int window) {
        forwardNaive(out, lse, q, k, v, null, B, T, NH, NKV, hd, scale, window);
    }

    /** Naive twin of the packed {@link #forward}. */
    public static void forwardNaive(float[] out, float[] lse, float[] q, float[] k, float[] v, int[] starts, int B,
                                    int T, int NH, int NKV, int hd, float scale, int window) {
        check(NH, NKV, hd, window);
        int G = NH / NKV, ldq = NH * hd, ldk = NKV * hd;
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++) {
                int kvh = h / G;
                for (int i = 0; i < T; i++) {
                    int j0 = starts == null ? 0 : starts[b * T + i];
                    double[] p = probs(q, k, b, i, h, kvh, T, ldq, ldk, hd, scale, window);
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (int j = 0; j <= i; j++) if (allowed(i, j, window, j0)) max = Math.max(max, p[j]);
                    for (int j = 0; j <= i; j++) if (allowed(i, j, window, j0)) sum += Math.exp(p[j] - max);
                    lse[(b * NH + h) * T + i] = (float) (max + Math.log(sum));
                    for (int j = 0; j <= i; j++) p[j] = allowed(i, j, window, j0) ? Math.exp(p[j] - max) / sum : 0;
                    for (int d = 0; d < hd; d++) {
                        double o = 0;
                        for (int j = 0; j <= i; j++) o += p[j] * v[(b * T + j) * ldk + kvh * hd + d];
                        out[(b * T + i) * ldq + h * hd + d] = (float) o;
                    }
                }
            }
    }

    /** Naive twin of {@link #backward}: textbook softmax backward on the materialised probabilities (overwrites). */
    public static void backwardNaive(float[] dq, float[] dk, float[] dv, float[] dout, float[] q, float[] k, float[] v,
                                     int B, int T, int NH, int NKV, int hd, float scale, int window) {
        backwardNaive(dq, dk, dv, dout, q, k, v, null, B, T, NH, NKV, hd, scale, window);
    }

    /** Naive twin of the packed {@link #backward}. */
    public static void backwardNaive(float[] dq, float[] dk, float[] dv, float[] dout, float[] q, float[] k, float[] v,
                                     int[] starts, int B, int T, int NH, int NKV, int hd, float scale, int window) {
        check(NH, NKV, hd, window);
        int G = NH / NKV, ldq = NH * hd, ldk = NKV * hd;
        double[] gq = new double[B * T * ldq], gk = new double[B * T * ldk], gv = new double[B * T * ldk];
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++) {
                int kvh = h / G;
                for (int i = 0; i < T; i++) {
                    int j0 = starts == null ? 0 : starts[b * T + i];
                    double[] p = probs(q, k, b, i, h, kvh, T, ldq, ldk, hd, scale, window);
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (int j = 0; j <= i; j++) if (allowed(i, j, window, j0)) max = Math.max(max, p[j]);
                    for (int j = 0; j <= i; j++) if (allowed(i, j, window, j0)) sum += Math.exp(p[j] - max);
                    for (int j = 0; j <= i; j++) p[j] = allowed(i, j, window, j0) ? Math.exp(p[j] - max) / sum : 0;
                    int qi = (b * T + i) * ldq + h * hd;
                    double[] dp = new double[i + 1];
                    double dot = 0;
                    for (int j = 0; j <= i; j++) {
                        int kj = (b * T + j) * ldk + kvh * hd;
                        for (int d = 0; d < hd; d++) dp[j] += (double) dout[qi + d] * v[kj + d];
                        dot += p[j] * dp[j];
                    }
                    for (int j = 0; j <= i; j++) {
                        int kj = (b * T + j) * ldk + kvh * hd;
                        double ds = p[j] * (dp[j] - dot) * scale;
                        for (int d = 0; d < hd; d++) {
                            gv[kj + d] += p[j] * dout[qi + d];
                            gk[kj + d] += ds * q[qi + d];
                            gq[qi + d] += ds * k[kj + d];
                        }
                    }
                }
            }
        for (int i = 0; i < gq.length; i++) dq[i] = (float) gq[i];
        for (int i = 0; i < gk.length; i++) {
            dk[i] = (float) gk[i];
            dv[i] = (float) gv[i];
        }
    }

    private static boolean allowed(int i, int j, int window, int j0) {
        return j >= j0 && j <= i && (window <= 0 || j > i - window);
    }

    /** Scaled scores of query row i against keys 0..i (double). */
    private static double[] probs(float[] q, float[] k, int b, int i, int h, int kvh, int T, int ldq, int ldk, int hd,
                                  float scale, int window) {
        double[] s = new double[i + 1];
        for (int j = 0; j <= i; j++) {
            double d = 0;
            for (int c = 0; c < hd; c++) d += (double) q[(b * T + i) * ldq + h * hd + c] * k[(b * T + j) * ldk + kvh * hd + c];
            s[j] = d * scale;
        }
        return s;
    }
}
