package dev.cpt4j.model;

import dev.cpt4j.hf.HfCheckpoints;
import dev.cpt4j.io.Safetensors;
import dev.cpt4j.model.llama.LlamaConfig;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.cpu.Gemm;
import dev.cpt4j.tensor.cpu.Rope;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Parity of the LLaMA family (llama, qwen2, qwen3, mistral) with transformers 5 on the fixtures written by
 * tools/golden/make_llama_golden.py, loaded through the real checkpoint loader (config.json in both the hub and the
 * transformers-5 style, sharded bf16 safetensors): logits and loss within 1e-5 relative (of max(1, |ref|)), every
 * parameter gradient within 1e-3 of that tensor's largest reference |value|, the losses of 10 torch.optim.AdamW steps
 * (and the loss after the last) within 1e-4 relative, and 32 greedy tokens through the KV-cache decoder identical;
 * with and without gradient checkpointing, on 1 and 2 threads. For the cases with rope scaling the fixture's loss
 * under default rope differs by more than 1e-3 relative, and the engine given default rope reproduces that loss: a
 * wrong scaling cannot pass.
 */
class LlamaGoldenTest {
    static final Path DIR = Path.of("src/test/resources/golden/llama");
    static final List<String> CASES = List.of("llama_untied_llama3_bias", "qwen2_tied_yarn", "qwen3_headdim_qknorm",
            "mistral_onekv_bf16", "llama_linear_rope", "llama_dynamic_rope", "mistral_sliding_window");

    static Stream<Arguments> cases() {
        List<Arguments> a = new ArrayList<>();
        for (String name : CASES)
            for (int threads : new int[] {1, 2})
                for (boolean ckpt : new boolean[] {false, true}) a.add(Arguments.of(name, threads, ckpt));
        return a.stream();
    }

