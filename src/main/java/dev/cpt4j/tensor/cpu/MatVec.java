package dev.cpt4j.tensor.cpu;

import dev.cpt4j.tensor.Parallel;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Products of a few rows with a large weight matrix, as one decode step of N sequences needs (M = N rows, M small):
 * {@code C (M, N) = A (M, K) · B (K, N) + bias}, B row-major {@code [K, N]} (a Conv1D weight). Such a product reads
 * each weight once and does only 2·M flops per weight, so it is bound by memory bandwidth, not by arithmetic; this
 * kernel is written to stream B exactly once per call, in long contiguous runs the hardware prefetcher follows.
 *
 * <p>How: threads split the columns; each thread walks its columns in tiles of {@code M × NT} outputs that stay in
 * L1, and for each tile goes down K eight rows at a time, adding {@code A[i, k..k+7] · B[k..k+7, tile]} into every row i
 * of the tile (the eight B row pieces are read from memory for row 0 and from L1 for the others). A dot-product order
 * (reading B down its columns) would jump a whole B row per element and defeat the prefetcher; a packed GEMM would
 * copy B, which costs as much as the product itself here.
 *
 * <p>Not a GEMM replacement: for many rows (a prefill) use {@link Gemm}, whose micro-kernel reuses B from cache.
 * Sums run in k order per output (each output is {@code bias + Σ_k} with four-term partial sums), so results differ
 * from {@link Gemm}'s only by float rounding.
 */
public final class MatVec {
    private MatVec() {}

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    /** Floats of one C tile (all M rows): 8 KiB, so the tile and eight B row pieces of its width fit a 32 KiB L1. */
    private static final int TILE_FLOATS = 2048;
    /** Columns per thread chunk are a multiple of this (a 64-byte line), so threads rarely share a line of C. */
    private static final int UNIT = 16;

    /**
     * {@code C[cOff + i*ldc + j] = bias[biasOff + j] + Σ_k A[aOff + i*lda + k] · B[bOff + k*ldb + j]} for i in [0, M),
     * j in [0, N); bias may be null (then 0). Threads split the N columns.
     */
    public static void nn(Parallel par, int M, int N, int K, float[] A, int aOff, int lda, float[] B, int bOff, int ldb,
                          float[] bias, int biasOff, float[] C, int cOff, int ldc) {
        if (M < 0 || N < 0 || K < 0) throw new IllegalArgumentException("negative size M=" + M + " N=" + N + " K=" + K);
        if (M == 0 || N == 0) return;
        if (lda < K || ldb < N || ldc < N) throw new IllegalArgumentException("leading dimension below the width");
        checkRange("A", A, aOff, (long) (M - 1) * lda + K);
        checkRange("B", B, bOff, (long) Math.max(K - 1, 0) * ldb + N);
        checkRange("C", C, cOff, (long) (M - 1) * ldc + N);
        if (bias != null) checkRange("bias", bias, biasOff, N);
        int units = (N + UNIT - 1) / UNIT;
        int chunks = Math.min(par.threads(), units);
        if (chunks <= 1) {
            nnColumns(M, 0, N, K, A, aOff, lda, B, bOff, ldb, bias, biasOff, C, cOff, ldc);
            return;
        }
        par.forRange(chunks, (c0, c1) -> {
            int j0 = Math.min(N, (int) ((long) units * c0 / chunks) * UNIT);
            int j1 = Math.min(N, (int) ((long) units * c1 / chunks) * UNIT);
            nnColumns(M, j0, j1, K, A, aOff, lda, B, bOff, ldb, bias, biasOff, C, cOff, ldc);
        });
    }

