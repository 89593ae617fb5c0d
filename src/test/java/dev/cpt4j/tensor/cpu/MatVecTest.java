package dev.cpt4j.tensor.cpu;

import dev.cpt4j.tensor.Parallel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** {@link MatVec} against its naive twin on odd sizes (1, 7, 33, non-multiples of the vector width), 1–3 threads. */
class MatVecTest {
    static final Parallel[] PARS = {new Parallel(1), new Parallel(2), new Parallel(3)};

    @AfterAll
    static void close() {
        for (Parallel p : PARS) p.close();
    }

    @Test
    void nnMatchesNaiveOnOddSizesWithOffsetsAndStrides() {
        SplittableRandom r = new SplittableRandom(7);
        int[] ms = {1, 2, 5, 7, 17};
        int[] ns = {1, 7, 16, 33, 100, 1000};
        int[] ks = {1, 3, 4, 7, 9, 13, 33};
        for (Parallel par : PARS) for (int M : ms) for (int N : ns) for (int K : ks) for (boolean withBias : new boolean[]{false, true}) {
            int lda = K + 3, ldb = N + 5, ldc = N + 2, aOff = 2, bOff = 3, cOff = 1, biasOff = 4;
            float[] A = rand(r, aOff + M * lda), B = rand(r, bOff + K * ldb), bias = withBias ? rand(r, biasOff + N) : null;
            float[] C = rand(r, cOff + M * ldc), want = C.clone();
            MatVec.nn(par, M, N, K, A, aOff, lda, B, bOff, ldb, bias, biasOff, C, cOff, ldc);
            MatVec.nnNaive(M, N, K, A, aOff, lda, B, bOff, ldb, bias, biasOff, want, cOff, ldc);
            double max = 0;
            for (int i = 0; i < C.length; i++) max = Math.max(max, Math.abs(C[i] - want[i]));
            // outside the M×N window C keeps its values: the naive twin leaves them too, so they must be equal
            assertThat(max).as("M=%d N=%d K=%d bias=%s threads=%d", M, N, K, withBias, par.threads()).isLessThan(1e-4 * Math.sqrt(K));
        }
    }

    @Test
    void nnPackedMatchesNaiveOnOddSizesForBothWeightOrientations() {
        SplittableRandom r = new SplittableRandom(11);
        int[] ms = {1, 2, 5, 6, 7, 13};
        int[] ns = {1, 7, 16, 33, 100};
        int[] ks = {1, 3, 8, 13, 33};
        for (Parallel par : PARS) for (int M : ms) for (int N : ns) for (int K : ks) for (boolean transB : new boolean[]{false, true}) {
            boolean withBias = (M + N + K) % 2 == 0;
            int lda = K + 3, ldc = N + 2, aOff = 2, cOff = 1, biasOff = 4, bOff = 3;
            int ldb = transB ? K + 5 : N + 5;
            float[] A = rand(r, aOff + M * lda), B = rand(r, bOff + (transB ? N : K) * ldb);
            float[] bias = withBias ? rand(r, biasOff + N) : null;
            // the row-major K×N matrix the packed one stands for
            float[] plain = new float[K * N];
            for (int k = 0; k < K; k++) for (int j = 0; j < N; j++) plain[k * N + j] = transB ? B[bOff + j * ldb + k] : B[bOff + k * ldb + j];
            float[] bp = new float[5 + (int) MatVec.packedSize(K, N)];
            java.util.Arrays.fill(bp, Float.NaN);
            MatVec.pack(par, transB, K, N, B, bOff, ldb, bp, 5);
            float[] C = rand(r, cOff + M * ldc), want = C.clone();
            MatVec.nnPacked(par, M, N, K, A, aOff, lda, bp, 5, bias, biasOff, C, cOff, ldc, new float[MatVec.scratchSize(M, K)]);
            MatVec.nnNaive(M, N, K, A, aOff, lda, plain, 0, N, bias, biasOff, want, cOff, ldc);
            double max = 0;
            for (int i = 0; i < C.length; i++) max = Math.max(max, Math.abs(C[i] - want[i]));
            assertThat(max).as("M=%d N=%d K=%d transB=%s threads=%d", M, N, K, transB, par.threads()).isLessThan(1e-4 * Math.sqrt(K));
        }
    }

    @Test
    void rejectsShortArrays() {
        Parallel par = PARS[0];
        assertThatThrownBy(() -> MatVec.nn(par, 2, 4, 3, new float[5], 0, 3, new float[12], 0, 4, null, 0, new float[8], 0, 4))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("A too short");
    }

    static float[] rand(SplittableRandom r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) r.nextGaussian();
        return a;
    }
}
