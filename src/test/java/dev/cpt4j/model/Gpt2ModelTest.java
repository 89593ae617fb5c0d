package dev.cpt4j.model;

import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.cpu.Gemm;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Behaviour beyond the golden parity: dropout, checkpointing, ignored labels, frozen tensors, the Conv1D hook. */
class Gpt2ModelTest {
    static final Parallel PAR = new Parallel(2);
    static final int B = 2, T = 9;

    @AfterAll
    static void close() {
        PAR.close();
    }

    static Gpt2Config cfg(float drop, boolean tied) {
        return new Gpt2Config(41, 16, 20, 2, 4, 28, "gelu_new", 1e-5f, 0.3f, drop, drop, drop, tied, true, false);
    }

    static Gpt2Model model(Gpt2Config c, boolean ckpt) {
        Gpt2Model m = new Gpt2Model(c, new Gemm(PAR), PAR, B, T, ckpt);
        m.initRandom(3);
        // non-trivial LayerNorm parameters and biases
        SplittableRandom r = new SplittableRandom(9);
        for (int i = 0; i < m.params().length; i++) m.params()[i] += (float) (r.nextGaussian() * 0.05);
        return m;
    }

    static int[] tokens(int V) {
        SplittableRandom r = new SplittableRandom(11);
        int[] t = new int[B * T];
        for (int i = 0; i < t.length; i++) t[i] = r.nextInt(V);
        return t;
    }

    @Test
    void dropoutGradientMatchesFiniteDifferences() {
        Gpt2Model m = model(cfg(0.2f, false), false);
        int[] tok = tokens(41);
        m.zeroGrad();
        m.forward(tok, B, T, true, 77);
        m.backward();
        float[] g = m.grads().clone();
        String[] names = {Gpt2Layout.WTE, Gpt2Layout.WPE, Gpt2Layout.layer(0, "attn.c_attn.weight"),
            Gpt2Layout.layer(1, "attn.c_proj.bias"), Gpt2Layout.layer(0, "ln_1.weight"),
            Gpt2Layout.layer(1, "mlp.c_fc.weight"), Gpt2Layout.layer(0, "mlp.c_proj.weight"), Gpt2Layout.LNF_B,
            Gpt2Layout.LM_HEAD};
        for (String n : names) {
            ParamLayout.View v = m.layout().get(n);
            int best = v.offset();
            for (int i = v.offset(); i < v.offset() + v.size(); i++) if (Math.abs(g[i]) > Math.abs(g[best])) best = i;
            float p0 = m.params()[best], h = 1e-2f;
            m.params()[best] = p0 + h;
            double lp = m.forward(tok, B, T, true, 77);
            m.params()[best] = p0 - h;
            double lm = m.forward(tok, B, T, true, 77);
            m.params()[best] = p0;
            double fd = (lp - lm) / (2 * h);
            assertThat(Math.abs(fd - g[best])).as("%s: fd %s vs analytic %s", n, fd, g[best])
                    .isLessThan(0.02 * Math.abs(g[best]) + 2e-4);
        }
    }

    @Test
    void dropoutIsSeededAndOffInEval() {
        Gpt2Model m = model(cfg(0.3f, true), false);
        int[] tok = tokens(41);
        float a = m.forward(tok, B, T, true, 5), b = m.forward(tok, B, T, true, 5), c = m.forward(tok, B, T, true, 6);
        assertThat(a).isEqualTo(b);
        assertThat(a).isNotEqualTo(c);
        float e1 = m.evalLoss(tok, B, T), e2 = m.forward(tok, B, T, false, 123);
        assertThat(e1).isEqualTo(e2);
        Gpt2Model noDrop = new Gpt2Model(cfg(0f, true), new Gemm(PAR), PAR, B, T, false);
        System.arraycopy(m.params(), 0, noDrop.params(), 0, m.params().length);
        assertThat(noDrop.forward(tok, B, T, true, 5)).isEqualTo(e1);
    }

    /** Catches results that change once the JIT compiles a kernel (e.g. an unordered lane reduction). */
    @Test
    void repeatedStepsAreBitwiseIdentical() {
        Gpt2Model m = model(cfg(0.1f, false), true);
        int[] tok = tokens(41);
        float[] first = null;
        float firstLoss = 0;
        for (int rep = 0; rep < 25; rep++) {
            m.zeroGrad();
            float loss = m.forward(tok, B, T, true, 3);
            m.backward();
            if (first == null) {
                first = m.grads().clone();
                firstLoss = loss;
            } else {
                assertThat(loss).isEqualTo(firstLoss);
                assertThat(m.grads()).isEqualTo(first);
            }
        }
    }

