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