    /** Columns [j0, j1) of {@link #nn}, tile by tile. */
    private static void nnColumns(int M, int j0, int j1, int K, float[] A, int aOff, int lda, float[] B, int bOff,
                                  int ldb, float[] bias, int biasOff, float[] C, int cOff, int ldc) {
        int nt = Math.max(UNIT, TILE_FLOATS / M / UNIT * UNIT);
        for (int t0 = j0; t0 < j1; t0 += nt) {
            int t1 = Math.min(j1, t0 + nt), w = t1 - t0;
            for (int i = 0; i < M; i++) {
                int c = cOff + i * ldc + t0;
                if (bias != null) System.arraycopy(bias, biasOff + t0, C, c, w);
                else java.util.Arrays.fill(C, c, c + w, 0f);
            }
            int k = 0;
            for (; k + 8 <= K; k += 8) {
                int b0 = bOff + k * ldb + t0;
                for (int i = 0; i < M; i++) add8(A, aOff + i * lda + k, B, b0, ldb, C, cOff + i * ldc + t0, w);
            }
            for (; k + 4 <= K; k += 4) {
                int b0 = bOff + k * ldb + t0, b1 = b0 + ldb, b2 = b1 + ldb, b3 = b2 + ldb;
                for (int i = 0; i < M; i++) {
                    int a = aOff + i * lda + k;
                    add4(A[a], A[a + 1], A[a + 2], A[a + 3], B, b0, b1, b2, b3, C, cOff + i * ldc + t0, w);
                }
            }
            for (; k < K; k++) {
                int b0 = bOff + k * ldb + t0;
                for (int i = 0; i < M; i++) add1(A[aOff + i * lda + k], B, b0, C, cOff + i * ldc + t0, w);
            }
        }
    }

    /** c[0, w) += Σ_{r<8} A[a + r] · B[b0 + r·ldb ..], as two four-term chains. */
    private static void add8(float[] A, int a, float[] B, int b0, int ldb, float[] C, int c, int w) {
        FloatVector v0 = FloatVector.broadcast(S, A[a]), v1 = FloatVector.broadcast(S, A[a + 1]);
        FloatVector v2 = FloatVector.broadcast(S, A[a + 2]), v3 = FloatVector.broadcast(S, A[a + 3]);
        FloatVector v4 = FloatVector.broadcast(S, A[a + 4]), v5 = FloatVector.broadcast(S, A[a + 5]);
        FloatVector v6 = FloatVector.broadcast(S, A[a + 6]), v7 = FloatVector.broadcast(S, A[a + 7]);
        int b1 = b0 + ldb, b2 = b1 + ldb, b3 = b2 + ldb, b4 = b3 + ldb, b5 = b4 + ldb, b6 = b5 + ldb, b7 = b6 + ldb;
        int j = 0, ub = S.loopBound(w);
        for (; j < ub; j += L) {
            FloatVector s0 = v0.mul(FloatVector.fromArray(S, B, b0 + j));
            s0 = v1.fma(FloatVector.fromArray(S, B, b1 + j), s0);
            s0 = v2.fma(FloatVector.fromArray(S, B, b2 + j), s0);
            s0 = v3.fma(FloatVector.fromArray(S, B, b3 + j), s0);
            FloatVector s1 = v4.mul(FloatVector.fromArray(S, B, b4 + j));
            s1 = v5.fma(FloatVector.fromArray(S, B, b5 + j), s1);
            s1 = v6.fma(FloatVector.fromArray(S, B, b6 + j), s1);
            s1 = v7.fma(FloatVector.fromArray(S, B, b7 + j), s1);
            FloatVector.fromArray(S, C, c + j).add(s0.add(s1)).intoArray(C, c + j);
        }
        for (; j < w; j++) {
            float s0 = A[a] * B[b0 + j];
            s0 = Math.fma(A[a + 1], B[b1 + j], s0);
            s0 = Math.fma(A[a + 2], B[b2 + j], s0);
            s0 = Math.fma(A[a + 3], B[b3 + j], s0);
            float s1 = A[a + 4] * B[b4 + j];
            s1 = Math.fma(A[a + 5], B[b5 + j], s1);
            s1 = Math.fma(A[a + 6], B[b6 + j], s1);
            s1 = Math.fma(A[a + 7], B[b7 + j], s1);
            C[c + j] += s0 + s1;
        }
    }