    @Test
    void checkpointingGivesIdenticalGradients() {
        int[] tok = tokens(41);
        Gpt2Model a = model(cfg(0.1f, true), false), b = model(cfg(0.1f, true), true);
        for (Gpt2Model m : new Gpt2Model[] {a, b}) {
            m.zeroGrad();
            m.forward(tok, B, T, true, 9);
            m.backward();
            m.forward(tok, B, T, true, 10); // gradient accumulation over two micro-batches
            m.backward();
        }
        assertThat(b.grads()).isEqualTo(a.grads());
    }

    @Test
    void ignoredLabelsAndShiftMatchLogits() {
        Gpt2Model m = model(cfg(0f, false), false);
        int[] tok = tokens(41);
        int[] labels = tok.clone();
        labels[3] = -100;
        labels[T + 5] = -100;
        labels[T] = -100; // position 0 of row 1 is never a target anyway
        float loss = m.forward(tok, labels, B, T, false, 0);
        float[] logits = new float[B * T * 41];
        m.logits(tok, B, T, logits);
        double sum = 0;
        int n = 0;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T - 1; t++) {
                int y = labels[b * T + t + 1];
                if (y < 0) continue;
                int o = (b * T + t) * 41;
                double max = Double.NEGATIVE_INFINITY, s = 0;
                for (int v = 0; v < 41; v++) max = Math.max(max, logits[o + v]);
                for (int v = 0; v < 41; v++) s += Math.exp(logits[o + v] - max);
                sum += max + Math.log(s) - logits[o + y];
                n++;
            }
        assertThat(n).isEqualTo(B * (T - 1) - 2);
        assertThat(m.lastLabelCount()).isEqualTo(n);
        assertThat((double) loss).isCloseTo(sum / n, org.assertj.core.data.Offset.offset(1e-5));
    }

    @Test
    void frozenTensorsGetNoGradientAndOthersAreUnchanged() {
        int[] tok = tokens(41);
        Gpt2Model a = model(cfg(0f, true), false), b = model(cfg(0f, true), false);
        b.setFrozen(n -> n.contains("c_attn") || n.equals(Gpt2Layout.WTE));
        for (Gpt2Model m : new Gpt2Model[] {a, b}) {
            m.zeroGrad();
            m.forward(tok, B, T, true, 0);
            m.backward();
        }
        int packed = 0;
        for (ParamLayout.View v : a.layout().views()) {
            boolean frozen = v.name().contains("c_attn") || v.name().equals(Gpt2Layout.WTE);
            int go = b.gradOffset(v.name());
            if (frozen) {
                assertThat(go).as(v.name()).isEqualTo(-1);
                continue;
            }
            assertThat(go).as(v.name()).isEqualTo(packed); // frozen tensors take no gradient space
            packed += v.size();
            for (int i = 0; i < v.size(); i++)
                assertThat(b.grads()[go + i]).as(v.name()).isEqualTo(a.grads()[v.offset() + i]);
        }
        assertThat(b.grads()).hasSize(packed);
    }

    /** A hook that adds x·E for an extra weight E at layer 0's c_fc: equivalent to the base weight W + E. */
    @Test
    void linearHookActsLikeAnExtraWeight() {
        int[] tok = tokens(41);
        Gpt2Config c = cfg(0f, true);
        Gpt2Model hooked = model(c, true), merged = model(c, false);
        int IN = 20, OUT = 28;
        float[] E = KernelRand.gaussian(IN * OUT, 0.1, 4), dE = new float[IN * OUT];
        int[] calls = new int[2];
        hooked.setLinearHook(new LinearHook() {
            @Override
            public void forward(int layer, int site, float[] x, int xOff, float[] y, int yOff, int n, int in, int out,
                                boolean training, long seed) {
                if (layer != 0 || site != Site.MLP_FC.ordinal()) return;
                calls[0]++;
                dev.cpt4j.tensor.cpu.GemmNaive.sgemm(false, false, n, out, in, x, xOff, in, E, 0, out, 1f, y, yOff, out);
            }

            @Override
            public void backward(int layer, int site, float[] x, int xOff, float[] dy, int dyOff, float[] dx, int dxOff,
                                 int n, int in, int out) {
                if (layer != 0 || site != Site.MLP_FC.ordinal()) return;
                calls[1]++;
                dev.cpt4j.tensor.cpu.GemmNaive.sgemm(false, true, n, in, out, dy, dyOff, out, E, 0, out, 1f, dx, dxOff, in);
                dev.cpt4j.tensor.cpu.GemmNaive.sgemm(true, false, in, out, n, x, xOff, in, dy, dyOff, out, 1f, dE, 0, out);
            }
        });
        int w = merged.layout().get(Gpt2Layout.layer(0, "mlp.c_fc.weight")).offset();
        for (int i = 0; i < E.length; i++) merged.params()[w + i] += E[i];
        for (Gpt2Model m : new Gpt2Model[] {hooked, merged}) {
            m.zeroGrad();
            m.forward(tok, B, T, true, 0);
            m.backward();
        }
        assertThat(calls[0]).isEqualTo(2); // forward + the checkpointing recompute
        assertThat(calls[1]).isEqualTo(1);
        double maxRef = 0, maxDiff = 0;
        for (int i = 0; i < E.length; i++) {
            maxRef = Math.max(maxRef, Math.abs(merged.grads()[w + i]));
            maxDiff = Math.max(maxDiff, Math.abs(merged.grads()[w + i] - dE[i]));
        }
        assertThat(maxDiff).isLessThan(1e-4 * maxRef);
        int wte = merged.layout().get(Gpt2Layout.WTE).offset();
        for (int i = 0; i < 41 * 20; i++)
            assertThat((double) hooked.grads()[wte + i]).isCloseTo(merged.grads()[wte + i], org.assertj.core.data.Offset.offset(1e-5));
    }

    @Test
    void initFollowsHfScheme() {
        Gpt2Config c = new Gpt2Config(300, 64, 64, 4, 4, 256, "gelu_new", 1e-5f, 0.02f, 0, 0, 0, true, true, false);
        Gpt2Model m = new Gpt2Model(c, new Gemm(PAR), PAR, 1, 8, false);
        m.initRandom(1);
        assertThat(std(m, Gpt2Layout.WTE)).isCloseTo(0.02, org.assertj.core.data.Offset.offset(0.001));
        assertThat(std(m, Gpt2Layout.layer(2, "mlp.c_fc.weight"))).isCloseTo(0.02, org.assertj.core.data.Offset.offset(0.001));
        assertThat(std(m, Gpt2Layout.layer(2, "mlp.c_proj.weight"))).isCloseTo(0.02 / Math.sqrt(8), org.assertj.core.data.Offset.offset(0.0005));
        ParamLayout.View ln = m.layout().get(Gpt2Layout.layer(1, "ln_2.weight")), bias = m.layout().get(Gpt2Layout.layer(1, "attn.c_attn.bias"));
        assertThat(m.params()[ln.offset()]).isEqualTo(1f);
        assertThat(m.params()[bias.offset() + 5]).isEqualTo(0f);
        Gpt2Model m2 = new Gpt2Model(c, new Gemm(PAR), PAR, 1, 8, false);
        m2.initRandom(1);
        assertThat(m2.params()).isEqualTo(m.params());
    }

    static double std(Gpt2Model m, String name) {
        ParamLayout.View v = m.layout().get(name);
        double s = 0;
        for (int i = v.offset(); i < v.offset() + v.size(); i++) s += m.params()[i] * (double) m.params()[i];
        return Math.sqrt(s / v.size());
    }

    @Test
    void rejectsBadInput() {
        Gpt2Model m = model(cfg(0f, true), false);
        int[] tok = tokens(41);
        tok[4] = 41;
        assertThatThrownBy(() -> m.forward(tok, B, T, false, 0)).hasMessageContaining("token id 41");
        assertThatThrownBy(() -> m.forward(tokens(41), B, T + 1, false, 0)).hasMessageContaining("outside the allocated");
        assertThatThrownBy(m::backward).isInstanceOf(IllegalStateException.class);
    }

    static final class KernelRand {
        static float[] gaussian(int n, double s, long seed) {
            SplittableRandom r = new SplittableRandom(seed);
            float[] a = new float[n];
            for (int i = 0; i < n; i++) a[i] = (float) (r.nextGaussian() * s);
            return a;
        }
    }
}
