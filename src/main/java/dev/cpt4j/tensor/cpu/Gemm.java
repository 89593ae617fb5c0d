package dev.cpt4j.tensor.cpu;

import dev.cpt4j.tensor.Parallel;

/**
 * Single-precision matrix product, row-major: C = beta·C + op(A)·op(B) (see {@link GemmNaive} for the exact
 * indexing). Rows of C are split across the {@link Parallel} threads. Not thread-safe across callers.
 */
public final class Gemm {
    private final Parallel par;

    public Gemm(Parallel par) {
        this.par = par;
    }

    /** C = beta·C + op(A)·op(B), row-major. op(A) is M×K: A[i*lda+k], or if transA A[k*lda+i].
     *  op(B) is K×N: B[k*ldb+j], or if transB B[j*ldb+k]. C[i*ldc+j]. beta is 0 (overwrite) or 1 (accumulate). */
    public void sgemm(boolean transA, boolean transB, int M, int N, int K,
                      float[] A, int aOff, int lda, float[] B, int bOff, int ldb,
                      float beta, float[] C, int cOff, int ldc) {
        par.forRange(M, (i0, i1) -> {
            float[] arow = new float[K];
            for (int i = i0; i < i1; i++) {
                int c0 = cOff + i * ldc;
                if (beta == 0f) java.util.Arrays.fill(C, c0, c0 + N, 0f);
                for (int k = 0; k < K; k++) arow[k] = transA ? A[aOff + k * lda + i] : A[aOff + i * lda + k];
                if (!transB) {
                    for (int k = 0; k < K; k++) {
                        float a = arow[k];
                        int b0 = bOff + k * ldb;
                        VecMath.axpy(a, B, b0, C, c0, N);
                    }
                } else {
                    for (int j = 0; j < N; j++) {
                        int b0 = bOff + j * ldb;
                        C[c0 + j] += VecMath.dot(arow, 0, B, b0, K);
                    }
                }
            }
        });
    }

    /** Measures this machine's sgemm GFLOP/s (a few 1024-size products), for MFU reports. */
    public double measurePeakGflops() {
        int n = 512;
        float[] a = new float[n * n], b = new float[n * n], c = new float[n * n];
        java.util.SplittableRandom r = new java.util.SplittableRandom(1);
        for (int i = 0; i < a.length; i++) { a[i] = (float) r.nextDouble(); b[i] = (float) r.nextDouble(); }
        double best = 0;
        for (int rep = 0; rep < 3; rep++) {
            long t0 = System.nanoTime();
            sgemm(false, false, n, n, n, a, 0, n, b, 0, n, 0f, c, 0, n);
            double s = (System.nanoTime() - t0) * 1e-9;
            best = Math.max(best, 2.0 * n * n * n / s / 1e9);
        }
        return best;
    }
}