    @ParameterizedTest(name = "{0} threads={1} checkpointing={2}")
    @MethodSource("cases")
    void matchesTransformers(String name, int threads, boolean ckpt) {
        Path d = DIR.resolve(name);
        HfCheckpoints.ModelDir m = HfCheckpoints.loadModelDir(d);
        assertThat(m.config()).isInstanceOf(LlamaConfig.class);
        LlamaConfig cfg = (LlamaConfig) m.config();
        List<String> report = new ArrayList<>(), failures = new ArrayList<>();
        try (Safetensors expected = Safetensors.open(d.resolve("expected.safetensors"));
             Safetensors refGrads = Safetensors.open(d.resolve("grads.safetensors"));
             Parallel par = new Parallel(threads)) {
            int[] ids = ints(expected, "input_ids");
            long[] shape = expected.info("input_ids").shape();
            int B = (int) shape[0], T = (int) shape[1], V = cfg.vocabSize();
            CausalLm model = cfg.family().newModel(cfg, new Gemm(par), par, B, T, ckpt);
            assertThat(model.layout().size()).isEqualTo(m.layout().size());
            System.arraycopy(m.params(), 0, model.params(), 0, m.params().length);
            float[] params0 = model.params().clone();

            float[] logits = new float[B * T * V];
            model.logits(ids, B, T, logits);
            float[] refLogits = expected.readFloats("logits");
            double maxRel = 0;
            for (int i = 0; i < logits.length; i++)
                maxRel = Math.max(maxRel, Math.abs(logits[i] - refLogits[i]) / Math.max(1.0, Math.abs(refLogits[i])));
            report.add(String.format("logits max rel diff %.3g", maxRel));
            if (!(maxRel <= 1e-5)) failures.add("logits rel diff " + maxRel);

            float refLoss = expected.readFloats("loss")[0];
            float evalLoss = model.evalLoss(ids, B, T);
            model.zeroGrad();
            float loss = model.forward(ids, B, T, true, 42L);
            model.backward();
            for (float l : new float[] {evalLoss, loss}) {
                double rel = Math.abs(l - refLoss) / Math.abs(refLoss);
                report.add(String.format("loss %.7f vs %.7f rel diff %.3g", l, refLoss, rel));
                if (!(rel <= 1e-5)) failures.add("loss " + l + " vs " + refLoss);
            }
            Set<String> seen = new HashSet<>();
            double worstGrad = 0;
            String worstName = "";
            for (String g : refGrads.names()) {
                ParamLayout.View v = model.layout().get(g);
                seen.add(g);
                float[] ref = refGrads.readFloats(g);
                assertThat(ref.length).as(g).isEqualTo(v.size());
                int go = model.gradOffset(g);
                double maxRef = 0, maxDiff = 0;
                for (int i = 0; i < ref.length; i++) {
                    maxRef = Math.max(maxRef, Math.abs(ref[i]));
                    maxDiff = Math.max(maxDiff, Math.abs(model.grads()[go + i] - ref[i]));
                }
                double ratio = maxDiff / Math.max(maxRef, 1e-30);
                if (ratio > worstGrad) { worstGrad = ratio; worstName = g; }
                if (!(ratio <= 1e-3)) failures.add("grad " + g + " diff/max " + ratio);
            }
            report.add(String.format("grads worst diff/max|ref| %.3g (%s)", worstGrad, worstName));
            for (ParamLayout.View v : model.layout().views())
                if (!seen.contains(v.name())) failures.add("no reference gradient for " + v.name());

            // greedy decoding through the KV cache, on the initial weights
            int[] prompt = ints(expected, "prompt_ids"), refGreedy = ints(expected, "greedy_ids");
            StepModel dec = cfg.family().decoder(cfg, params0.clone(), model.layout(), 1, prompt.length + refGreedy.length, par);
            float[] lg = dec.prefill(prompt, 1);
            int[] greedy = new int[refGreedy.length];
            for (int i = 0; i < greedy.length; i++) {
                int best = 0;
                for (int j = 1; j < dec.vocabSize(); j++) if (lg[j] > lg[best]) best = j;
                greedy[i] = best;
                if (i + 1 < greedy.length) lg = dec.next(new int[] {best}, new boolean[] {true});
            }
            if (!java.util.Arrays.equals(greedy, refGreedy))
                failures.add("greedy " + java.util.Arrays.toString(greedy) + " vs " + java.util.Arrays.toString(refGreedy));

            // a wrong rotary scaling is caught: the fixture is sensitive to it, and default rope gives its other loss
            float ropeDefault = expected.readFloats("loss_rope_default")[0];
            if (!cfg.ropeScaling().type().equals("default")) {
                double gap = Math.abs(ropeDefault - refLoss) / refLoss;
                report.add(String.format("default-rope gap %.3g", gap));
                if (!(gap > 1e-3)) failures.add("fixture not sensitive to rope scaling: gap " + gap);
                LlamaConfig plain = new LlamaConfig(cfg.modelType(), cfg.vocabSize(), cfg.hiddenSize(), cfg.intermediateSize(),
                        cfg.numLayers(), cfg.numHeads(), cfg.numKvHeads(), cfg.headDim(), cfg.maxPositionEmbeddings(),
                        cfg.rmsNormEps(), cfg.ropeTheta(), Rope.Scaling.DEFAULT, cfg.qkvBias(), cfg.oBias(), cfg.mlpBias(),
                        cfg.qkNorm(), cfg.tieWordEmbeddings(), cfg.slidingWindow(), cfg.initializerRange());
                CausalLm other = plain.family().newModel(plain, new Gemm(par), par, B, T, false);
                System.arraycopy(params0, 0, other.params(), 0, params0.length);
                float l = other.evalLoss(ids, B, T);
                if (!(Math.abs(l - ropeDefault) / ropeDefault <= 1e-5)) failures.add("default-rope loss " + l + " vs " + ropeDefault);
            }

            // 10 AdamW steps from the same start
            System.arraycopy(params0, 0, model.params(), 0, params0.length);
            float[] refLosses = expected.readFloats("adamw_losses");
            TestAdamW opt = new TestAdamW(params0.length, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f);
            double worstStep = 0;
            for (int s = 0; s < refLosses.length; s++) {
                float l;
                if (s < refLosses.length - 1) {
                    model.zeroGrad();
                    l = model.forward(ids, B, T, true, s);
                    model.backward();
                    opt.step(model.params(), model.grads());
                } else l = model.evalLoss(ids, B, T);
                double rel = Math.abs(l - refLosses[s]) / Math.abs(refLosses[s]);
                worstStep = Math.max(worstStep, rel);
                if (!(rel <= 1e-4)) failures.add("AdamW step " + s + " loss " + l + " vs " + refLosses[s]);
            }
            report.add(String.format("AdamW losses max rel diff %.3g", worstStep));
        }
        System.out.println("[golden " + name + " threads=" + threads + " ckpt=" + ckpt + "] " + String.join("; ", report));
        assertThat(failures).as(name + ": " + String.join("; ", report)).isEmpty();
    }

