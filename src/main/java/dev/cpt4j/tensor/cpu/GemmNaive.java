package dev.cpt4j.tensor.cpu;

/**
 * The naive twin of {@link Gemm}: the textbook triple loop, accumulating each element in double so it serves as the
 * reference in tests. Slow; never used by the engine.
 */
public final class GemmNaive {
    private GemmNaive() {
    }

    /** Same contract as {@link Gemm#sgemm}. */
    public static void sgemm(boolean transA, boolean transB, int M, int N, int K,
                             float[] A, int aOff, int lda, float[] B, int bOff, int ldb,
                             float beta, float[] C, int cOff, int ldc) {
        Gemm.checkArgs(transA, transB, M, N, K, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc);
        for (int i = 0; i < M; i++) {
            for (int j = 0; j < N; j++) {
                double s = 0;
                for (int k = 0; k < K; k++) {
                    float a = transA ? A[aOff + k * lda + i] : A[aOff + i * lda + k];
                    float b = transB ? B[bOff + j * ldb + k] : B[bOff + k * ldb + j];
                    s += (double) a * b;
                }
                int c = cOff + i * ldc + j;
                C[c] = beta == 0f ? (float) s : (float) (C[c] + s);
            }
        }
    }

    /** Same contract as {@link Gemm#sgemmBf16}: op(B) holds bfloat16 bits, widened to fp32 on every read. */
    public static void sgemmBf16(boolean transA, boolean transB, int M, int N, int K,
                                 float[] A, int aOff, int lda, short[] B16, int bOff, int ldb,
                                 float beta, float[] C, int cOff, int ldc) {
        Gemm.checkArgs(transA, transB, M, N, K, A, aOff, lda, B16.length, bOff, ldb, beta, C, cOff, ldc);
        float[] B = new float[B16.length];
        for (int t = 0; t < B.length; t++) B[t] = Float.intBitsToFloat((B16[t] & 0xFFFF) << 16);
        sgemm(transA, transB, M, N, K, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc);
    }
}
