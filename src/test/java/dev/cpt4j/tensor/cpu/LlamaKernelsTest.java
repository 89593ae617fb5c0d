package dev.cpt4j.tensor.cpu;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cpt4j.tensor.Parallel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.io.InputStream;
import java.util.Arrays;
import java.util.SplittableRandom;

import static dev.cpt4j.tensor.cpu.KernelTwinsTest.rand;
import static dev.cpt4j.tensor.cpu.KernelTwinsTest.relDiff;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The LLaMA-family kernels (RmsNorm, Rope, SwiGlu, GqaAttention): each fast kernel against its naive twin on odd
 * sizes (1, 7, 33, non-multiples of the vector width) with 1–3 threads, bit-identical results across thread counts,
 * a central finite-difference check of every naive backward, and RoPE against transformers' numbers
 * (src/test/resources/golden/rope/rope.json, written by tools/golden/make_rope_golden.py).
 */
class LlamaKernelsTest {
    static final Parallel[] PARS = {new Parallel(1), new Parallel(2), new Parallel(3)};

    @AfterAll
    static void close() {
        for (Parallel p : PARS) p.close();
    }

    /** The loss whose gradient a backward claims to compute, evaluated in double from the current inputs. */
    interface Loss {
        double eval();
    }

    /** Σ a·b in double. */
    static double dot(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += (double) a[i] * b[i];
        return s;
    }

    /**
     * Central differences of loss w.r.t. every element of x (or a sample of `samples` of them) against grad:
     * |fd − grad| ≤ tol·max(1, |fd|).
     */
    static void checkGradient(String what, float[] x, float[] grad, Loss loss, int samples, double tol) {
        SplittableRandom r = new SplittableRandom(what.hashCode());
        double h = 5e-3, worst = 0;
        int n = Math.min(samples, x.length);
        for (int s = 0; s < n; s++) {
            int i = samples >= x.length ? s : r.nextInt(x.length);
            float orig = x[i], up = (float) (orig + h), down = (float) (orig - h);
            x[i] = up;
            double fp = loss.eval();
            x[i] = down;
            double fm = loss.eval();
            x[i] = orig;
            double fd = (fp - fm) / ((double) up - down);
            double err = Math.abs(fd - grad[i]) / Math.max(1, Math.abs(fd));
            worst = Math.max(worst, err);
            assertThat(err).as("%s[%d]: finite difference %s vs backward %s", what, i, fd, grad[i]).isLessThan(tol);
        }
        assertThat(worst).isLessThan(tol);
    }

    static float[] pad(float[] a, int off) {
        float[] p = new float[off + a.length + 3];
        Arrays.fill(p, Float.NaN); // untouched padding stays NaN; reading it would poison results
        System.arraycopy(a, 0, p, off, a.length);
        return p;
    }

    static float[] slice(float[] a, int off, int n) {
        return Arrays.copyOfRange(a, off, off + n);
    }

