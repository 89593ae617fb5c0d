package dev.cpt4j.tensor.cpu;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cpt4j.io.DType;
import dev.cpt4j.tensor.Parallel;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link Gemm}'s bf16 mode ({@link Bf16}): the fp32→bf16 rounding against torch's rule, and both the oneDNN products
 * and the emulated ones against a naive GEMM on inputs rounded to bf16 first, for every transpose, beta 0/1, offsets
 * and strides, small and blocked shapes, 1 and 2 threads, with op(B) in fp32 and stored as bf16.
 */
class Bf16ModeTest {
    private static final float SENTINEL = -777.25f;
    private static Parallel p1, p2;

    @BeforeAll
    static void setUp() {
        p1 = new Parallel(1);
        p2 = new Parallel(2);
    }

    @AfterAll
    static void tearDown() {
        p1.close();
        p2.close();
    }

    @Test
    void roundsToNearestEvenAsTorchDoes() {
        // torch: torch.tensor([x]).to(torch.bfloat16).view(torch.int16)
        assertThat(Bf16.bits(Float.intBitsToFloat(0x3F808000))).isEqualTo(0x3F80);   // tie, even below
        assertThat(Bf16.bits(Float.intBitsToFloat(0x3F818000))).isEqualTo(0x3F82);   // tie, even above
        assertThat(Bf16.bits(Float.intBitsToFloat(0x3F808001))).isEqualTo(0x3F81);   // past the tie
        assertThat(Bf16.bits(Float.intBitsToFloat(0x3F807FFF))).isEqualTo(0x3F80);
        assertThat(Bf16.bits(Float.intBitsToFloat(0xBF818000))).isEqualTo(0xBF82);   // sign kept
        assertThat(Bf16.bits(Float.MAX_VALUE)).isEqualTo(0x7F80);                     // overflows to +inf, as torch
        assertThat(Bf16.bits(Float.NEGATIVE_INFINITY)).isEqualTo(0xFF80);
        assertThat(Bf16.round(Float.NaN)).isNaN();
        assertThat(Bf16.round(0.1f)).isEqualTo(0.10009765625f);
        // The vector paths (to fp32 arrays and to native bf16) agree with the scalar rule on every kind of value.
        SplittableRandom r = new SplittableRandom(7);
        float[] x = new float[1003];
        for (int i = 0; i < x.length; i++) x[i] = Float.intBitsToFloat(r.nextInt());
        x[3] = Float.NaN;
        x[4] = Float.intBitsToFloat(0x3F808000);
        x[5] = Float.MIN_VALUE;
        float[] rounded = new float[x.length];
        Bf16.round(x, 0, rounded, 0, x.length);
        var seg = java.lang.foreign.Arena.ofAuto().allocate(2L * x.length);
        Bf16.round(x, 0, seg, 0, x.length);
        for (int i = 0; i < x.length; i++) {
            int want = Float.isNaN(x[i]) ? DType.floatToBf16(x[i]) & 0xFFFF : Bf16.bits(x[i]);
            assertThat(Float.floatToRawIntBits(rounded[i])).as("element %d", i).isEqualTo(want << 16);
            assertThat(seg.getAtIndex(java.lang.foreign.ValueLayout.JAVA_SHORT, i) & 0xFFFF).as("element %d", i).isEqualTo(want);
            if (!Float.isNaN(x[i])) assertThat(want).isEqualTo(DType.floatToBf16(x[i]) & 0xFFFF);
        }
    }

