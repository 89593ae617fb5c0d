package dev.cpt4j.tensor.cpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cpt4j.tensor.Parallel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link Gemm} against its naive twin {@link GemmNaive} on odd sizes, every transpose, offsets and padded strides —
 * for every implementation the code can choose on any machine: each Java micro-tile ({@link Gemm#TILES}, not only
 * this CPU's) and the native backend (OpenBLAS, {@link Backend#NATIVE}).
 */
class GemmTest {
    private static final float SENTINEL = -777.25f;
    private static Parallel p1, p2;

    /** One implementation on 1 and 2 threads, and (Java only) with tiny blocks. */
    private record Impl(Gemm one, Gemm two, Gemm small, boolean java) {}

    private static List<Impl> impls;
    private static Gemm g1;

    @BeforeAll
    static void setUp() {
        p1 = new Parallel(1);
        p2 = new Parallel(2);
        impls = new ArrayList<>();
        // Tiny blocks so several M, N and K blocks (and their edges) occur on small matrices.
        for (int tile : Gemm.TILES)
            impls.add(new Impl(Gemm.withTile(p1, tile), Gemm.withTile(p2, tile), new Gemm(p2, tile, 13, 7, 40), true));
        if (OpenBlas.available()) impls.add(new Impl(new Gemm(p1, Backend.NATIVE), new Gemm(p2, Backend.NATIVE), null, false));
        g1 = new Gemm(p1);
    }

    /** The pom bundles OpenBLAS for Linux x86-64: there the native backend must load (and is tested above). */
    @Test
    void everyTileAndTheNativeBackendAreTested() {
        boolean bundled = System.getProperty("os.name").startsWith("Linux") && System.getProperty("os.arch").equals("amd64");
        assertThat(OpenBlas.available() || !bundled).as("%s", OpenBlas.loadError()).isTrue();
        assertThat(Gemm.TILES).contains(Gemm.MR);
        assertThat(impls).hasSize(Gemm.TILES.length + (OpenBlas.available() ? 1 : 0));
        assertThat(new Gemm(p1, Backend.JAVA).backend()).isEqualTo("java");
        assertThat(new Gemm(p1, Backend.AUTO).backend()).isEqualTo(OpenBlas.available() ? "native" : "java");
        if (OpenBlas.available()) assertThat(new Gemm(p1, Backend.NATIVE).backend()).isEqualTo("native");
        else assertThatThrownBy(() -> new Gemm(p1, Backend.NATIVE)).hasMessageContaining("--backend java");
    }

    @AfterAll
    static void tearDown() {
        p1.close();
        p2.close();
    }

    /** One product in a padded buffer: data at offsets, strides wider than the rows, sentinels everywhere else. */
    private record Case(boolean ta, boolean tb, int m, int n, int k, float[] a, int aOff, int lda, float[] b, int bOff,
                        int ldb, float[] c, int cOff, int ldc) {
        static Case make(boolean ta, boolean tb, int m, int n, int k, long seed, int pad) {
            SplittableRandom r = new SplittableRandom(seed);
            int rowsA = ta ? k : m, colsA = ta ? m : k, rowsB = tb ? n : k, colsB = tb ? k : n;
            int lda = colsA + pad, ldb = colsB + 2 * pad, ldc = n + 3 * pad;
            int aOff = pad * 5, bOff = pad * 3 + 1, cOff = pad * 7 + 2;
            float[] a = filled(aOff + rowsA * lda + pad, r, 1f);
            float[] b = filled(bOff + rowsB * ldb + pad, r, 2f);
            float[] c = new float[cOff + m * ldc + pad];
            Arrays.fill(c, SENTINEL);
            for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) c[cOff + i * ldc + j] = (float) r.nextDouble(-1, 1);
            return new Case(ta, tb, m, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc);
        }

        void run(Gemm g, float beta, float[] out) {
            g.sgemm(ta, tb, m, n, k, a, aOff, lda, b, bOff, ldb, beta, out, cOff, ldc);
        }

        void runNaive(float beta, float[] out) {
            GemmNaive.sgemm(ta, tb, m, n, k, a, aOff, lda, b, bOff, ldb, beta, out, cOff, ldc);
        }

        @Override
        public String toString() {
            return "%s%s M=%d N=%d K=%d aOff=%d lda=%d bOff=%d ldb=%d cOff=%d ldc=%d".formatted(ta ? "T" : "N",
                    tb ? "T" : "N", m, n, k, aOff, lda, bOff, ldb, cOff, ldc);
        }

        /** fp32 error bound for a K-term dot product: K·max|a|·max|b|·eps (with a safety factor of 4). */
        double tolerance() {
            return 4 * Math.max(1, k) * 1f * 2f * Math.ulp(1f) + 1e-6;
        }
    }

    private static float[] filled(int n, SplittableRandom r, float scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextDouble(-scale, scale);
        return x;
    }

    private static void check(Case cs, Gemm g, float beta) {
        float[] want = cs.c().clone(), got = cs.c().clone();
        cs.runNaive(beta, want);
        cs.run(g, beta, got);
        double tol = cs.tolerance() + (beta == 1f ? Math.ulp(2f * cs.k() + 1) : 0);
        double worst = 0;
        for (int idx = 0; idx < got.length; idx++) {
            int rel = idx - cs.cOff(), i = Math.floorDiv(rel, cs.ldc()), j = rel - i * cs.ldc();
            boolean inside = rel >= 0 && i < cs.m() && j < cs.n();
            if (!inside) {
                assertThat(got[idx]).as("C[%d] outside the %dx%d window", idx, cs.m(), cs.n()).isEqualTo(SENTINEL);
            } else {
                worst = Math.max(worst, Math.abs((double) got[idx] - want[idx]));
            }
        }
        assertThat(worst).as("max |fast - naive| for %s beta=%s, %s", cs, beta, g.describe()).isLessThanOrEqualTo(tol);
    }

    @Test
    void matchesNaiveOnOddSizesAllTransposesBothBetas() {
        int[] sizes = {1, 7, 33, 100};
        long seed = 1;
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                for (int m : sizes) {
                    for (int n : sizes) {
                        for (int k : sizes) {
                            Case cs = Case.make(ta, tb, m, n, k, seed++, (m + n + k) % 3);
                            for (float beta : new float[] {0f, 1f}) {
                                for (Impl g : impls) {
                                    check(cs, g.one(), beta);
                                    check(cs, g.two(), beta);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void matchesNaiveOnLargerSizesAcrossBlocks() {
        // 257 rows/cols and K past one K block; non-multiples of 16, of the 12-row and 32-column micro-tile.
        int[][] shapes = {{257, 65, 33}, {13, 257, 400}, {100, 47, 1030}, {9, 300, 17}, {8, 300, 770}, {12, 32, 1}};
        long seed = 100;
        for (int[] s : shapes) {
            for (boolean ta : new boolean[] {false, true}) {
                for (boolean tb : new boolean[] {false, true}) {
                    Case cs = Case.make(ta, tb, s[0], s[1], s[2], seed++, 3);
                    for (Impl g : impls) {
                        check(cs, g.one(), 0f);
                        check(cs, g.two(), 1f);
                        if (g.small() != null) {
                            check(cs, g.small(), 0f);
                            check(cs, g.small(), 1f);
                        }
                    }
                }
            }
        }
    }

    @Test
    void smallBlocksSplitEveryDimension() {
        long seed = 500;
        for (int[] s : new int[][] {{50, 90, 30}, {31, 130, 15}, {130, 31, 8}}) {
            for (boolean ta : new boolean[] {false, true}) {
                for (boolean tb : new boolean[] {false, true}) {
                    Case cs = Case.make(ta, tb, s[0], s[1], s[2], seed++, 1);
                    for (Impl g : impls) {
                        if (g.small() == null) continue;
                        check(cs, g.small(), 0f);
                        check(cs, g.small(), 1f);
                    }
                }
            }
        }
    }

    /** Java: the same bits for any thread count. Native: the same bits for a given thread count (its split differs). */
    @Test
    void resultsAreBitwiseIdenticalForAnyThreadCountAndRepeatedRuns() {
        for (int[] s : new int[][] {{100, 70, 500}, {20, 300, 64}, {5, 200, 77}, {300, 260, 90}}) {
            for (boolean tb : new boolean[] {false, true}) {
                Case cs = Case.make(true, tb, s[0], s[1], s[2], 7, 2);
                for (Impl g : impls) {
                    float[] one = cs.c().clone(), two = cs.c().clone(), again = cs.c().clone(), oneAgain = cs.c().clone();
                    cs.run(g.one(), 1f, one);
                    cs.run(g.two(), 1f, two);
                    cs.run(g.two(), 1f, again);
                    cs.run(g.one(), 1f, oneAgain);
                    if (g.java()) assertThat(two).as("%s", g.one().describe()).isEqualTo(one);
                    assertThat(again).as("%s", g.two().describe()).isEqualTo(two);
                    assertThat(oneAgain).as("%s", g.one().describe()).isEqualTo(one);
                }
            }
        }
    }

    @Test
    void betaZeroIgnoresOldValuesAndZeroKClearsOrKeeps() {
        Case cs = Case.make(false, false, 20, 40, 16, 11, 1);
        float[] c = cs.c().clone();
        for (int i = 0; i < cs.m(); i++) for (int j = 0; j < cs.n(); j++) c[cs.cOff() + i * cs.ldc() + j] = Float.NaN;
        for (Impl g : impls) {
            float[] nan = c.clone();
            g.two().sgemm(false, false, cs.m(), cs.n(), cs.k(), cs.a(), cs.aOff(), cs.lda(), cs.b(), cs.bOff(), cs.ldb(), 0f, nan, cs.cOff(), cs.ldc());
            for (float x : nan) assertThat(x).as("%s", g.two().describe()).isNotNaN();

            Case empty = Case.make(false, true, 20, 40, 0, 12, 1);
            float[] keep = empty.c().clone(), clear = empty.c().clone();
            empty.run(g.two(), 1f, keep);
            assertThat(keep).isEqualTo(empty.c());
            empty.run(g.two(), 0f, clear);
            assertThat(clear[empty.cOff()]).isZero();
            assertThat(clear[empty.cOff() + 19 * empty.ldc() + 39]).isZero();
            assertThat(clear[empty.cOff() + 19 * empty.ldc() + 40]).isEqualTo(SENTINEL);
        }
    }

    @Test
    void rejectsBadArguments() {
        float[] x = new float[16];
        assertThatThrownBy(() -> g1.sgemm(false, false, 2, 2, 2, x, 0, 2, x, 0, 2, 0.5f, x, 0, 2))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("beta");
        assertThatThrownBy(() -> g1.sgemm(false, false, 4, 4, 4, x, 1, 4, x, 0, 4, 0f, x, 0, 4))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("A");
        assertThatThrownBy(() -> g1.sgemm(false, true, 4, 4, 4, x, 0, 4, x, 0, 3, 0f, x, 0, 4))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("B");
    }
}
