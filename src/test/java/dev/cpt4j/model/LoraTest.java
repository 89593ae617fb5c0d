package dev.cpt4j.model;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.cpu.Gemm;
import java.util.EnumSet;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * LoRA on all four Conv1D sites with dropout: gradients of A, B and of upstream tensors (through the LoRA input
 * gradient) against central differences of the loss under the same dropout seed; gradient checkpointing gives the
 * same gradients bit for bit; peft's init makes the adapter a no-op. (Parity with peft itself: LoraGoldenTest.)
 */
class LoraTest {
    static final int B = 2, T = 7, R = 3;

    record Setup(Gpt2Model model, Lora lora) {}

    static Setup setup(Parallel par, boolean checkpointing, float dropout) {
        Gpt2Config cfg = Gpt2Config.of(23, 8, 12, 2, 3);
        EnumSet<LinearHook.Site> sites = EnumSet.allOf(LinearHook.Site.class);
        ParamLayout layout = Lora.extend(Gpt2Layout.of(cfg), cfg, sites, R);
        Gemm gemm = new Gemm(par);
        Gpt2Model m = new Gpt2Model(cfg, layout, gemm, par, B, T, checkpointing);
        m.initRandom(1);
        Lora lora = new Lora(m, sites, R, 2.5f, dropout, gemm, par);
        lora.init(2);
        SplittableRandom r = new SplittableRandom(3);   // non-zero B so every path carries gradient
        for (String n : Lora.viewNames(cfg, sites)) {
            ParamLayout.View v = layout.get(n);
            if (n.endsWith("lora_B.weight"))
                for (int i = 0; i < v.size(); i++) m.params()[v.offset() + i] = (float) (r.nextGaussian() * 0.2);
        }
        m.setLinearHook(lora);
        return new Setup(m, lora);
    }

    static int[] tokens() {
        int[] t = new int[B * T];
        SplittableRandom r = new SplittableRandom(9);
        for (int i = 0; i < t.length; i++) t[i] = r.nextInt(23);
        return t;
    }

    @Test
    void gradientsMatchFiniteDifferencesWithDropout() {
        try (Parallel par = new Parallel(1)) {
            Setup s = setup(par, false, 0.3f);
            Gpt2Model m = s.model();
            int[] tok = tokens();
            long seed = 77;
            m.zeroGrad();
            m.forward(tok, B, T, true, seed);
            m.backward();
            float[] p = m.params(), g = m.grads().clone();
            String[] names = {"transformer.h.0.attn.c_attn.lora_A.weight", "transformer.h.1.attn.c_proj.lora_B.weight",
                "transformer.h.0.mlp.c_fc.lora_A.weight", "transformer.h.1.mlp.c_proj.lora_A.weight",
                "transformer.h.0.mlp.c_proj.lora_B.weight", "transformer.h.0.ln_1.weight", "transformer.wte.weight"};
            double worst = 0, scale = 0;
            for (String n : names) {
                ParamLayout.View v = m.layout().get(n);
                for (int k = 0; k < 4; k++) {
                    int i = v.offset() + (k * 7919) % v.size();
                    float old = p[i];
                    float h = 2e-3f; // the loss is strongly curved along some c_attn directions: larger steps overshoot
                    p[i] = old + h;
                    double up = m.forward(tok, B, T, true, seed);
                    p[i] = old - h;
                    double down = m.forward(tok, B, T, true, seed);
                    p[i] = old;
                    double num = (up - down) / (2 * h);
                    worst = Math.max(worst, Math.abs(num - g[i]));
                    scale = Math.max(scale, Math.abs(g[i]));
                }
            }
            assertThat(scale).isGreaterThan(1e-3);
            assertThat(worst).as("largest |analytic − numeric| (largest |grad| %s)", scale).isLessThan(1e-3);
        }
    }

    @Test
    void checkpointingGivesTheSameGradients() {
        try (Parallel par = new Parallel(2)) {
            float[][] grads = new float[2][];
            for (int c = 0; c < 2; c++) {
                Setup s = setup(par, c == 1, 0.2f);
                s.model().zeroGrad();
                s.model().forward(tokens(), B, T, true, 5);
                s.model().backward();
                grads[c] = s.model().grads().clone();
            }
            assertThat(grads[1]).isEqualTo(grads[0]);
        }
    }

    @Test
    void peftInitIsANoOpAndABoundIsOneOverSqrtIn() {
        try (Parallel par = new Parallel(1)) {
            Setup s = setup(par, false, 0f);
            Gpt2Model m = s.model();
            s.lora().init(4);                                 // B back to zero
            float withLora = m.evalLoss(tokens(), B, T);
            m.setLinearHook(null);
            assertThat(m.evalLoss(tokens(), B, T)).isEqualTo(withLora);
            ParamLayout.View a = m.layout().get("transformer.h.1.mlp.c_proj.lora_A.weight"); // in = n_inner = 48
            double bound = 1 / Math.sqrt(48), max = 0;
            for (int i = 0; i < a.size(); i++) max = Math.max(max, Math.abs(m.params()[a.offset() + i]));
            assertThat(max).isLessThanOrEqualTo(bound).isGreaterThan(0.8 * bound);
        }
    }
}
