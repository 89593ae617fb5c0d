package dev.cpt4j.tensor.cpu;

import dev.cpt4j.tensor.Parallel;
import jdk.incubator.vector.FloatVector;

/**
 * Causal multi-head self-attention on GPT-2's fused qkv, forward and backward, without keeping the (B, NH, T, T)
 * attention matrix: forward saves only the output and each row's log-sum-exp; backward recomputes the scores
 * (FlashAttention, Dao et al. 2022: P = exp(S − lse), dS = P∘(dP − rowsum(dO∘O))). Each thread works on one head at
 * a time in blocks of R query rows, so its only temporaries are an (R, T) score block and the head's transposed keys
 * and values (hd, T). Attention-probability dropout (transformers' attn_dropout) uses a {@link Dropout} mask
 * regenerated from the seed in backward.
 *
 * <p>B batch, T time, C width, NH heads, hd = C/NH. qkv (B, T, 3C) holds q | k | v per row, head h at columns
 * h·hd. Work is split over (b, h) pairs, which write disjoint slices, so results do not depend on the thread count.
 */
public final class Attention {
    private Attention() {}

    /** Query rows processed together (the diagonal block wastes at most R/2 columns per row). */
    private static final int R = 16;

    /**
     * out (B, T, C) = softmax(scale·q·kᵀ + causal mask) · v per head (dropout p on the probabilities);
     * lse (B, NH, T) = log Σ_j exp(scale·q_i·k_j).
     */
    public static void forward(Parallel par, float[] out, int outOff, float[] lse, int lseOff,
                               float[] qkv, int qkvOff, int B, int T, int C, int NH, float scale,
                               float dropP, long seed, long stream) {
        forward(par, out, outOff, lse, lseOff, qkv, qkvOff, null, 0, B, T, C, NH, scale, dropP, seed, stream, 0);
    }

    /** The packed forward below for the rows of a whole batch ({@code firstToken} 0). */
    public static void forward(Parallel par, float[] out, int outOff, float[] lse, int lseOff,
                               float[] qkv, int qkvOff, int[] starts, int startsOff, int B, int T, int C, int NH,
                               float scale, float dropP, long seed, long stream) {
        forward(par, out, outOff, lse, lseOff, qkv, qkvOff, starts, startsOff, B, T, C, NH, scale, dropP, seed, stream, 0);
    }

    /** The forward of one causal sequence per row, for rows starting at global token {@code firstToken}. */
    public static void forward(Parallel par, float[] out, int outOff, float[] lse, int lseOff,
                               float[] qkv, int qkvOff, int B, int T, int C, int NH, float scale,
                               float dropP, long seed, long stream, long firstToken) {
        forward(par, out, outOff, lse, lseOff, qkv, qkvOff, null, 0, B, T, C, NH, scale, dropP, seed, stream, firstToken);
    }

