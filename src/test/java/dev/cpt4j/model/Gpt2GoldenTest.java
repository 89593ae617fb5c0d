package dev.cpt4j.model;

import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.cpu.Gemm;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Parity with transformers' GPT2LMHeadModel on the fixtures written by tools/golden/make_gpt2_golden.py: logits and
 * loss within 1e-4 relative, every parameter gradient within 1e-3 of that tensor's largest reference |value|, and
 * the losses of 10 torch.optim.AdamW steps (plus the loss after the last step) within 1e-4 relative.
 */
class Gpt2GoldenTest {
    static final Path DIR = Path.of("src/test/resources/golden/gpt2");

    static Stream<Arguments> cases() {
        List<Arguments> a = new ArrayList<>();
        for (String name : List.of("tied_gelu_new_c36", "untied_gelu_fast_c40", "tied_gelu_c24_invlayer"))
            for (int threads : new int[] {1, 2})
                for (boolean ckpt : new boolean[] {false, true}) a.add(Arguments.of(name, threads, ckpt));
        return a.stream();
    }

    @ParameterizedTest(name = "{0} threads={1} checkpointing={2}")
    @MethodSource("cases")
    void matchesTransformers(String name, int threads, boolean ckpt) throws Exception {
        Path d = DIR.resolve(name);
        Gpt2Config cfg = TestSafetensors.config(d.resolve("config.json"));
        Map<String, TestSafetensors.Tensor> weights = TestSafetensors.read(d.resolve("model.safetensors"));
        Map<String, TestSafetensors.Tensor> expected = TestSafetensors.read(d.resolve("expected.safetensors"));
        Map<String, TestSafetensors.Tensor> refGrads = TestSafetensors.read(d.resolve("grads.safetensors"));
        TestSafetensors.Tensor ids = expected.get("input_ids");
        int B = ids.shape()[0], T = ids.shape()[1], V = cfg.vocabSize();
        List<String> report = new ArrayList<>();
        List<String> failures = new ArrayList<>();

        try (Parallel par = new Parallel(threads)) {
            Gpt2Model model = new Gpt2Model(cfg, new Gemm(par), par, B, T, ckpt);
            load(model, weights);
            float[] params0 = model.params().clone();

            // logits
            float[] logits = new float[B * T * V];
            model.logits(ids.i32(), B, T, logits);
            float[] refLogits = expected.get("logits").f32();
            double maxRel = 0;
            for (int i = 0; i < logits.length; i++)
                maxRel = Math.max(maxRel, Math.abs(logits[i] - refLogits[i]) / Math.max(1.0, Math.abs(refLogits[i])));
            report.add(String.format("logits max rel diff %.3g", maxRel));
            if (!(maxRel <= 1e-4)) failures.add("logits rel diff " + maxRel);

            // loss (eval) and gradients (training mode, dropout 0)
            float refLoss = expected.get("loss").f32()[0];
            float evalLoss = model.evalLoss(ids.i32(), B, T);
            model.zeroGrad();
            float loss = model.forward(ids.i32(), B, T, true, 42L);
            model.backward();
            for (float l : new float[] {evalLoss, loss}) {
                double rel = Math.abs(l - refLoss) / Math.abs(refLoss);
                report.add(String.format("loss %.7f vs %.7f rel diff %.3g", l, refLoss, rel));
                if (!(rel <= 1e-4)) failures.add("loss " + l + " vs " + refLoss);
            }
            Set<String> seen = new HashSet<>();
            double worstGrad = 0;
            String worstName = "";
            for (var e : refGrads.entrySet()) {
                ParamLayout.View v = model.layout().get(e.getKey());
                seen.add(e.getKey());
                float[] ref = e.getValue().f32();
                assertThat(e.getValue().shape()).as(e.getKey()).containsExactly(v.shape());
                double maxRef = 0, maxDiff = 0;
                for (int i = 0; i < ref.length; i++) {
                    maxRef = Math.max(maxRef, Math.abs(ref[i]));
                    maxDiff = Math.max(maxDiff, Math.abs(model.grads()[v.offset() + i] - ref[i]));
                }
                double ratio = maxDiff / Math.max(maxRef, 1e-30);
                if (ratio > worstGrad) { worstGrad = ratio; worstName = e.getKey(); }
                if (!(ratio <= 1e-3)) failures.add("grad " + e.getKey() + " diff/max " + ratio);
            }
            report.add(String.format("grads worst diff/max|ref| %.3g (%s)", worstGrad, worstName));
            for (ParamLayout.View v : model.layout().views())
                if (!seen.contains(v.name())) failures.add("no reference gradient for " + v.name());

            // 10 AdamW steps from the same start
            System.arraycopy(params0, 0, model.params(), 0, params0.length);
            float[] refLosses = expected.get("adamw_losses").f32();
            TestAdamW opt = new TestAdamW(params0.length, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f);
            double worstStep = 0;
            for (int s = 0; s < refLosses.length; s++) {
                float l;
                if (s < refLosses.length - 1) {
                    model.zeroGrad();
                    l = model.forward(ids.i32(), B, T, true, s);
                    model.backward();
                    opt.step(model.params(), model.grads());
                } else l = model.evalLoss(ids.i32(), B, T);
                double rel = Math.abs(l - refLosses[s]) / Math.abs(refLosses[s]);
                worstStep = Math.max(worstStep, rel);
                if (!(rel <= 1e-4)) failures.add("AdamW step " + s + " loss " + l + " vs " + refLosses[s]);
            }
            report.add(String.format("AdamW losses max rel diff %.3g", worstStep));
        }
        System.out.println("[golden " + name + " threads=" + threads + " ckpt=" + ckpt + "] " + String.join("; ", report));
        assertThat(failures).as(name + ": " + String.join("; ", report)).isEmpty();
    }

    static void load(Gpt2Model model, Map<String, TestSafetensors.Tensor> weights) {
        ParamLayout layout = model.layout();
        for (var e : weights.entrySet()) {
            if (!layout.has(e.getKey())) {
                // a tied checkpoint may still carry lm_head.weight; it must then equal wte
                assertThat(e.getKey()).isEqualTo(Gpt2Layout.LM_HEAD);
                continue;
            }
            ParamLayout.View v = layout.get(e.getKey());
            assertThat(e.getValue().shape()).as(e.getKey()).containsExactly(v.shape());
            System.arraycopy(e.getValue().f32(), 0, model.params(), v.offset(), v.size());
        }
        for (ParamLayout.View v : layout.views()) assertThat(weights).as("checkpoint has " + v.name()).containsKey(v.name());
    }
}
