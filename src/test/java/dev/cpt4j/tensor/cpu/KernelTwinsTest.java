package dev.cpt4j.tensor.cpu;

import dev.cpt4j.tensor.Parallel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

/** Every fast kernel against its naive twin on odd sizes (1, 7, 33, non-multiples of the vector width), 1–3 threads. */
class KernelTwinsTest {
    static final Parallel[] PARS = {new Parallel(1), new Parallel(2), new Parallel(3)};

    @AfterAll
    static void close() {
        for (Parallel p : PARS) p.close();
    }

    static float[] rand(SplittableRandom r, int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (r.nextGaussian() * scale);
        return a;
    }

    /** max |a−b| / max(1, max|b|). */
    static double relDiff(float[] a, float[] b) {
        double m = 0, s = 1;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs(a[i] - b[i]));
            s = Math.max(s, Math.abs(b[i]));
        }
        return m / s;
    }

    @Test
    void expAndErfAreAccurate() {
        for (double x = -80; x <= 80; x += 0.173) {
            float xf = (float) x, e = VecMath.exp(xf);
            assertThat(Math.abs(e - Math.exp(xf)) / Math.exp(xf)).as("exp(%s)", x).isLessThan(3e-7);
        }
        for (double x = -6; x <= 6; x += 0.0137) {
            assertThat((double) Math.abs(VecMath.erf((float) x) - (float) Activation.erfRef(x))).as("erf(%s)", x).isLessThan(3e-7);
        }
        var S = VecMath.S;
        float[] xs = new float[S.length()], out = new float[S.length()];
        for (int i = 0; i < xs.length; i++) xs[i] = -3.3f + 0.77f * i;
        VecMath.exp(jdk.incubator.vector.FloatVector.fromArray(S, xs, 0)).intoArray(out, 0);
        for (int i = 0; i < xs.length; i++) assertThat(out[i]).isEqualTo(VecMath.exp(xs[i]));
        VecMath.erf(jdk.incubator.vector.FloatVector.fromArray(S, xs, 0)).intoArray(out, 0);
        for (int i = 0; i < xs.length; i++) assertThat(Math.abs(out[i] - VecMath.erf(xs[i]))).isLessThan(1e-7f);
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 33, 50})
    void gemmMatchesNaive(int n) {
        SplittableRandom r = new SplittableRandom(n);
        int M = n, N = n + 3, K = 2 * n + 1;
        for (Parallel par : PARS)
            for (boolean ta : new boolean[] {false, true})
                for (boolean tb : new boolean[] {false, true})
                    for (float beta : new float[] {0f, 1f}) {
                        float[] A = rand(r, M * K + 5, 1), B = rand(r, K * N + 5, 1), C0 = rand(r, M * N + 4, 1);
                        float[] c1 = C0.clone(), c2 = C0.clone();
                        int lda = ta ? M : K, ldb = tb ? K : N;
                        new Gemm(par).sgemm(ta, tb, M, N, K, A, 2, lda, B, 3, ldb, beta, c1, 4, N);
                        GemmNaive.sgemm(ta, tb, M, N, K, A, 2, lda, B, 3, ldb, beta, c2, 4, N);
                        assertThat(relDiff(c1, c2)).isLessThan(1e-5);
                    }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 33, 100})
    void layerNormMatchesNaive(int C) {
        SplittableRandom r = new SplittableRandom(C);
        int N = 9;
        float[] x = rand(r, N * C, 2), w = rand(r, C, 1), b = rand(r, C, 1), dout = rand(r, N * C, 1);
        for (int i = 0; i < x.length; i++) x[i] += 3f; // a non-zero mean
        float[] outN = new float[N * C], mN = new float[N], sN = new float[N];
        LayerNorm.forwardNaive(outN, mN, sN, x, w, b, N, C, 1e-5f);
        float[] dxN = rand(r, N * C, 1), dwN = rand(r, C, 1), dbN = rand(r, C, 1);
        float[] dx0 = dxN.clone(), dw0 = dwN.clone(), db0 = dbN.clone();
        LayerNorm.backwardNaive(dxN, dwN, dbN, dout, x, mN, sN, w, N, C);
        for (Parallel par : PARS) {
            float[] out = new float[N * C + 3], m = new float[N + 1], s = new float[N + 1];
            LayerNorm.forward(par, out, 3, m, s, 1, x, 0, w, 0, b, 0, N, C, 1e-5f);
            assertThat(relDiff(java.util.Arrays.copyOfRange(out, 3, 3 + N * C), outN)).isLessThan(2e-6);
            float[] dx = dx0.clone(), dw = dw0.clone(), db = db0.clone();
            LayerNorm.backward(par, dx, 0, dw, 0, db, 0, dout, 0, x, 0, m, s, 1, w, 0, N, C);
            assertThat(relDiff(dx, dxN)).isLessThan(1e-5);
            assertThat(relDiff(dw, dwN)).isLessThan(1e-5);
            assertThat(relDiff(db, dbN)).isLessThan(1e-5);
        }
    }

    @ParameterizedTest
    @EnumSource(Activation.class)
    void activationMatchesNaive(Activation act) {
        for (int n : new int[] {1, 7, 33, 4099, 9000}) {
            SplittableRandom r = new SplittableRandom(n);
            float[] x = rand(r, n, 3), dout = rand(r, n, 1);
            if (n > 100) for (int i = 0; i < 40; i++) x[i] = (i - 20) * 1.5f; // tails up to ±30
            float[] yN = new float[n], dxN = new float[n];
            act.forwardNaive(yN, x, n);
            act.backwardNaive(dxN, dout, x, n);
            for (Parallel par : PARS) {
                float[] y = new float[n + 1], dx = new float[n + 2];
                act.forward(par, y, 1, x, 0, n);
                act.backward(par, dx, 2, dout, 0, x, 0, n);
                for (int i = 0; i < n; i++) {
                    assertThat((double) Math.abs(y[1 + i] - yN[i])).as("%s(%s)", act, x[i]).isLessThan(2e-6 * Math.max(1, Math.abs(yN[i])));
                    assertThat((double) Math.abs(dx[2 + i] - dxN[i])).as("%s'(%s)", act, x[i]).isLessThan(2e-6 * Math.max(1, Math.abs(dout[i])));
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 33})
    void attentionMatchesNaive(int T) {
        int B = 2;
        for (int[] cn : new int[][] {{12, 3}, {40, 5}, {64, 2}})
            for (float p : new float[] {0f, 0.3f}) {
                int C = cn[0], NH = cn[1];
                SplittableRandom r = new SplittableRandom(T * 31 + C);
                float[] qkv = rand(r, B * T * 3 * C, 1), dout = rand(r, B * T * C, 1);
                float scale = (float) (1 / Math.sqrt(C / NH));
                float[] outN = new float[B * T * C], lseN = new float[B * NH * T], dqkvN = new float[B * T * 3 * C];
                Attention.forwardNaive(outN, lseN, qkv, B, T, C, NH, scale, p, 7, 3);
                Attention.backwardNaive(dqkvN, dout, qkv, B, T, C, NH, scale, p, 7, 3);
                for (Parallel par : PARS) {
                    float[] out = new float[B * T * C], lse = new float[B * NH * T], dqkv = new float[B * T * 3 * C];
                    Attention.forward(par, out, 0, lse, 0, qkv, 0, B, T, C, NH, scale, p, 7, 3);
                    assertThat(relDiff(out, outN)).isLessThan(2e-6);
                    assertThat(relDiff(lse, lseN)).isLessThan(2e-6);
                    Attention.backward(par, dqkv, 0, dout, 0, out, 0, lse, 0, qkv, 0, B, T, C, NH, scale, p, 7, 3);
                    assertThat(relDiff(dqkv, dqkvN)).as("T=%d C=%d p=%s", T, C, p).isLessThan(1e-5);
                }
            }
    }

    /**
     * Random document starts (B, T) for neat packing: each row is cut into documents of 1..12 tokens (some of one
     * token, some rows a single document); starts[b·T + t] is where t's document begins.
     */
    static int[] randomStarts(SplittableRandom r, int B, int T) {
        int[] s = new int[B * T];
        for (int b = 0; b < B; b++) {
            boolean single = r.nextInt(4) == 0;
            int start = 0;
            for (int t = 0; t < T; t++) {
                if (t > 0 && !single && r.nextInt(12) < 3) start = t;
                s[b * T + t] = start;
            }
        }
        return s;
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 33, 50})
    void packedAttentionMatchesNaive(int T) {
        int B = 3;
        for (int[] cn : new int[][] {{12, 3}, {40, 5}})
            for (float p : new float[] {0f, 0.3f}) {
                int C = cn[0], NH = cn[1];
                SplittableRandom r = new SplittableRandom(T * 37 + C);
                int[] starts = randomStarts(r, B, T);
                float[] qkv = rand(r, B * T * 3 * C, 1), dout = rand(r, B * T * C, 1);
                float scale = (float) (1 / Math.sqrt(C / NH));
                float[] outN = new float[B * T * C], lseN = new float[B * NH * T], dqkvN = new float[B * T * 3 * C];
                Attention.forwardNaive(outN, lseN, qkv, starts, B, T, C, NH, scale, p, 7, 3);
                Attention.backwardNaive(dqkvN, dout, qkv, starts, B, T, C, NH, scale, p, 7, 3);
                int[] padded = new int[starts.length + 5];
                System.arraycopy(starts, 0, padded, 5, starts.length);
                for (Parallel par : PARS) {
                    float[] out = new float[B * T * C], lse = new float[B * NH * T], dqkv = new float[B * T * 3 * C];
                    Attention.forward(par, out, 0, lse, 0, qkv, 0, padded, 5, B, T, C, NH, scale, p, 7, 3);
                    assertThat(relDiff(out, outN)).as("out T=%d C=%d p=%s", T, C, p).isLessThan(2e-6);
                    assertThat(relDiff(lse, lseN)).isLessThan(2e-6);
                    Attention.backward(par, dqkv, 0, dout, 0, out, 0, lse, 0, qkv, 0, padded, 5, B, T, C, NH, scale, p, 7, 3);
                    assertThat(relDiff(dqkv, dqkvN)).as("dqkv T=%d C=%d p=%s", T, C, p).isLessThan(1e-5);
                }
                // all-zero starts (one document per row) is bit for bit the unpacked kernel
                float[] a = new float[B * T * C], la = new float[B * NH * T], b2 = new float[B * T * C], lb = new float[B * NH * T];
                Attention.forward(PARS[1], a, 0, la, 0, qkv, 0, B, T, C, NH, scale, p, 7, 3);
                Attention.forward(PARS[1], b2, 0, lb, 0, qkv, 0, new int[B * T], 0, B, T, C, NH, scale, p, 7, 3);
                assertThat(b2).isEqualTo(a);
                assertThat(lb).isEqualTo(la);
            }
    }

    /** Without dropout, each document's rows of a packed row equal attention over that document alone. */
    @Test
    void packedAttentionEqualsEachDocumentAlone() {
        SplittableRandom r = new SplittableRandom(5);
        int T = 40, C = 24, NH = 3, B = 1;
        int[] starts = randomStarts(r, B, T);
        float[] qkv = rand(r, T * 3 * C, 1);
        float[] out = new float[T * C], lse = new float[NH * T];
        Attention.forward(PARS[2], out, 0, lse, 0, qkv, 0, starts, 0, B, T, C, NH, 0.4f, 0f, 1, 1);
        for (int s = 0; s < T; ) {
            int e = s + 1;
            while (e < T && starts[e] == s) e++;
            int n = e - s;
            float[] q1 = java.util.Arrays.copyOfRange(qkv, s * 3 * C, e * 3 * C), o1 = new float[n * C], l1 = new float[NH * n];
            Attention.forward(PARS[0], o1, 0, l1, 0, q1, 0, 1, n, C, NH, 0.4f, 0f, 1, 1);
            assertThat(relDiff(java.util.Arrays.copyOfRange(out, s * C, e * C), o1)).as("document at %d", s).isLessThan(1e-6);
            s = e;
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 33})
    void packedEmbeddingMatchesNaive(int C) {
        SplittableRandom r = new SplittableRandom(C + 100);
        int B = 3, T = 9, V = 4;
        int[] tok = new int[B * T], starts = randomStarts(r, B, T);
        for (int i = 0; i < tok.length; i++) tok[i] = r.nextInt(V);
        float[] wte = rand(r, V * C, 1), wpe = rand(r, T * C, 1), dout = rand(r, B * T * C, 1);
        float[] outN = new float[B * T * C], dwteN = new float[V * C], dwpeN = new float[T * C];
        Embedding.forwardNaive(outN, tok, wte, wpe, starts, B, T, C);
        Embedding.backwardNaive(dwteN, dwpeN, dout, tok, starts, B, T, C);
        for (int i = 0; i < B * T; i++) // the position restarts: token i uses wpe row i % T − starts[i]
            assertThat(outN[i * C]).isEqualTo(wte[tok[i] * C] + wpe[(i % T - starts[i]) * C]);
        for (Parallel par : PARS) {
            float[] out = new float[B * T * C], dwte = new float[V * C], dwpe = new float[T * C];
            Embedding.forward(par, out, 0, tok, 0, wte, 0, wpe, 0, starts, B, T, C);
            Embedding.backward(par, dwte, 0, dwpe, 0, dout, 0, tok, 0, starts, B, T, C);
            assertThat(out).isEqualTo(outN);
            assertThat(relDiff(dwte, dwteN)).isLessThan(1e-6);
            assertThat(relDiff(dwpe, dwpeN)).isLessThan(1e-6);
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 33})
    void embeddingMatchesNaive(int C) {
        SplittableRandom r = new SplittableRandom(C);
        int B = 3, T = 5, V = 4;
        int[] tok = new int[B * T];
        for (int i = 0; i < tok.length; i++) tok[i] = r.nextInt(V); // many repeats
        float[] wte = rand(r, V * C, 1), wpe = rand(r, T * C, 1), dout = rand(r, B * T * C, 1);
        float[] outN = new float[B * T * C], dwteN = new float[V * C], dwpeN = new float[T * C];
        Embedding.forwardNaive(outN, tok, wte, wpe, B, T, C);
        Embedding.backwardNaive(dwteN, dwpeN, dout, tok, B, T, C);
        for (Parallel par : PARS) {
            float[] out = new float[B * T * C], dwte = new float[V * C], dwpe = new float[T * C];
            Embedding.forward(par, out, 0, tok, 0, wte, 0, wpe, 0, B, T, C);
            Embedding.backward(par, dwte, 0, dwpe, 0, dout, 0, tok, 0, B, T, C);
            assertThat(out).isEqualTo(outN);
            assertThat(relDiff(dwte, dwteN)).isLessThan(1e-6);
            assertThat(relDiff(dwpe, dwpeN)).isLessThan(1e-6);
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 33})
    void linearMatchesNaive(int n) {
        SplittableRandom r = new SplittableRandom(n);
        int N = n + 2, IN = n, OUT = 2 * n + 5;
        float[] x = rand(r, N * IN, 1), w = rand(r, IN * OUT, 1), b = rand(r, OUT, 1), dout = rand(r, N * OUT, 1);
        float[] yN = new float[N * OUT], dxN = new float[N * IN], dwN = new float[IN * OUT], dbN = new float[OUT];
        Conv1d.forwardNaive(yN, x, w, b, N, IN, OUT);
        Conv1d.backwardNaive(dxN, dwN, dbN, dout, x, w, N, IN, OUT);
        for (Parallel par : PARS) {
            Gemm g = new Gemm(par);
            float[] y = new float[N * OUT], dx = new float[N * IN], dw = new float[IN * OUT], db = new float[OUT];
            Conv1d.forward(g, par, y, 0, x, 0, w, 0, b, 0, N, IN, OUT);
            Conv1d.backward(g, par, dx, 0, dw, 0, db, 0, dout, 0, x, 0, w, 0, N, IN, OUT);
            assertThat(relDiff(y, yN)).isLessThan(1e-5);
            assertThat(relDiff(dx, dxN)).isLessThan(1e-5);
            assertThat(relDiff(dw, dwN)).isLessThan(1e-5);
            assertThat(relDiff(db, dbN)).isLessThan(1e-5);
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 33, 4097, 9001})
    void residualAndBiasGradMatchNaive(int n) {
        SplittableRandom r = new SplittableRandom(n);
        float[] a = rand(r, n, 1), b = rand(r, n, 1);
        int rows = 3, cols = n;
        float[] db0 = rand(r, cols, 1);
        float[] dbN = db0.clone();
        for (int i = 0; i < rows; i++) for (int j = 0; j < cols; j++) dbN[j] += a[(i * 7 + j) % n];
        float[] dout = new float[rows * cols];
        for (int i = 0; i < rows; i++) for (int j = 0; j < cols; j++) dout[i * cols + j] = a[(i * 7 + j) % n];
        for (Parallel par : PARS) {
            float[] out = new float[n + 1];
            Conv1d.residualForward(par, out, 1, a, 0, b, 0, n);
            for (int i = 0; i < n; i++) assertThat(out[1 + i]).isEqualTo(a[i] + b[i]);
            float[] db = db0.clone();
            Conv1d.biasBackward(par, db, 0, dout, 0, rows, cols);
            assertThat(relDiff(db, dbN)).isLessThan(1e-6);
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 33})
    void crossEntropyHeadMatchesNaive(int C) {
        SplittableRandom r = new SplittableRandom(C);
        int N = 37, V = 53;
        float[] x = rand(r, N * C, 1), w = rand(r, V * C, 0.5);
        int[] tg = new int[N];
        for (int i = 0; i < N; i++) tg[i] = i % 5 == 4 ? -100 : r.nextInt(V);
        float[] dxN = new float[N * C], dwN = new float[V * C];
        double lossN = CrossEntropyHead.forwardNaive(x, w, tg, N, C, V, 0.1f, dxN, dwN);
        for (Parallel par : PARS)
            for (int R : new int[] {1, 8, 64}) {
                float[] dx = new float[N * C], dw = new float[V * C];
                float[] scratch = new float[CrossEntropyHead.scratchSize(R, C, V)];
                double loss = CrossEntropyHead.forward(new Gemm(par), par, x, 0, w, 0, tg, 0, N, C, V, 0.1f, dx, 0, dw, 0, scratch, R);
                assertThat(Math.abs(loss - lossN) / lossN).isLessThan(1e-6);
                assertThat(relDiff(dx, dxN)).isLessThan(1e-5);
                assertThat(relDiff(dw, dwN)).isLessThan(1e-5);
                double lossOnly = CrossEntropyHead.forward(new Gemm(par), par, x, 0, w, 0, tg, 0, N, C, V, 0f, null, 0, null, 0, scratch, R);
                assertThat(lossOnly).isEqualTo(loss);
            }
    }

    @Test
    void dropoutIsSeededInvertedAndThreadIndependent() {
        int n = 10007;
        float[] x = new float[n];
        java.util.Arrays.fill(x, 1f);
        float[] a = new float[n], b = new float[n], c = new float[n];
        Dropout.apply(PARS[0], a, 0, x, 0, n, 0.25f, 5, 1);
        Dropout.apply(PARS[2], b, 0, x, 0, n, 0.25f, 5, 1);
        Dropout.apply(PARS[0], c, 0, x, 0, n, 0.25f, 6, 1);
        assertThat(a).isEqualTo(b);
        assertThat(a).isNotEqualTo(c);
        float[] naive = new float[n];
        Dropout.applyNaive(naive, x, n, 0.25f, 5, 1);
        assertThat(naive).isEqualTo(a);
        int kept = 0;
        for (float v : a) {
            assertThat(v).isIn(0f, 1f / 0.75f);
            if (v != 0) kept++;
        }
        assertThat(kept / (double) n).isBetween(0.73, 0.77);
        float[] same = new float[n];
        Dropout.apply(PARS[1], same, 0, x, 0, n, 0f, 5, 1);
        assertThat(same).isEqualTo(x);
    }

    /** A buffer split anywhere (a batch split over ranks) draws, part by part, the masks of the whole. */
    @Test
    void dropoutOfAPartIsTheWholesMaskAtItsOrigin() {
        int n = 3 * Dropout.ROW + 777;
        java.util.Random r = new java.util.Random(3);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextGaussian();
        float[] whole = new float[n];
        Dropout.apply(PARS[1], whole, 0, x, 0, n, 0.3f, 9, 4);
        for (int cut : new int[] {1, 7, 33, Dropout.ROW, Dropout.ROW + 5, 2 * Dropout.ROW - 1, n - 1}) {
            float[] parts = new float[n];
            Dropout.apply(PARS[2], parts, 0, x, 0, cut, 0.3f, 9, 4, 0);
            Dropout.apply(PARS[0], parts, cut, x, cut, n - cut, 0.3f, 9, 4, cut);
            assertThat(parts).as("cut at " + cut).isEqualTo(whole);
        }
    }

    /** Attention-probability dropout of samples [1, 3) of a batch of 3, given their first token, is the whole's. */
    @Test
    void attentionDropoutOfASplitBatchIsTheWholes() {
        int B = 3, T = 7, C = 8, NH = 2;
        java.util.Random r = new java.util.Random(5);
        float[] qkv = new float[B * T * 3 * C];
        for (int i = 0; i < qkv.length; i++) qkv[i] = (float) r.nextGaussian();
        float[] out = new float[B * T * C], lse = new float[B * NH * T];
        Attention.forward(PARS[1], out, 0, lse, 0, qkv, 0, B, T, C, NH, 0.35f, 0.2f, 13, 2);
        float[] part = new float[2 * T * C], lsePart = new float[2 * NH * T];
        Attention.forward(PARS[2], part, 0, lsePart, 0, qkv, T * 3 * C, 2, T, C, NH, 0.35f, 0.2f, 13, 2, T);
        assertThat(part).isEqualTo(java.util.Arrays.copyOfRange(out, T * C, B * T * C));
        float[] dout = new float[B * T * C];
        for (int i = 0; i < dout.length; i++) dout[i] = (float) r.nextGaussian();
        float[] dqkv = new float[qkv.length], dPart = new float[2 * T * 3 * C];
        Attention.backward(PARS[1], dqkv, 0, dout, 0, out, 0, lse, 0, qkv, 0, B, T, C, NH, 0.35f, 0.2f, 13, 2);
        Attention.backward(PARS[0], dPart, 0, dout, T * C, part, 0, lsePart, 0, qkv, T * 3 * C, 2, T, C, NH, 0.35f,
                0.2f, 13, 2, T);
        assertThat(dPart).isEqualTo(java.util.Arrays.copyOfRange(dqkv, T * 3 * C, B * T * 3 * C));
        float[] shifted = new float[2 * T * C];  // without the origin the masks differ
        Attention.forward(PARS[0], shifted, 0, new float[2 * NH * T], 0, qkv, T * 3 * C, 2, T, C, NH, 0.35f, 0.2f, 13, 2);
        assertThat(shifted).isNotEqualTo(part);
    }
}
