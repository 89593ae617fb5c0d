package dev.cpt4j.tensor.cpu;

/**
 * The naive twin of {@link Gemm}: C = beta·C + op(A)·op(B) with plain loops, row-major, for tests and as the
 * definition of the contract. op(A) is M×K: {@code A[i*lda+k]}, or if transA {@code A[k*lda+i]}; op(B) is K×N:
 * {@code B[k*ldb+j]}, or if transB {@code B[j*ldb+k]}; {@code C[i*ldc+j]}. beta is 0 (overwrite) or 1 (accumulate).
 */
public final class GemmNaive {
    private GemmNaive() {}

    public static void sgemm(boolean transA, boolean transB, int M, int N, int K,
                             float[] A, int aOff, int lda, float[] B, int bOff, int ldb,
                             float beta, float[] C, int cOff, int ldc) {
        for (int i = 0; i < M; i++) {
            for (int j = 0; j < N; j++) {
                float acc = 0f;
                for (int k = 0; k < K; k++) {
                    float a = transA ? A[aOff + k * lda + i] : A[aOff + i * lda + k];
                    float b = transB ? B[bOff + j * ldb + k] : B[bOff + k * ldb + j];
                    acc += a * b;
                }
                int c = cOff + i * ldc + j;
                C[c] = beta == 0f ? acc : beta * C[c] + acc;
            }
        }
    }
}