    // ---- RmsNorm ----

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 33, 100, 576})
    void rmsNormMatchesNaive(int C) {
        SplittableRandom r = new SplittableRandom(C);
        int N = 11;
        float eps = 1e-6f;
        float[] x = rand(r, N * C, 2), w = rand(r, C, 0.3), dout = rand(r, N * C, 1);
        for (int i = 0; i < C; i++) w[i] += 1f;
        for (int i = 0; i < x.length; i++) x[i] += 0.5f;
        float[] outN = new float[N * C], sN = new float[N];
        RmsNorm.forwardNaive(outN, sN, x, w, N, C, eps);
        float[] dx0 = rand(r, N * C, 1), dw0 = rand(r, C, 1);
        float[] dxN = dx0.clone(), dwN = dw0.clone();
        RmsNorm.backwardNaive(dxN, dwN, dout, x, w, sN, N, C);
        float[] out1 = null, dx1 = null, dw1 = null;
        for (Parallel par : PARS) {
            float[] out = pad(new float[N * C], 3), s = pad(new float[N], 1);
            RmsNorm.forward(par, out, 3, s, 1, pad(x, 2), 2, pad(w, 5), 5, N, C, eps);
            assertThat(relDiff(slice(out, 3, N * C), outN)).as("out C=%d", C).isLessThan(1e-6);
            for (int i = 0; i < N; i++) assertThat((double) Math.abs(s[1 + i] - sN[i]) / sN[i]).isLessThan(1e-6);
            float[] dx = pad(dx0, 4), dw = pad(dw0, 1);
            RmsNorm.backward(par, dx, 4, dw, 1, pad(dout, 2), 2, pad(x, 3), 3, pad(w, 6), 6, slice(s, 1, N), 0, N, C);
            assertThat(relDiff(slice(dx, 4, N * C), dxN)).isLessThan(1e-5);
            assertThat(relDiff(slice(dw, 1, C), dwN)).isLessThan(1e-5);
            float[] dxFrozen = dx0.clone();
            RmsNorm.backward(par, dxFrozen, 0, null, 0, dout, 0, x, 0, w, 0, slice(s, 1, N), 0, N, C);
            assertThat(dxFrozen).isEqualTo(slice(dx, 4, N * C));
            if (out1 == null) {
                out1 = out;
                dx1 = dx;
                dw1 = dw;
            } else { // bit-identical whatever the thread count
                assertThat(out).isEqualTo(out1);
                assertThat(dx).isEqualTo(dx1);
                assertThat(dw).isEqualTo(dw1);
            }
        }
    }

    @Test
    void rmsNormNaiveBackwardMatchesFiniteDifferences() {
        SplittableRandom r = new SplittableRandom(3);
        int N = 4, C = 7;
        float[] x = rand(r, N * C, 1), w = rand(r, C, 1), dout = rand(r, N * C, 1);
        float[] out = new float[N * C], s = new float[N];
        Loss loss = () -> {
            RmsNorm.forwardNaive(out, s, x, w, N, C, 1e-5f);
            return dot(out, dout);
        };
        loss.eval();
        float[] dx = new float[N * C], dw = new float[C];
        RmsNorm.backwardNaive(dx, dw, dout, x, w, s, N, C);
        checkGradient("rmsnorm dx", x, dx, loss, Integer.MAX_VALUE, 2e-3);
        checkGradient("rmsnorm dw", w, dw, loss, Integer.MAX_VALUE, 2e-3);
    }

    // ---- SwiGlu ----

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 33, 4099, 9000})
    void swiGluMatchesNaive(int n) {
        SplittableRandom r = new SplittableRandom(n);
        float[] g = rand(r, n, 3), u = rand(r, n, 2), dout = rand(r, n, 1);
        if (n > 100) for (int i = 0; i < 40; i++) g[i] = (i - 20) * 1.5f; // tails up to ±30
        float[] yN = new float[n], dgN = new float[n], duN = new float[n];
        SwiGlu.forwardNaive(yN, g, u, n);
        SwiGlu.backwardNaive(dgN, duN, dout, g, u, n);
        float[] y1 = null, dg1 = null, du1 = null;
        for (Parallel par : PARS) {
            float[] y = pad(new float[n], 1), dg = pad(rand(r, n, 1), 2), du = pad(rand(r, n, 1), 3); // overwritten
            SwiGlu.forward(par, y, 1, pad(g, 2), 2, pad(u, 4), 4, n);
            SwiGlu.backward(par, dg, 2, du, 3, pad(dout, 1), 1, pad(g, 3), 3, pad(u, 2), 2, n);
            for (int i = 0; i < n; i++) {
                assertThat((double) Math.abs(y[1 + i] - yN[i])).as("silu(%s)·%s", g[i], u[i]).isLessThan(2e-6 * Math.max(1, Math.abs(yN[i])));
                assertThat((double) Math.abs(dg[2 + i] - dgN[i])).as("dgate at %s", g[i]).isLessThan(2e-6 * Math.max(1, Math.abs(dgN[i])));
                assertThat((double) Math.abs(du[3 + i] - duN[i])).as("dup at %s", g[i]).isLessThan(2e-6 * Math.max(1, Math.abs(duN[i])));
            }
            if (y1 == null) {
                y1 = y;
                dg1 = dg;
                du1 = du;
            } else {
                assertThat(y).isEqualTo(y1);
                assertThat(dg).isEqualTo(dg1);
                assertThat(du).isEqualTo(du1);
            }
        }
    }

    @Test
    void swiGluNaiveBackwardMatchesFiniteDifferences() {
        SplittableRandom r = new SplittableRandom(5);
        int n = 33;
        float[] g = rand(r, n, 2), u = rand(r, n, 1), dout = rand(r, n, 1), y = new float[n];
        Loss loss = () -> {
            SwiGlu.forwardNaive(y, g, u, n);
            return dot(y, dout);
        };
        float[] dg = new float[n], du = new float[n];
        SwiGlu.backwardNaive(dg, du, dout, g, u, n);
        checkGradient("swiglu dgate", g, dg, loss, n, 1e-3);
        checkGradient("swiglu dup", u, du, loss, n, 1e-3);
    }

    // ---- Rope ----

    static Rope.Scaling scalingOf(JsonNode p) {
        String type = p.path("rope_type").asText();
        return new Rope.Scaling(type, p.has("factor") ? p.get("factor").asDouble() : type.equals("default") ? 1.0 : Double.NaN,
                p.path("original_max_position_embeddings").asInt(0), p.path("low_freq_factor").asDouble(0),
                p.path("high_freq_factor").asDouble(0), p.path("beta_fast").asDouble(0), p.path("beta_slow").asDouble(0),
                p.has("attention_factor") ? p.get("attention_factor").asDouble() : null,
                p.has("mscale") ? p.get("mscale").asDouble() : null,
                p.has("mscale_all_dim") ? p.get("mscale_all_dim").asDouble() : null,
                p.path("truncate").asBoolean(true));
    }

    static JsonNode ropeGolden() throws IOException {
        try (InputStream in = LlamaKernelsTest.class.getResourceAsStream("/golden/rope/rope.json")) {
            assertThat(in).as("golden/rope/rope.json on the test classpath").isNotNull();
            return new ObjectMapper().readTree(in);
        }
    }

    static float[] floats(JsonNode a) {
        float[] f = new float[a.size()];
        for (int i = 0; i < f.length; i++) f[i] = (float) a.get(i).asDouble();
        return f;
    }

    /** inv_freq, attention scaling and cos/sin tables against transformers 5 (tools/golden/make_rope_golden.py). */
    @Test
    void ropeMatchesTransformers() throws IOException {
        for (JsonNode c : ropeGolden().get("cases")) {
            String name = c.get("name").asText();
            int hd = c.get("head_dim").asInt(), half = hd / 2, seqLen = c.get("seq_len").asInt();
            Rope rope = Rope.of(scalingOf(c.get("rope_parameters")), c.get("rope_parameters").get("rope_theta").asDouble(),
                    hd, c.get("max_position_embeddings").asInt());
            assertThat(rope.attentionScaling()).as(name).isEqualTo((float) c.get("attention_scaling").asDouble());
            float[] want = floats(c.get("inv_freq")), got = rope.invFreq(seqLen);
            int off = 0;
            for (int i = 0; i < half; i++) {
                // torch's fp32 pow is within 1 ulp of the correctly rounded one used here
                assertThat((double) Math.abs(got[i] - want[i])).as("%s inv_freq[%d]", name, i).isLessThanOrEqualTo(Math.ulp(want[i]));
                if (got[i] != want[i]) off++;
            }
            assertThat(off).as("%s: inv_freq elements 1 ulp off torch", name).isLessThanOrEqualTo(Math.max(1, half / 16));
            float[] cos = new float[seqLen * half], sin = new float[seqLen * half];
            rope.table(seqLen, seqLen, cos, sin);
            float[] wc = floats(c.get("cos")), ws = floats(c.get("sin"));
            JsonNode pos = c.get("positions");
            float att = rope.attentionScaling();
            for (int p = 0; p < pos.size(); p++) {
                int t = pos.get(p).asInt();
                for (int i = 0; i < half; i++) {
                    // ≤ 2 ulp of the value, plus what a 1-ulp different inv_freq moves the angle t·inv_freq by
                    double tol = 2.5e-7 * att + t * Math.ulp(want[i]) * att;
                    assertThat((double) Math.abs(cos[t * half + i] - wc[p * half + i])).as("%s cos[%d][%d]", name, t, i).isLessThanOrEqualTo(tol);
                    assertThat((double) Math.abs(sin[t * half + i] - ws[p * half + i])).as("%s sin[%d][%d]", name, t, i).isLessThanOrEqualTo(tol);
                }
            }
        }
    }

    /** Rope.forward with transformers' cos/sin gives apply_rotary_pos_emb's q_embed bit for bit. */
    @Test
    void ropeApplyMatchesTransformersBitForBit() throws IOException {
        JsonNode a = ropeGolden().get("apply");
        int B = a.get("B").asInt(), NH = a.get("NH").asInt(), T = a.get("T").asInt(), hd = a.get("head_dim").asInt();
        float[] q = floats(a.get("q")), want = floats(a.get("q_embed")), cos = floats(a.get("cos")), sin = floats(a.get("sin"));
        for (Parallel par : PARS) {
            float[] x = pad(q, 3);
            Rope.forward(par, x, 3, B * T, T, NH, hd, cos, sin, 0);
            assertThat(slice(x, 3, q.length)).isEqualTo(want);
        }
        float[] x = q.clone();
        Rope.forwardNaive(x, 0, B * T, T, NH, hd, cos, sin, 0);
        assertThat(x).isEqualTo(want);
        // and with cpt4j's own table: within the tables' ulps
        Rope rope = Rope.of(Rope.Scaling.DEFAULT, 10000.0, hd, 2048);
        float[] c2 = new float[T * hd / 2], s2 = new float[T * hd / 2];
        rope.table(T, T, c2, s2);
        x = q.clone();
        Rope.forward(PARS[0], x, 0, B * T, T, NH, hd, c2, s2, 0);
        assertThat(relDiff(x, want)).isLessThan(1e-6);
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 8, 14, 66, 128})
    void ropeMatchesNaive(int hd) {
        SplittableRandom r = new SplittableRandom(hd);
        int B = 2, T = 7, NH = 3, pos0 = 5, rows = B * T, n = rows * NH * hd;
        Rope rope = Rope.of(new Rope.Scaling("yarn", 4, 64, 0, 0, 0, 0, null, null, null, true), 10000, hd, 256);
        float[] cos = new float[(pos0 + T) * hd / 2], sin = new float[(pos0 + T) * hd / 2];
        rope.table(pos0 + T, pos0 + T, cos, sin);
        float[] x = rand(r, n, 1), dy = rand(r, n, 1);
        float[] yN = x.clone(), dxN = dy.clone();
        Rope.forwardNaive(yN, 0, rows, T, NH, hd, cos, sin, pos0);
        Rope.backwardNaive(dxN, 0, rows, T, NH, hd, cos, sin, pos0);
        for (Parallel par : PARS) {
            float[] y = pad(x, 2), dx = pad(dy, 5);
            Rope.forward(par, y, 2, rows, T, NH, hd, cos, sin, pos0);
            Rope.backward(par, dx, 5, rows, T, NH, hd, cos, sin, pos0);
            assertThat(slice(y, 2, n)).isEqualTo(yN); // the same fp32 roundings as transformers', whatever the threads
            assertThat(relDiff(slice(dx, 5, n), dxN)).isLessThan(1e-6);
            // a rotation's transpose is its inverse (the tables carry yarn's attention factor a: Rᵀ·R = a²)
            Rope.backward(par, y, 2, rows, T, NH, hd, cos, sin, pos0);
            float a2 = rope.attentionScaling() * rope.attentionScaling();
            float[] want = x.clone();
            for (int i = 0; i < n; i++) want[i] *= a2;
            assertThat(relDiff(slice(y, 2, n), want)).isLessThan(1e-6);
        }
    }

    @Test
    void ropeNaiveBackwardMatchesFiniteDifferences() {
        SplittableRandom r = new SplittableRandom(9);
        int B = 2, T = 3, NH = 2, hd = 6, rows = B * T, n = rows * NH * hd;
        Rope rope = Rope.of(new Rope.Scaling("llama3", 8, 16, 1, 4, 0, 0, null, null, null, true), 500000, hd, 64);
        float[] cos = new float[(T + 2) * hd / 2], sin = new float[(T + 2) * hd / 2];
        rope.table(T + 2, T + 2, cos, sin);
        float[] x = rand(r, n, 1), dout = rand(r, n, 1), y = new float[n];
        Loss loss = () -> {
            System.arraycopy(x, 0, y, 0, n);
            Rope.forwardNaive(y, 0, rows, T, NH, hd, cos, sin, 2);
            return dot(y, dout);
        };
        float[] dx = dout.clone();
        Rope.backwardNaive(dx, 0, rows, T, NH, hd, cos, sin, 2);
        checkGradient("rope dx", x, dx, loss, n, 1e-3);
    }

    @Test
    void ropeRejectsUnsupportedTypesNamingTheSupportedOnes() {
        assertThatThrownBy(() -> new Rope.Scaling("longrope", 4, 4096, 0, 0, 0, 0, null, null, null, true))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("longrope").hasMessageContaining("default, linear, dynamic, yarn, llama3");
        assertThatThrownBy(() -> Rope.of(Rope.Scaling.DEFAULT, 10000, 7, 128)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("even head_dim");
    }

    @Test
    void dynamicRopeChangesOnlyPastMaxPositions() {
        Rope dyn = Rope.of(new Rope.Scaling("dynamic", 2, 0, 0, 0, 0, 0, null, null, null, true), 10000, 16, 100);
        Rope def = Rope.of(Rope.Scaling.DEFAULT, 10000, 16, 100);
        assertThat(dyn.invFreq(100)).isEqualTo(def.invFreq(100));
        assertThat(dyn.invFreq(1)).isEqualTo(def.invFreq(1));
        float[] longer = dyn.invFreq(101);
        assertThat(longer[0]).isEqualTo(1f);
        assertThat(longer[7]).isLessThan(def.invFreq(1)[7]);
    }

    // ---- GqaAttention ----

    static final int[][] GQA = {{4, 2, 8}, {3, 1, 5}, {6, 3, 17}, {2, 2, 33}}; // NH, NKV, hd

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 33})
    void gqaMatchesNaive(int T) {
        int B = 2;
        for (int[] c : GQA)
            for (int window : new int[] {0, 1, 5, 40}) {
                int NH = c[0], NKV = c[1], hd = c[2], nq = B * T * NH * hd, nk = B * T * NKV * hd;
                SplittableRandom r = new SplittableRandom(T * 131 + NH * 7 + hd + window);
                float[] q = rand(r, nq, 1), k = rand(r, nk, 1), v = rand(r, nk, 1), dout = rand(r, nq, 1);
                float scale = (float) (1 / Math.sqrt(hd));
                float[] outN = new float[nq], lseN = new float[B * NH * T];
                float[] dqN = new float[nq], dkN = new float[nk], dvN = new float[nk];
                GqaAttention.forwardNaive(outN, lseN, q, k, v, B, T, NH, NKV, hd, scale, window);
                GqaAttention.backwardNaive(dqN, dkN, dvN, dout, q, k, v, B, T, NH, NKV, hd, scale, window);
                float[][] first = null;
                for (Parallel par : PARS) {
                    String at = "T=%d NH=%d NKV=%d hd=%d window=%d threads=%d".formatted(T, NH, NKV, hd, window, par.threads());
                    float[] out = pad(new float[nq], 1), lse = pad(new float[B * NH * T], 2);
                    GqaAttention.forward(par, out, 1, lse, 2, pad(q, 3), 3, pad(k, 4), 4, pad(v, 5), 5, B, T, NH, NKV, hd, scale, window);
                    assertThat(relDiff(slice(out, 1, nq), outN)).as("out " + at).isLessThan(2e-6);
                    assertThat(relDiff(slice(lse, 2, B * NH * T), lseN)).as("lse " + at).isLessThan(2e-6);
                    // dq, dk, dv start as garbage: backward overwrites them
                    float[] dq = pad(rand(r, nq, 9), 2), dk = pad(rand(r, nk, 9), 3), dv = pad(rand(r, nk, 9), 1);
                    GqaAttention.backward(par, dq, 2, dk, 3, dv, 1, pad(dout, 4), 4, out, 1, lse, 2, pad(q, 1), 1,
                            pad(k, 2), 2, pad(v, 3), 3, B, T, NH, NKV, hd, scale, window);
                    assertThat(relDiff(slice(dq, 2, nq), dqN)).as("dq " + at).isLessThan(1e-5);
                    assertThat(relDiff(slice(dk, 3, nk), dkN)).as("dk " + at).isLessThan(1e-5);
                    assertThat(relDiff(slice(dv, 1, nk), dvN)).as("dv " + at).isLessThan(1e-5);
                    float[][] all = {out, lse, dq, dk, dv};
                    if (first == null) first = all;
                    else for (int i = 0; i < all.length; i++) assertThat(all[i]).as("thread-count independence " + at).isEqualTo(first[i]);
                }
            }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 33, 50})
    void packedGqaMatchesNaive(int T) {
        int B = 3;
        for (int[] c : GQA)
            for (int window : new int[] {0, 5}) {
                int NH = c[0], NKV = c[1], hd = c[2], nq = B * T * NH * hd, nk = B * T * NKV * hd;
                SplittableRandom r = new SplittableRandom(T * 171 + NH * 7 + hd + window);
                int[] starts = KernelTwinsTest.randomStarts(r, B, T);
                float[] q = rand(r, nq, 1), k = rand(r, nk, 1), v = rand(r, nk, 1), dout = rand(r, nq, 1);
                float scale = (float) (1 / Math.sqrt(hd));
                float[] outN = new float[nq], lseN = new float[B * NH * T];
                float[] dqN = new float[nq], dkN = new float[nk], dvN = new float[nk];
                GqaAttention.forwardNaive(outN, lseN, q, k, v, starts, B, T, NH, NKV, hd, scale, window);
                GqaAttention.backwardNaive(dqN, dkN, dvN, dout, q, k, v, starts, B, T, NH, NKV, hd, scale, window);
                int[] padded = new int[starts.length + 3];
                System.arraycopy(starts, 0, padded, 3, starts.length);
                for (Parallel par : PARS) {
                    String at = "T=%d NH=%d NKV=%d hd=%d window=%d threads=%d".formatted(T, NH, NKV, hd, window, par.threads());
                    float[] out = new float[nq], lse = new float[B * NH * T];
                    GqaAttention.forward(par, out, 0, lse, 0, q, 0, k, 0, v, 0, padded, 3, B, T, NH, NKV, hd, scale, window);
                    assertThat(relDiff(out, outN)).as("out " + at).isLessThan(2e-6);
                    assertThat(relDiff(lse, lseN)).as("lse " + at).isLessThan(2e-6);
                    float[] dq = rand(r, nq, 9), dk = rand(r, nk, 9), dv = rand(r, nk, 9);
                    GqaAttention.backward(par, dq, 0, dk, 0, dv, 0, dout, 0, out, 0, lse, 0, q, 0, k, 0, v, 0, padded, 3,
                            B, T, NH, NKV, hd, scale, window);
                    assertThat(relDiff(dq, dqN)).as("dq " + at).isLessThan(1e-5);
                    assertThat(relDiff(dk, dkN)).as("dk " + at).isLessThan(1e-5);
                    assertThat(relDiff(dv, dvN)).as("dv " + at).isLessThan(1e-5);
                }
                // all-zero starts is bit for bit the unpacked kernel
                float[] a = new float[nq], la = new float[B * NH * T], b2 = new float[nq], lb = new float[B * NH * T];
                GqaAttention.forward(PARS[1], a, 0, la, 0, q, 0, k, 0, v, 0, B, T, NH, NKV, hd, scale, window);
                GqaAttention.forward(PARS[1], b2, 0, lb, 0, q, 0, k, 0, v, 0, new int[B * T], 0, B, T, NH, NKV, hd, scale, window);
                assertThat(b2).isEqualTo(a);
                assertThat(lb).isEqualTo(la);
            }
    }

    @Test
    void packedGqaNaiveBackwardMatchesFiniteDifferences() {
        SplittableRandom r = new SplittableRandom(77);
        int B = 2, T = 9, NH = 4, NKV = 2, hd = 3, nq = B * T * NH * hd, nk = B * T * NKV * hd;
        int[] starts = KernelTwinsTest.randomStarts(r, B, T);
        float[] q = rand(r, nq, 1), k = rand(r, nk, 1), v = rand(r, nk, 1), dout = rand(r, nq, 1);
        float[] out = new float[nq], lse = new float[B * NH * T];
        Loss loss = () -> {
            GqaAttention.forwardNaive(out, lse, q, k, v, starts, B, T, NH, NKV, hd, 0.7f, 0);
            return dot(out, dout);
        };
        float[] dq = new float[nq], dk = new float[nk], dv = new float[nk];
        GqaAttention.backwardNaive(dq, dk, dv, dout, q, k, v, starts, B, T, NH, NKV, hd, 0.7f, 0);
        checkGradient("packed gqa dq", q, dq, loss, nq, 2e-3);
        checkGradient("packed gqa dk", k, dk, loss, nk, 2e-3);
        checkGradient("packed gqa dv", v, dv, loss, nk, 2e-3);
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 14, 66})
    void packedRopeMatchesNaive(int hd) {
        SplittableRandom r = new SplittableRandom(hd + 3);
        int B = 2, T = 11, NH = 3, rows = B * T, n = rows * NH * hd;
        int[] starts = KernelTwinsTest.randomStarts(r, B, T);
        Rope rope = Rope.of(Rope.Scaling.DEFAULT, 100, hd, 256);
        float[] cos = new float[T * hd / 2], sin = new float[T * hd / 2];
        rope.table(T, T, cos, sin);
        float[] x = rand(r, n, 1), dy = rand(r, n, 1);
        float[] yN = x.clone(), dxN = dy.clone();
        Rope.forwardNaive(yN, 0, rows, T, NH, hd, cos, sin, 0, starts);
        Rope.backwardNaive(dxN, 0, rows, T, NH, hd, cos, sin, 0, starts);
        // a token at position p of its document rotates as row p of an unpacked sequence
        for (int row = 0; row < rows; row++) {
            int p = row % T - starts[row];
            float[] one = java.util.Arrays.copyOfRange(x, row * NH * hd, (row + 1) * NH * hd);
            Rope.forwardNaive(one, 0, 1, 1, NH, hd, cos, sin, p);
            assertThat(slice(yN, row * NH * hd, NH * hd)).isEqualTo(one);
        }
        for (Parallel par : PARS) {
            float[] y = x.clone(), dx = dy.clone();
            Rope.forward(par, y, 0, rows, T, NH, hd, cos, sin, starts);
            Rope.backward(par, dx, 0, rows, T, NH, hd, cos, sin, starts);
            assertThat(y).isEqualTo(yN);
            assertThat(relDiff(dx, dxN)).isLessThan(1e-6);
        }
    }

    @Test
    void gqaWindowOfOneAttendsOnlyToItself() {
        SplittableRandom r = new SplittableRandom(1);
        int T = 9, NH = 4, NKV = 2, hd = 3;
        float[] q = rand(r, T * NH * hd, 1), k = rand(r, T * NKV * hd, 1), v = rand(r, T * NKV * hd, 1);
        float[] out = new float[T * NH * hd], lse = new float[NH * T];
        GqaAttention.forward(PARS[1], out, 0, lse, 0, q, 0, k, 0, v, 0, 1, T, NH, NKV, hd, 0.5f, 1);
        for (int t = 0; t < T; t++)
            for (int h = 0; h < NH; h++)
                for (int d = 0; d < hd; d++)
                    assertThat(out[t * NH * hd + h * hd + d]).isEqualTo(v[t * NKV * hd + (h / 2) * hd + d]);
    }

    @Test
    void gqaNaiveBackwardMatchesFiniteDifferences() {
        for (int window : new int[] {0, 3}) {
            SplittableRandom r = new SplittableRandom(window);
            int B = 2, T = 6, NH = 4, NKV = 2, hd = 3, nq = B * T * NH * hd, nk = B * T * NKV * hd;
            float[] q = rand(r, nq, 1), k = rand(r, nk, 1), v = rand(r, nk, 1), dout = rand(r, nq, 1);
            float[] out = new float[nq], lse = new float[B * NH * T];
            float scale = 0.7f;
            Loss loss = () -> {
                GqaAttention.forwardNaive(out, lse, q, k, v, B, T, NH, NKV, hd, scale, window);
                return dot(out, dout);
            };
            float[] dq = new float[nq], dk = new float[nk], dv = new float[nk];
            GqaAttention.backwardNaive(dq, dk, dv, dout, q, k, v, B, T, NH, NKV, hd, scale, window);
            checkGradient("gqa dq w=" + window, q, dq, loss, nq, 2e-3);
            checkGradient("gqa dk w=" + window, k, dk, loss, nk, 2e-3);
            checkGradient("gqa dv w=" + window, v, dv, loss, nk, 2e-3);
        }
    }

    /** decodeStep on a KV cache of len positions = the last row of a len-token forward. */
    @ParameterizedTest
    @ValueSource(ints = {1, 7, 33})
    void gqaDecodeStepMatchesLastRowOfForward(int len) {
        for (int[] c : GQA)
            for (int window : new int[] {0, 1, 5, 40}) {
                int NH = c[0], NKV = c[1], hd = c[2], ldq = NH * hd, ldk = NKV * hd;
                SplittableRandom r = new SplittableRandom(len * 17 + NH + hd + window);
                float[] q = rand(r, len * ldq, 1), k = rand(r, len * ldk, 1), v = rand(r, len * ldk, 1);
                float scale = (float) (1 / Math.sqrt(hd));
                float[] outN = new float[len * ldq], lseN = new float[NH * len];
                GqaAttention.forwardNaive(outN, lseN, q, k, v, 1, len, NH, NKV, hd, scale, window);
                int kOff = 2 * ldk + 1, vOff = 3; // caches with room before and after the len positions
                float[] kCache = new float[kOff + (len + 4) * ldk], vCache = new float[vOff + (len + 2) * ldk];
                Arrays.fill(kCache, Float.NaN);
                Arrays.fill(vCache, Float.NaN);
                System.arraycopy(k, 0, kCache, kOff, len * ldk);
                System.arraycopy(v, 0, vCache, vOff, len * ldk);
                float[] out = pad(new float[ldq], 2), scratch = new float[len];
                GqaAttention.decodeStep(out, 2, pad(slice(q, (len - 1) * ldq, ldq), 1), 1, kCache, kOff, vCache, vOff,
                        len, NH, NKV, hd, scale, window, scratch);
                assertThat(relDiff(slice(out, 2, ldq), slice(outN, (len - 1) * ldq, ldq)))
                        .as("len=%d NH=%d NKV=%d hd=%d window=%d", len, NH, NKV, hd, window).isLessThan(2e-6);
            }
    }

    @Test
    void gqaRejectsHeadCountsThatDoNotGroup() {
        float[] z = new float[64];
        assertThatThrownBy(() -> GqaAttention.forward(PARS[0], z, 0, z, 0, z, 0, z, 0, z, 0, 1, 1, 3, 2, 4, 1f, 0))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("multiple of key/value heads");
    }
}