    /** c[0, w) += x0·B[b0..] + x1·B[b1..] + x2·B[b2..] + x3·B[b3..]. */
    private static void add4(float x0, float x1, float x2, float x3, float[] B, int b0, int b1, int b2, int b3,
                             float[] C, int c, int w) {
        FloatVector v0 = FloatVector.broadcast(S, x0), v1 = FloatVector.broadcast(S, x1);
        FloatVector v2 = FloatVector.broadcast(S, x2), v3 = FloatVector.broadcast(S, x3);
        int j = 0, ub = S.loopBound(w);
        for (; j < ub; j += L) {
            FloatVector acc = FloatVector.fromArray(S, C, c + j);
            acc = v0.fma(FloatVector.fromArray(S, B, b0 + j), acc);
            acc = v1.fma(FloatVector.fromArray(S, B, b1 + j), acc);
            acc = v2.fma(FloatVector.fromArray(S, B, b2 + j), acc);
            acc = v3.fma(FloatVector.fromArray(S, B, b3 + j), acc);
            acc.intoArray(C, c + j);
        }
        for (; j < w; j++) {
            float acc = C[c + j];
            acc = Math.fma(x0, B[b0 + j], acc);
            acc = Math.fma(x1, B[b1 + j], acc);
            acc = Math.fma(x2, B[b2 + j], acc);
            acc = Math.fma(x3, B[b3 + j], acc);
            C[c + j] = acc;
        }
    }

    /** c[0, w) += x·B[b..]. */
    private static void add1(float x, float[] B, int b, float[] C, int c, int w) {
        FloatVector v = FloatVector.broadcast(S, x);
        int j = 0, ub = S.loopBound(w);
        for (; j < ub; j += L) v.fma(FloatVector.fromArray(S, B, b + j), FloatVector.fromArray(S, C, c + j)).intoArray(C, c + j);
        for (; j < w; j++) C[c + j] = Math.fma(x, B[b + j], C[c + j]);
    }

    // ---- packed weights: the decode path of a model that multiplies by the same weights every step ----

    /** Columns per packed strip (two vectors); {@link #pack} lays B out as strips of this many columns. */
    public static final int STRIP = 2 * L;
    /** Rows one pass of the packed kernel computes (12 accumulators + 2 B vectors + 1 broadcast = 15 registers). */
    static final int ROWS = 6;

    /** Floats {@link #pack} writes for a K × N matrix: whole strips, the last one padded with zero columns. */
    public static long packedSize(int K, int N) {
        return (long) K * ((N + STRIP - 1) / STRIP) * STRIP;
    }

    /**
     * Copies op(B) (K × N; B row-major {@code [K, N]}, or {@code [N, K]} if transB, as an output head's
     * {@code [V, C]} embedding is) into {@code dst} as column strips: strip s holds columns [s·STRIP, s·STRIP+STRIP)
     * for k = 0..K-1, STRIP floats per k, so {@link #nnPacked} reads the whole matrix as one contiguous stream.
     */
    public static void pack(Parallel par, boolean transB, int K, int N, float[] B, int bOff, int ldb, float[] dst,
                            int dstOff) {
        int strips = (N + STRIP - 1) / STRIP;
        checkRange("B", B, bOff, transB ? (long) Math.max(N - 1, 0) * ldb + K : (long) Math.max(K - 1, 0) * ldb + N);
        checkRange("dst", dst, dstOff, packedSize(K, N));
        par.forRange(strips, (s0, s1) -> {
            for (int s = s0; s < s1; s++) {
                int j0 = s * STRIP, w = Math.min(STRIP, N - j0), d = dstOff + s * K * STRIP;
                if (transB) {
                    for (int j = 0; j < STRIP; j++) {
                        if (j >= w) {
                            for (int k = 0; k < K; k++) dst[d + k * STRIP + j] = 0f;
                            continue;
                        }
                        int src = bOff + (j0 + j) * ldb;
                        for (int k = 0; k < K; k++) dst[d + k * STRIP + j] = B[src + k];
                    }
                } else {
                    for (int k = 0; k < K; k++) {
                        int src = bOff + k * ldb + j0, o = d + k * STRIP;
                        System.arraycopy(B, src, dst, o, w);
                        if (w < STRIP) java.util.Arrays.fill(dst, o + w, o + STRIP, 0f);
                    }
                }
            }
        });
    }

