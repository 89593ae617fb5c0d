package dev.cpt4j.tensor.cpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cpt4j.tensor.Parallel;
import java.util.Arrays;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link Gemm#sgemmBf16} (op(B) stored as bfloat16) against its naive twin {@link GemmNaive#sgemmBf16} on odd sizes,
 * and bitwise against {@link Gemm#sgemm} on the same B widened to fp32 (the "round the weights through bf16" numerics).
 */
class GemmBf16Test {
    private static final float SENTINEL = -777.25f;
    private static Parallel p1, p2;
    /** Every Java micro-tile on 1 and 2 threads and with tiny blocks (the bf16 products run on the Java kernels only). */
    private static final List<Gemm> ONE = new ArrayList<>(), TWO = new ArrayList<>(), SMALL = new ArrayList<>();
    private static Gemm g1;

    @BeforeAll
    static void setUp() {
        p1 = new Parallel(1);
        p2 = new Parallel(2);
        for (int tile : Gemm.TILES) {
            ONE.add(Gemm.withTile(p1, tile));
            TWO.add(Gemm.withTile(p2, tile));
            SMALL.add(new Gemm(p2, tile, 13, 7, 40));   // tiny blocks: several M, N and K blocks and their edges
        }
        g1 = ONE.getFirst();
    }

    @AfterAll
    static void tearDown() {
        p1.close();
        p2.close();
    }

    private static short toBf16(float f) {  // round to nearest even (what io.DType.floatToBf16 does)
        int bits = Float.floatToRawIntBits(f);
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }

    /** Padded operands at offsets with strides wider than the rows; C has sentinels outside its window. */
    private record Case(boolean ta, boolean tb, int m, int n, int k, float[] a, int aOff, int lda, short[] b16,
                        float[] bWide, int bOff, int ldb, float[] c, int cOff, int ldc) {
        static Case make(boolean ta, boolean tb, int m, int n, int k, long seed, int pad) {
            SplittableRandom r = new SplittableRandom(seed);
            int rowsA = ta ? k : m, colsA = ta ? m : k, rowsB = tb ? n : k, colsB = tb ? k : n;
            int lda = colsA + pad, ldb = colsB + 2 * pad, ldc = n + 3 * pad;
            int aOff = pad * 5, bOff = pad * 3 + 1, cOff = pad * 7 + 2;
            float[] a = new float[aOff + rowsA * lda + pad];
            for (int i = 0; i < a.length; i++) a[i] = (float) r.nextDouble(-1, 1);
            short[] b16 = new short[bOff + rowsB * ldb + pad];
            float[] bWide = new float[b16.length];
            for (int i = 0; i < b16.length; i++) {
                b16[i] = toBf16((float) r.nextDouble(-2, 2));
                bWide[i] = Float.intBitsToFloat((b16[i] & 0xFFFF) << 16);
            }
            float[] c = new float[cOff + m * ldc + pad];
            Arrays.fill(c, SENTINEL);
            for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) c[cOff + i * ldc + j] = (float) r.nextDouble(-1, 1);
            return new Case(ta, tb, m, n, k, a, aOff, lda, b16, bWide, bOff, ldb, c, cOff, ldc);
        }

        @Override
        public String toString() {
            return "%s%s M=%d N=%d K=%d".formatted(ta ? "T" : "N", tb ? "T" : "N", m, n, k);
        }
    }

    private static void check(Case cs, Gemm g, float beta) {
        float[] want = cs.c().clone(), got = cs.c().clone(), wide = cs.c().clone();
        GemmNaive.sgemmBf16(cs.ta(), cs.tb(), cs.m(), cs.n(), cs.k(), cs.a(), cs.aOff(), cs.lda(), cs.b16(), cs.bOff(),
                cs.ldb(), beta, want, cs.cOff(), cs.ldc());
        g.sgemmBf16(cs.ta(), cs.tb(), cs.m(), cs.n(), cs.k(), cs.a(), cs.aOff(), cs.lda(), cs.b16(), cs.bOff(),
                cs.ldb(), beta, got, cs.cOff(), cs.ldc());
        g.sgemm(cs.ta(), cs.tb(), cs.m(), cs.n(), cs.k(), cs.a(), cs.aOff(), cs.lda(), cs.bWide(), cs.bOff(),
                cs.ldb(), beta, wide, cs.cOff(), cs.ldc());
        assertThat(got).as("bf16 B vs the same B widened to fp32, %s beta=%s", cs, beta).isEqualTo(wide);
        // fp32 error bound of a K-term dot product with |a| ≤ 1, |b| ≤ 2 (safety factor 4), plus C's rounding
        double tol = 4 * Math.max(1, cs.k()) * 2f * Math.ulp(1f) + 1e-6 + (beta == 1f ? Math.ulp(2f * cs.k() + 1) : 0);
        double worst = 0;
        for (int idx = 0; idx < got.length; idx++) {
            int rel = idx - cs.cOff(), i = Math.floorDiv(rel, cs.ldc()), j = rel - i * cs.ldc();
            if (rel >= 0 && i < cs.m() && j < cs.n()) worst = Math.max(worst, Math.abs((double) got[idx] - want[idx]));
            else assertThat(got[idx]).as("C[%d] outside the window", idx).isEqualTo(SENTINEL);
        }
        assertThat(worst).as("max |fast - naive| for %s beta=%s, %s", cs, beta, g.describe()).isLessThanOrEqualTo(tol);
    }

    @Test
    void matchesNaiveAndWidenedFp32OnOddSizes() {
        int[] sizes = {1, 7, 33, 100};
        long seed = 1;
        for (boolean ta : new boolean[] {false, true})
            for (boolean tb : new boolean[] {false, true})
                for (int m : sizes)
                    for (int n : sizes)
                        for (int k : sizes) {
                            Case cs = Case.make(ta, tb, m, n, k, seed++, (m + n + k) % 3);
                            for (float beta : new float[] {0f, 1f}) {
                                for (Gemm g : ONE) check(cs, g, beta);
                                for (Gemm g : TWO) check(cs, g, beta);
                            }
                        }
    }

    @Test
    void matchesAcrossBlocksAndTheSmallMPath() {
        // the model's shapes: x·W (NN) and dY·Wᵀ (NT); M from the small-M path (≤ 8 / ≤ 16) to several row blocks
        int[][] shapes = {{257, 65, 33}, {13, 257, 400}, {100, 47, 1030}, {9, 300, 17}, {16, 70, 90}, {5, 33, 260}};
        long seed = 100;
        for (int[] s : shapes)
            for (boolean tb : new boolean[] {false, true}) {
                Case cs = Case.make(false, tb, s[0], s[1], s[2], seed++, 3);
                for (Gemm g : ONE) check(cs, g, 0f);
                for (Gemm g : TWO) check(cs, g, 1f);
                for (Gemm g : SMALL) {
                    check(cs, g, 0f);
                    check(cs, g, 1f);
                }
            }
    }

    @Test
    void rejectsAWeightThatDoesNotFit() {
        float[] x = new float[16];
        short[] w = new short[15];
        assertThatThrownBy(() -> g1.sgemmBf16(false, false, 4, 4, 4, x, 0, 4, w, 0, 4, 0f, x, 0, 4))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("B");
    }
}