    /**
     * The decoder over tensors stored one by one with the matrices kept in bf16 (the path for models past one flat
     * buffer): on the bf16 Mistral checkpoint it is exact, so the greedy tokens are transformers' and the prefill loss
     * of each block is the engine's eval loss.
     */
    @org.junit.jupiter.api.Test
    void bf16WeightStoreDecoderMatches() {
        Path d = DIR.resolve("mistral_onekv_bf16");
        HfCheckpoints.Stored st = HfCheckpoints.loadStore(d, n -> n.endsWith("_proj.weight") || n.endsWith("embed_tokens.weight"));
        assertThat(st.weights().get("model.layers.0.self_attn.q_proj.weight").isBf16()).isTrue();
        assertThat(st.weights().get("model.norm.weight").isBf16()).isFalse();
        LlamaConfig cfg = (LlamaConfig) st.config();
        try (Safetensors expected = Safetensors.open(d.resolve("expected.safetensors")); Parallel par = new Parallel(2)) {
            int[] prompt = ints(expected, "prompt_ids"), refGreedy = ints(expected, "greedy_ids");
            int[] ids = ints(expected, "input_ids");
            int T = (int) expected.info("input_ids").shape()[1];
            StepModel dec = cfg.family().decoder(cfg, st.weights(), 2, Math.max(T, prompt.length + refGreedy.length), par);
            float[] lg = dec.prefill(prompt, 1);
            int[] greedy = new int[refGreedy.length];
            for (int i = 0; i < greedy.length; i++) {
                int best = 0;
                for (int j = 1; j < dec.vocabSize(); j++) if (lg[j] > lg[best]) best = j;
                greedy[i] = best;
                if (i + 1 < greedy.length) lg = dec.next(new int[] {best}, new boolean[] {true});
            }
            assertThat(greedy).containsExactly(refGreedy);
            HfCheckpoints.ModelDir m = HfCheckpoints.loadModelDir(d);
            CausalLm model = cfg.family().newModel(cfg, new Gemm(par), par, 1, T, false);
            System.arraycopy(m.params(), 0, model.params(), 0, m.params().length);
            int[] row = java.util.Arrays.copyOf(ids, T);
            double want = model.evalLoss(row, 1, T);
            assertThat(dec.sequenceLoss(row)).isCloseTo(want, org.assertj.core.api.Assertions.within(1e-5 * want));
            // the generic step-by-step loss of the interface agrees too
            StepModel plain = cfg.family().decoder(cfg, m.params(), m.layout(), 1, T, par);
            double stepwise = new StepModel() {
                public int vocabSize() { return plain.vocabSize(); }
                public int contextLength() { return plain.contextLength(); }
                public int maxSequences() { return 1; }
                public int maxLength() { return plain.maxLength(); }
                public float[] prefill(int[] p, int n) { return plain.prefill(p, n); }
                public float[] next(int[] t, boolean[] a) { return plain.next(t, a); }
            }.sequenceLoss(row);
            assertThat(stepwise).isCloseTo(want, org.assertj.core.api.Assertions.within(1e-5 * want));
        }
    }

    static int[] ints(Safetensors st, String name) {
        MemorySegment seg = st.raw(name);
        int n = (int) (seg.byteSize() / 4);
        int[] out = new int[n];
        for (int i = 0; i < n; i++) out[i] = seg.getAtIndex(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i);
        return out;
    }
}