    /**
     * {@code C[cOff + i*ldc + j] = bias[biasOff + j] + Σ_k A[aOff + i*lda + k] · op(B)[k, j]} with op(B) packed by
     * {@link #pack} at {@code bp[bpOff..]}; bias may be null. Threads split the strips. Each strip is read once for
     * every {@value #ROWS} rows, its two vectors per k multiplied into all of them from registers, so for a decode
     * step (M ≤ 6) the weights stream from memory exactly once with two loads per twelve FMAs. Sums run in k order
     * per output from the bias, as {@link #nn}'s do.
     *
     * @param scratch at least {@link #scratchSize}(M, K) floats, not shared with another running call
     */
    public static void nnPacked(Parallel par, int M, int N, int K, float[] A, int aOff, int lda, float[] bp, int bpOff,
                                float[] bias, int biasOff, float[] C, int cOff, int ldc, float[] scratch) {
        if (M < 0 || N < 0 || K < 0) throw new IllegalArgumentException("negative size M=" + M + " N=" + N + " K=" + K);
        if (M == 0 || N == 0) return;
        if (lda < K || ldc < N) throw new IllegalArgumentException("leading dimension below the width");
        checkRange("A", A, aOff, (long) (M - 1) * lda + K);
        checkRange("B", bp, bpOff, packedSize(K, N));
        checkRange("C", C, cOff, (long) (M - 1) * ldc + N);
        if (bias != null) checkRange("bias", bias, biasOff, N);
        if (scratch.length < scratchSize(M, K)) throw new IllegalArgumentException("scratch below scratchSize(M, K)");
        // A as groups of ROWS rows, k-major inside a group (ROWS values per k), rows past M zero: the kernel's
        // broadcasts for one k are then one contiguous 24-byte read.
        int groups = (M + ROWS - 1) / ROWS;
        for (int g = 0; g < groups; g++) {
            int base = g * ROWS * K;
            for (int r = 0; r < ROWS; r++) {
                int i = g * ROWS + r;
                if (i < M) for (int k = 0; k < K; k++) scratch[base + k * ROWS + r] = A[aOff + i * lda + k];
                else for (int k = 0; k < K; k++) scratch[base + k * ROWS + r] = 0f;
            }
        }
        int strips = (N + STRIP - 1) / STRIP;
        par.forRange(strips, (s0, s1) -> {
            for (int s = s0; s < s1; s++) {
                for (int g = 0; g < groups; g++) {
                    strip6(K, scratch, g * ROWS * K, bp, bpOff + s * K * STRIP, bias, biasOff, s * STRIP,
                            Math.min(ROWS, M - g * ROWS), Math.min(STRIP, N - s * STRIP), C, cOff + g * ROWS * ldc, ldc);
                }
            }
        });
    }

    /** Floats of scratch {@link #nnPacked} needs for M rows of width K. */
    public static int scratchSize(int M, int K) {
        return (M + ROWS - 1) / ROWS * ROWS * K;
    }