    /**
     * Whether oneDNN's bf16 matmul runs here. The pom bundles it for Linux x86-64, where it must load; it has bf16
     * kernels from AVX-512 up, so only a CPU below AVX-512 may lack them — and there the mode must refuse in one line.
     */
    static boolean nativeRuns() {
        String why = Bf16.nativeUnavailableReason();
        boolean bundled = System.getProperty("os.name").startsWith("Linux") && System.getProperty("os.arch").equals("amd64");
        if (why == null) return true;
        assertThat(bundled && Dnnl.available()).as("%s", why).isEqualTo(bundled);
        boolean avx512 = false;
        try {
            avx512 = java.nio.file.Files.readString(java.nio.file.Path.of("/proc/cpuinfo")).contains(" avx512f");
        } catch (java.io.IOException e) {
            // not Linux: nothing bundled
        }
        assertThat(avx512).as("oneDNN refused bf16 on an AVX-512 CPU: %s", why).isFalse();
        assertThat(why).endsWith("has no bf16 matmul for this CPU");
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> new Gemm(p1, Backend.AUTO, Bf16.Mode.NATIVE))
                .hasMessage("--bf16: " + why);
        return false;
    }

    @Test
    void nativeProductsMatchANaiveGemmOnBf16RoundedInputs() {
        if (nativeRuns()) checkAll(Bf16.Mode.NATIVE);
    }

    @Test
    void emulatedProductsMatchANaiveGemmOnBf16RoundedInputs() {
        checkAll(Bf16.Mode.EMULATED);
    }

    @Test
    void nativeProductsAreDeterministicForAThreadCount() {
        if (!nativeRuns()) return;
        Case cs = Case.make(false, true, 130, 300, 257, 11, 0);
        Gemm g = new Gemm(p2, Backend.AUTO, Bf16.Mode.NATIVE);
        float[] c1 = cs.c.clone(), c2 = cs.c.clone();
        g.sgemm(cs.ta, cs.tb, cs.m, cs.n, cs.k, cs.a, cs.aOff, cs.lda, cs.b, cs.bOff, cs.ldb, 0f, c1, cs.cOff, cs.ldc);
        g.sgemm(cs.ta, cs.tb, cs.m, cs.n, cs.k, cs.a, cs.aOff, cs.lda, cs.b, cs.bOff, cs.ldb, 0f, c2, cs.cOff, cs.ldc);
        assertThat(c2).isEqualTo(c1);
    }

    @Test
    void theGemmEveryLayerBuildsReadsTheProperty() {
        String before = System.getProperty(Bf16.PROPERTY);
        try {
            System.setProperty(Bf16.PROPERTY, "emulated");
            assertThat(new Gemm(p1).precision()).isEqualTo("bf16-emulated");
            if (nativeRuns()) {
                System.setProperty(Bf16.PROPERTY, "native");
                assertThat(new Gemm(p1).precision()).isEqualTo("bf16");
                assertThat(new Gemm(p1).describe()).contains("bf16 products on oneDNN");
            }
            System.clearProperty(Bf16.PROPERTY);
            assertThat(new Gemm(p1).precision()).isEqualTo("fp32");
        } finally {
            if (before == null) System.clearProperty(Bf16.PROPERTY);
            else System.setProperty(Bf16.PROPERTY, before);
        }
    }

    @Test
    void readsTheCpusBf16InstructionsFromCpuinfo() {
        assertThat(Bf16.cpuInstructions("flags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile")).containsExactly("avx512_bf16", "amx_bf16");
        assertThat(Bf16.cpuInstructions("flags\t\t: fpu avx2 fma")).isEmpty();
        assertThat(Bf16.cpuInstructions("Features\t: fp asimd sve bf16 i8mm")).containsExactly("bf16");
        assertThat(Bf16.cpuInstructions("Features\t: fp asimd")).isEmpty();
    }

    private static void checkAll(Bf16.Mode mode) {
        int[][] shapes = {{1, 37, 45}, {1, 1, 50}, {3, 1, 70}, {5, 70, 33}, {17, 9, 300}, {37, 45, 260}, {130, 70, 520}, {64, 200, 96}};
        long seed = 1;
        for (Parallel p : new Parallel[] {p1, p2}) {
            for (Backend backend : new Backend[] {Backend.JAVA, Backend.AUTO}) {
                Gemm g = new Gemm(p, backend, mode);
                assertThat(g.precision()).isEqualTo(mode == Bf16.Mode.NATIVE ? "bf16" : "bf16-emulated");
                for (int[] s : shapes)
                    for (boolean ta : new boolean[] {false, true})
                        for (boolean tb : new boolean[] {false, true})
                            for (float beta : new float[] {0f, 1f}) {
                                Case cs = Case.make(ta, tb, s[0], s[1], s[2], seed++, (int) (seed % 3));
                                check(cs, g, beta, false, mode + " " + p.threads() + "t " + backend + " " + cs + " beta " + beta);
                                check(cs, g, beta, true, mode + " " + p.threads() + "t " + backend + " " + cs + " beta " + beta + " bf16 B");
                            }
            }
        }
    }

    /** The product against the naive GEMM of the bf16-rounded operands; far enough from the fp32 one to show the rounding. */
    private static void check(Case cs, Gemm g, float beta, boolean storedBf16, String what) {
        float[] ra = cs.a.clone(), rb = cs.b.clone();
        short[] b16 = new short[cs.b.length];
        for (int i = 0; i < ra.length; i++) ra[i] = Bf16.round(ra[i]);
        for (int i = 0; i < rb.length; i++) {
            rb[i] = Bf16.round(rb[i]);
            b16[i] = (short) Bf16.bits(cs.b[i]);
        }
        float[] want = cs.c.clone(), fp32 = cs.c.clone(), got = cs.c.clone();
        GemmNaive.sgemm(cs.ta, cs.tb, cs.m, cs.n, cs.k, ra, cs.aOff, cs.lda, rb, cs.bOff, cs.ldb, beta, want, cs.cOff, cs.ldc);
        GemmNaive.sgemm(cs.ta, cs.tb, cs.m, cs.n, cs.k, cs.a, cs.aOff, cs.lda, cs.b, cs.bOff, cs.ldb, beta, fp32, cs.cOff, cs.ldc);
        if (storedBf16) g.sgemmBf16(cs.ta, cs.tb, cs.m, cs.n, cs.k, cs.a, cs.aOff, cs.lda, b16, cs.bOff, cs.ldb, beta, got, cs.cOff, cs.ldc);
        else g.sgemm(cs.ta, cs.tb, cs.m, cs.n, cs.k, cs.a, cs.aOff, cs.lda, cs.b, cs.bOff, cs.ldb, beta, got, cs.cOff, cs.ldc);
        double maxErr = 0, maxRounding = 0;
        for (int i = 0; i < got.length; i++) {
            boolean inside = i >= cs.cOff && (i - cs.cOff) / cs.ldc < cs.m && (i - cs.cOff) % cs.ldc < cs.n;
            if (!inside) {
                assertThat(got[i]).as("%s: outside C at %d", what, i).isEqualTo(SENTINEL);
                continue;
            }
            // fp32 accumulation of exact bf16 products: within K·2⁻²³ of the sum of |a·b| (≤ K·1 here), times a margin.
            assertThat((double) got[i]).as("%s at %d", what, i).isCloseTo(want[i], org.assertj.core.data.Offset.offset(4e-7 * cs.k + 1e-6));
            maxErr = Math.max(maxErr, Math.abs(got[i] - want[i]));
            maxRounding = Math.max(maxRounding, Math.abs(want[i] - fp32[i]));
        }
        if (!storedBf16) assertThat(maxRounding).as("%s: the bf16 rounding is visible", what).isGreaterThan(20 * maxErr + 1e-6);
    }

    /** Padded operands at offsets with strides wider than the rows; C has sentinels outside its window. */
    private record Case(boolean ta, boolean tb, int m, int n, int k, float[] a, int aOff, int lda, float[] b, int bOff,
                        int ldb, float[] c, int cOff, int ldc) {
        static Case make(boolean ta, boolean tb, int m, int n, int k, long seed, int pad) {
            SplittableRandom r = new SplittableRandom(seed);
            int rowsA = ta ? k : m, colsA = ta ? m : k, rowsB = tb ? n : k, colsB = tb ? k : n;
            int lda = colsA + pad, ldb = colsB + 2 * pad, ldc = n + 3 * pad;
            int aOff = pad * 5, bOff = pad * 3 + 1, cOff = pad * 7 + 2;
            float[] a = new float[aOff + rowsA * lda + pad], b = new float[bOff + rowsB * ldb + pad];
            for (int i = 0; i < a.length; i++) a[i] = (float) r.nextDouble(-1, 1);
            for (int i = 0; i < b.length; i++) b[i] = (float) r.nextDouble(-1, 1);
            float[] c = new float[cOff + m * ldc + pad];
            Arrays.fill(c, SENTINEL);
            for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) c[cOff + i * ldc + j] = (float) r.nextDouble(-1, 1);
            return new Case(ta, tb, m, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc);
        }

        @Override
        public String toString() {
            return "%s%s M=%d N=%d K=%d".formatted(ta ? "T" : "N", tb ? "T" : "N", m, n, k);
        }
    }
}