    /**
     * As {@link #forward(Parallel, float[], int, float[], int, float[], int, int, int, int, int, float, float, long, long)}
     * with documents packed in each row (neat packing): {@code starts} (B, T) from {@code startsOff} holds, for every
     * token, the index in its row where its document begins, so query i sees only keys j with
     * starts[i] ≤ j ≤ i. Null: one causal sequence per row. Columns left of a block's first document start are never
     * computed (the tile is skipped, not masked), so packing many documents costs less than one long one. Dropout
     * keeps the column numbering of the whole row. The rows are those of a larger batch that start at global token
     * {@code firstToken} (a rank's share; 0 for a whole batch): the probability-dropout mask of each (sample, head,
     * query) row is the larger batch's.
     */
    public static void forward(Parallel par, float[] out, int outOff, float[] lse, int lseOff,
                               float[] qkv, int qkvOff, int[] starts, int startsOff, int B, int T, int C, int NH,
                               float scale, float dropP, long seed, long stream, long firstToken) {
        int hd = C / NH, C3 = 3 * C;
        long rowOrigin = firstToken * NH;   // global (b·NH + h)·T + i = local + firstSample·NH·T
        long key = Dropout.key(seed, stream);
        par.forRange(B * NH, (p0, p1) -> {
            float[] sb = new float[R * T];  // (R, T) scores → probabilities of a block of query rows
            float[] kt = new float[hd * T]; // (hd, T) this head's keys, transposed
            for (int bh = p0; bh < p1; bh++) {
                int b = bh / NH, h = bh % NH, st = startsOff + b * T;
                int base = qkvOff + b * T * C3 + h * hd;
                transpose(qkv, base + C, C3, kt, T, hd);
                for (int i0 = 0; i0 < T; i0 += R) {
                    int r = Math.min(R, T - i0), n = i0 + r, lo = starts == null ? 0 : starts[st + i0], N = n - lo;
                    mm(false, r, N, hd, qkv, base + i0 * C3, C3, kt, lo, T, sb, 0, T, false);
                    for (int ii = 0; ii < r; ii++) {
                        int i = i0 + ii, o = ii * T, s0 = starts == null ? 0 : starts[st + i];
                        int a = s0 - lo, e = i + 1 - lo, m = e - a;
                        scaleBy(sb, o + a, m, scale);
                        float max = max(sb, o + a, m);
                        float sum = VecMath.expShift(sb, o + a, m, max);
                        lse[lseOff + bh * T + i] = max + (float) StrictMath.log(sum); // StrictMath: fixed bits at every JIT tier
                        scaleBy(sb, o + a, m, 1f / sum);
                        java.util.Arrays.fill(sb, o, o + a, 0f);
                        java.util.Arrays.fill(sb, o + e, o + N, 0f);
                        if (dropP > 0f) Dropout.scaleRow(Dropout.rowKey(key, rowOrigin + (long) bh * T + i), dropP, sb, o + a, m, s0);
                    }
                    mm(false, r, hd, N, sb, 0, T, qkv, base + 2 * C + lo * C3, C3, out, outOff + (b * T + i0) * C + h * hd, C, false);
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
        backward(par, dqkv, dqkvOff, dout, doutOff, out, outOff, lse, lseOff, qkv, qkvOff, null, 0, B, T, C, NH, scale,
                dropP, seed, stream, 0);
    }

    /** The packed backward below for the rows of a whole batch ({@code firstToken} 0). */
    public static void backward(Parallel par, float[] dqkv, int dqkvOff, float[] dout, int doutOff,
                                float[] out, int outOff, float[] lse, int lseOff, float[] qkv, int qkvOff,
                                int[] starts, int startsOff, int B, int T, int C, int NH, float scale, float dropP,
                                long seed, long stream) {
        backward(par, dqkv, dqkvOff, dout, doutOff, out, outOff, lse, lseOff, qkv, qkvOff, starts, startsOff, B, T, C, NH,
                scale, dropP, seed, stream, 0);
    }

    /** The backward of one causal sequence per row, for rows starting at global token {@code firstToken}. */
    public static void backward(Parallel par, float[] dqkv, int dqkvOff, float[] dout, int doutOff,
                                float[] out, int outOff, float[] lse, int lseOff, float[] qkv, int qkvOff,
                                int B, int T, int C, int NH, float scale, float dropP, long seed, long stream,
                                long firstToken) {
        backward(par, dqkv, dqkvOff, dout, doutOff, out, outOff, lse, lseOff, qkv, qkvOff, null, 0, B, T, C, NH, scale,
                dropP, seed, stream, firstToken);
    }

    /**
     * The backward of the packed {@link #forward} ({@code starts} as there; null: one sequence per row), for rows
     * starting at global token {@code firstToken}, as the forward with that origin.
     */
    public static void backward(Parallel par, float[] dqkv, int dqkvOff, float[] dout, int doutOff,
                                float[] out, int outOff, float[] lse, int lseOff, float[] qkv, int qkvOff,
                                int[] starts, int startsOff, int B, int T, int C, int NH, float scale, float dropP,
                                long seed, long stream, long firstToken) {
        int hd = C / NH, C3 = 3 * C;
        long rowOrigin = firstToken * NH;
        long key = Dropout.key(seed, stream);
        par.forRange(B * NH, (p0, p1) -> {
            float[] sb = new float[R * T], db = new float[R * T], mk = new float[T];
            float[] kt = new float[hd * T], vt = new float[hd * T];
            for (int bh = p0; bh < p1; bh++) {
                int b = bh / NH, h = bh % NH, st = startsOff + b * T;
                int base = qkvOff + b * T * C3 + h * hd, dbase = dqkvOff + b * T * C3 + h * hd;
                transpose(qkv, base + C, C3, kt, T, hd);
                transpose(qkv, base + 2 * C, C3, vt, T, hd);
                for (int i0 = 0; i0 < T; i0 += R) {
                    int r = Math.min(R, T - i0), n = i0 + r, go = doutOff + (b * T + i0) * C + h * hd;
                    int lo = starts == null ? 0 : starts[st + i0], N = n - lo;
                    mm(false, r, N, hd, qkv, base + i0 * C3, C3, kt, lo, T, sb, 0, T, false); // q·kᵀ
                    mm(false, r, N, hd, dout, go, C, vt, lo, T, db, 0, T, false);             // dout·vᵀ
                    for (int ii = 0; ii < r; ii++) {
                        int i = i0 + ii, o = ii * T, s0 = starts == null ? 0 : starts[st + i];
                        int a = s0 - lo, e = i + 1 - lo, m = e - a;
                        // D_i = Σ_j P_ij·dP_ij = dout_i · out_i (holds with dropout too, since out = (P∘M)·v)
                        float D = VecMath.dot(dout, go + ii * C, out, outOff + (b * T + i) * C + h * hd, hd);
                        scaleBy(sb, o + a, m, scale);
                        VecMath.expShift(sb, o + a, m, lse[lseOff + bh * T + i]); // P_i
                        java.util.Arrays.fill(mk, 0, m, 1f);
                        if (dropP > 0f) Dropout.scaleRow(Dropout.rowKey(key, rowOrigin + (long) bh * T + i), dropP, mk, 0, m, s0);
                        softmaxGrad(sb, o + a, db, o + a, mk, D, scale, m); // db = dS·scale, sb = P∘M
                        java.util.Arrays.fill(sb, o, o + a, 0f);
                        java.util.Arrays.fill(db, o, o + a, 0f);
                        java.util.Arrays.fill(sb, o + e, o + N, 0f);
                        java.util.Arrays.fill(db, o + e, o + N, 0f);
                    }
                    mm(false, r, hd, N, db, 0, T, qkv, base + C + lo * C3, C3, dqkv, dbase + i0 * C3, C3, true);  // dq += dS·k
                    mm(true, N, hd, r, db, 0, T, qkv, base + i0 * C3, C3, dqkv, dbase + C + lo * C3, C3, true);   // dk += dSᵀ·q
                    mm(true, N, hd, r, sb, 0, T, dout, go, C, dqkv, dbase + 2 * C + lo * C3, C3, true);          // dv += (P∘M)ᵀ·dout
                }
            }
        });
    }

    /**
     * A small register-blocked product for one head: C (M, N) (+)= op(A) · B, op(A)[i][k] = A[aOff + i·lda + k] or,
     * if transA, A[aOff + k·lda + i]; B[bOff + k·ldb + j]; C[cOff + i·ldc + j]. Four rows of C per pass share each
     * loaded vector of B.
     */
    static void mm(boolean transA, int M, int N, int K, float[] A, int aOff, int lda, float[] Bm, int bOff, int ldb,
                   float[] Cm, int cOff, int ldc, boolean accumulate) {
        var S = VecMath.S;
        int L = S.length(), ub = S.loopBound(N);
        int si = transA ? 1 : lda, sk = transA ? lda : 1;
        int i = 0;
        for (; i + 4 <= M; i += 4) {
            int a0 = aOff + i * si, a1 = a0 + si, a2 = a1 + si, a3 = a2 + si;
            int c0 = cOff + i * ldc, c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
            int j = 0;
            for (; j + 2 * L <= N; j += 2 * L) { // 4 rows × 2 vectors: 8 accumulators share 2 loads of B
                FloatVector x0, x1, x2, x3, y0, y1, y2, y3;
                if (accumulate) {
                    x0 = FloatVector.fromArray(S, Cm, c0 + j);
                    x1 = FloatVector.fromArray(S, Cm, c1 + j);
                    x2 = FloatVector.fromArray(S, Cm, c2 + j);
                    x3 = FloatVector.fromArray(S, Cm, c3 + j);
                    y0 = FloatVector.fromArray(S, Cm, c0 + j + L);
                    y1 = FloatVector.fromArray(S, Cm, c1 + j + L);
                    y2 = FloatVector.fromArray(S, Cm, c2 + j + L);
                    y3 = FloatVector.fromArray(S, Cm, c3 + j + L);
                } else x0 = x1 = x2 = x3 = y0 = y1 = y2 = y3 = FloatVector.zero(S);
                for (int k = 0; k < K; k++) {
                    int bo = bOff + k * ldb + j, ak = k * sk;
                    FloatVector bv = FloatVector.fromArray(S, Bm, bo), bw = FloatVector.fromArray(S, Bm, bo + L);
                    FloatVector s0 = FloatVector.broadcast(S, A[a0 + ak]), s1 = FloatVector.broadcast(S, A[a1 + ak]);
                    FloatVector s2 = FloatVector.broadcast(S, A[a2 + ak]), s3 = FloatVector.broadcast(S, A[a3 + ak]);
                    x0 = bv.fma(s0, x0);
                    y0 = bw.fma(s0, y0);
                    x1 = bv.fma(s1, x1);
                    y1 = bw.fma(s1, y1);
                    x2 = bv.fma(s2, x2);
                    y2 = bw.fma(s2, y2);
                    x3 = bv.fma(s3, x3);
                    y3 = bw.fma(s3, y3);
                }
                x0.intoArray(Cm, c0 + j);
                x1.intoArray(Cm, c1 + j);
                x2.intoArray(Cm, c2 + j);
                x3.intoArray(Cm, c3 + j);
                y0.intoArray(Cm, c0 + j + L);
                y1.intoArray(Cm, c1 + j + L);
                y2.intoArray(Cm, c2 + j + L);
                y3.intoArray(Cm, c3 + j + L);
            }
            for (; j < ub; j += L) {
                FloatVector x0, x1, x2, x3;
                if (accumulate) {
                    x0 = FloatVector.fromArray(S, Cm, c0 + j);
                    x1 = FloatVector.fromArray(S, Cm, c1 + j);
                    x2 = FloatVector.fromArray(S, Cm, c2 + j);
                    x3 = FloatVector.fromArray(S, Cm, c3 + j);
                } else x0 = x1 = x2 = x3 = FloatVector.zero(S);
                for (int k = 0; k < K; k++) {
                    FloatVector bv = FloatVector.fromArray(S, Bm, bOff + k * ldb + j);
                    int ak = k * sk;
                    x0 = bv.fma(FloatVector.broadcast(S, A[a0 + ak]), x0);
                    x1 = bv.fma(FloatVector.broadcast(S, A[a1 + ak]), x1);
                    x2 = bv.fma(FloatVector.broadcast(S, A[a2 + ak]), x2);
                    x3 = bv.fma(FloatVector.broadcast(S, A[a3 + ak]), x3);
                }
                x0.intoArray(Cm, c0 + j);
                x1.intoArray(Cm, c1 + j);
                x2.intoArray(Cm, c2 + j);
                x3.intoArray(Cm, c3 + j);
            }
            for (; j < N; j++) {
                float y0 = 0, y1 = 0, y2 = 0, y3 = 0;
                for (int k = 0; k < K; k++) {
                    float bv = Bm[bOff + k * ldb + j];
                    int ak = k * sk;
                    y0 += A[a0 + ak] * bv;
                    y1 += A[a1 + ak] * bv;
                    y2 += A[a2 + ak] * bv;
                    y3 += A[a3 + ak] * bv;
                }
                if (accumulate) {
                    Cm[c0 + j] += y0; Cm[c1 + j] += y1; Cm[c2 + j] += y2; Cm[c3 + j] += y3;
                } else {
                    Cm[c0 + j] = y0; Cm[c1 + j] = y1; Cm[c2 + j] = y2; Cm[c3 + j] = y3;
                }
            }
        }
        for (; i < M; i++) {
            int a0 = aOff + i * si, c0 = cOff + i * ldc;
            int j = 0;
            for (; j < ub; j += L) {
                FloatVector x0 = accumulate ? FloatVector.fromArray(S, Cm, c0 + j) : FloatVector.zero(S);
                for (int k = 0; k < K; k++)
                    x0 = FloatVector.fromArray(S, Bm, bOff + k * ldb + j).fma(FloatVector.broadcast(S, A[a0 + k * sk]), x0);
                x0.intoArray(Cm, c0 + j);
            }
            for (; j < N; j++) {
                float y0 = 0;
                for (int k = 0; k < K; k++) y0 += A[a0 + k * sk] * Bm[bOff + k * ldb + j];
                Cm[c0 + j] = accumulate ? Cm[c0 + j] + y0 : y0;
            }
        }
    }

    /** dst (hd, T) = the (T, hd) rows src[off + j·stride + d]. (transpose, max, scaleBy and mm serve GqaAttention too.) */
    static void transpose(float[] src, int off, int stride, float[] dst, int T, int hd) {
        for (int j = 0; j < T; j++) {
            int o = off + j * stride;
            for (int d = 0; d < hd; d++) dst[d * T + j] = src[o + d];
        }
    }

    /** dp ← P∘(dp∘M − D)·scale (the score gradient); p ← P∘M (the weights of v). */
    private static void softmaxGrad(float[] p, int po, float[] dp, int dpo, float[] mk, float D, float scale, int n) {
        var S = VecMath.S;
        int j = 0, ub = S.loopBound(n);
        for (; j < ub; j += S.length()) {
            FloatVector pv = FloatVector.fromArray(S, p, po + j), m = FloatVector.fromArray(S, mk, j);
            FloatVector g = FloatVector.fromArray(S, dp, dpo + j);
            g.fma(m, FloatVector.broadcast(S, -D)).mul(pv).mul(scale).intoArray(dp, dpo + j);
            pv.mul(m).intoArray(p, po + j);
        }
        for (; j < n; j++) {
            dp[dpo + j] = p[po + j] * (dp[dpo + j] * mk[j] - D) * scale;
            p[po + j] *= mk[j];
        }
    }

    static float max(float[] s, int o, int n) {
        var S = VecMath.S;
        int j = 0, ub = S.loopBound(n);
        FloatVector m = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
        for (; j < ub; j += S.length()) m = m.max(FloatVector.fromArray(S, s, o + j));
        float r = m.reduceLanes(jdk.incubator.vector.VectorOperators.MAX);
        for (; j < n; j++) r = Math.max(r, s[o + j]);
        return r;
    }

    static void scaleBy(float[] s, int o, int n, float f) {
        var S = VecMath.S;
        int j = 0, ub = S.loopBound(n);
        for (; j < ub; j += S.length()) FloatVector.fromArray(S, s, o + j).mul(f).intoArray(s, o + j);
        for (; j < n; j++) s[o + j] *= f;
    }


    /** Naive twin of {@link #forward}: the full T×T score matrix per head in double. */
    public static void forwardNaive(float[] out, float[] lse, float[] qkv, int B, int T, int C, int NH, float scale,
                                    float dropP, long seed, long stream) {
        forwardNaive(out, lse, qkv, null, B, T, C, NH, scale, dropP, seed, stream);
    }

    /** Naive twin of the packed {@link #forward}: keys before the query's document start are left out. */
    public static void forwardNaive(float[] out, float[] lse, float[] qkv, int[] starts, int B, int T, int C, int NH,
                                    float scale, float dropP, long seed, long stream) {
        int hd = C / NH, C3 = 3 * C;
        long key = Dropout.key(seed, stream);
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++) {
                int bh = b * NH + h;
                for (int i = 0; i < T; i++) {
                    int j0 = starts == null ? 0 : starts[b * T + i];
                    double[] sc = new double[i + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = j0; j <= i; j++) {
                        double d = 0;
                        for (int k = 0; k < hd; k++)
                            d += (double) qkv[(b * T + i) * C3 + h * hd + k] * qkv[(b * T + j) * C3 + C + h * hd + k];
                        sc[j] = d * scale;
                        max = Math.max(max, sc[j]);
                    }
                    double sum = 0;
                    for (int j = j0; j <= i; j++) sum += Math.exp(sc[j] - max);
                    lse[bh * T + i] = (float) (max + Math.log(sum));
                    for (int k = 0; k < hd; k++) {
                        double o = 0;
                        for (int j = j0; j <= i; j++) {
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
        backwardNaive(dqkv, dout, qkv, null, B, T, C, NH, scale, dropP, seed, stream);
    }

    /** Naive twin of the packed {@link #backward}. */
    public static void backwardNaive(float[] dqkv, float[] dout, float[] qkv, int[] starts, int B, int T, int C, int NH,
                                     float scale, float dropP, long seed, long stream) {
        int hd = C / NH, C3 = 3 * C;
        long key = Dropout.key(seed, stream);
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++) {
                int bh = b * NH + h;
                for (int i = 0; i < T; i++) {
                    int j0 = starts == null ? 0 : starts[b * T + i];
                    double[] p = new double[i + 1], mk = new double[i + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = j0; j <= i; j++) {
                        double d = 0;
                        for (int k = 0; k < hd; k++)
                            d += (double) qkv[(b * T + i) * C3 + h * hd + k] * qkv[(b * T + j) * C3 + C + h * hd + k];
                        p[j] = d * scale;
                        max = Math.max(max, p[j]);
                        mk[j] = dropP > 0f ? (Dropout.keep(Dropout.rowKey(key, (long) bh * T + i), j, dropP) ? 1 / (1.0 - dropP) : 0) : 1;
                    }
                    double sum = 0;
                    for (int j = j0; j <= i; j++) sum += Math.exp(p[j] - max);
                    for (int j = j0; j <= i; j++) p[j] = Math.exp(p[j] - max) / sum;
                    double[] dp = new double[i + 1];
                    double dot = 0;
                    for (int j = j0; j <= i; j++) {
                        double d = 0;
                        for (int k = 0; k < hd; k++)
                            d += (double) dout[(b * T + i) * C + h * hd + k] * qkv[(b * T + j) * C3 + 2 * C + h * hd + k];
                        dp[j] = d * mk[j];
                        dot += p[j] * dp[j];
                    }
                    for (int j = j0; j <= i; j++) {
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