    /** One strip (STRIP columns starting at j0) for one group of ROWS rows; writes rows [0, m), columns [0, w). */
    private static void strip6(int K, float[] a, int ao, float[] bp, int bo, float[] bias, int biasOff, int j0, int m,
                               int w, float[] C, int co, int ldc) {
        FloatVector z0, z1;
        if (bias == null) {
            z0 = FloatVector.zero(S);
            z1 = z0;
        } else if (w == STRIP) {
            z0 = FloatVector.fromArray(S, bias, biasOff + j0);
            z1 = FloatVector.fromArray(S, bias, biasOff + j0 + L);
        } else {
            float[] t = new float[STRIP];
            System.arraycopy(bias, biasOff + j0, t, 0, w);
            z0 = FloatVector.fromArray(S, t, 0);
            z1 = FloatVector.fromArray(S, t, L);
        }
        FloatVector c00 = z0, c01 = z1, c10 = z0, c11 = z1, c20 = z0, c21 = z1;
        FloatVector c30 = z0, c31 = z1, c40 = z0, c41 = z1, c50 = z0, c51 = z1;
        for (int k = 0; k < K; k++) {
            int b = bo + k * STRIP, x = ao + k * ROWS;
            FloatVector b0 = FloatVector.fromArray(S, bp, b), b1 = FloatVector.fromArray(S, bp, b + L);
            FloatVector v = FloatVector.broadcast(S, a[x]);
            c00 = v.fma(b0, c00);
            c01 = v.fma(b1, c01);
            v = FloatVector.broadcast(S, a[x + 1]);
            c10 = v.fma(b0, c10);
            c11 = v.fma(b1, c11);
            v = FloatVector.broadcast(S, a[x + 2]);
            c20 = v.fma(b0, c20);
            c21 = v.fma(b1, c21);
            v = FloatVector.broadcast(S, a[x + 3]);
            c30 = v.fma(b0, c30);
            c31 = v.fma(b1, c31);
            v = FloatVector.broadcast(S, a[x + 4]);
            c40 = v.fma(b0, c40);
            c41 = v.fma(b1, c41);
            v = FloatVector.broadcast(S, a[x + 5]);
            c50 = v.fma(b0, c50);
            c51 = v.fma(b1, c51);
        }
        if (w == STRIP) {
            switch (m) {
                case 6: c50.intoArray(C, co + 5 * ldc + j0); c51.intoArray(C, co + 5 * ldc + j0 + L);
                case 5: c40.intoArray(C, co + 4 * ldc + j0); c41.intoArray(C, co + 4 * ldc + j0 + L);
                case 4: c30.intoArray(C, co + 3 * ldc + j0); c31.intoArray(C, co + 3 * ldc + j0 + L);
                case 3: c20.intoArray(C, co + 2 * ldc + j0); c21.intoArray(C, co + 2 * ldc + j0 + L);
                case 2: c10.intoArray(C, co + ldc + j0); c11.intoArray(C, co + ldc + j0 + L);
                default: c00.intoArray(C, co + j0); c01.intoArray(C, co + j0 + L);
            }
            return;
        }
        // a partial strip (the last of a width that is not a multiple of STRIP): through a tile
        float[] t = new float[ROWS * STRIP];
        c00.intoArray(t, 0);
        c01.intoArray(t, L);
        c10.intoArray(t, STRIP);
        c11.intoArray(t, STRIP + L);
        c20.intoArray(t, 2 * STRIP);
        c21.intoArray(t, 2 * STRIP + L);
        c30.intoArray(t, 3 * STRIP);
        c31.intoArray(t, 3 * STRIP + L);
        c40.intoArray(t, 4 * STRIP);
        c41.intoArray(t, 4 * STRIP + L);
        c50.intoArray(t, 5 * STRIP);
        c51.intoArray(t, 5 * STRIP + L);
        for (int i = 0; i < m; i++) System.arraycopy(t, i * STRIP, C, co + i * ldc + j0, w);
    }

    /** Naive twin of {@link #nn}: the same sums, one output at a time, in double. */
    public static void nnNaive(int M, int N, int K, float[] A, int aOff, int lda, float[] B, int bOff, int ldb,
                               float[] bias, int biasOff, float[] C, int cOff, int ldc) {
        for (int i = 0; i < M; i++) {
            for (int j = 0; j < N; j++) {
                double s = bias != null ? bias[biasOff + j] : 0.0;
                for (int k = 0; k < K; k++) s += (double) A[aOff + i * lda + k] * B[bOff + k * ldb + j];
                C[cOff + i * ldc + j] = (float) s;
            }
        }
    }

    private static void checkRange(String name, float[] x, int off, long extent) {
        if (off < 0 || off + extent > x.length)
            throw new IllegalArgumentException(name + " too short: offset " + off + " + extent " + extent + " > " + x.length);
    }
}
