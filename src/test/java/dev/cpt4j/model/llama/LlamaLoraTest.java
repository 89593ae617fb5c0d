package dev.cpt4j.model.llama;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cpt4j.hf.HfConfigs;
import dev.cpt4j.io.DType;
import dev.cpt4j.model.Lora;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.cpu.Gemm;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * LoRA on the LLaMA family's seven projections: the hooked model computes what the model with merged weights
 * {@code W + s·B·A} computes (loss and every base gradient), its A/B gradients are the chain rule of the merged
 * weight's ({@code dB = s·dW·Aᵀ}, {@code dA = s·Bᵀ·dW}); gradient checkpointing changes nothing; a bf16-stored frozen
 * base equals an fp32 base rounded through bf16.
 */
class LlamaLoraTest {
    static final Path GOLDEN = Path.of("src/test/resources/golden/llama");
    static final int R = 3, B = 2, T = 7;
    static final float S = 1.75f;

    static LlamaConfig cfg(String name) {
        return (LlamaConfig) HfConfigs.read(GOLDEN.resolve(name).resolve("config.json"));
    }

    static int[] tokens(int V) {
        SplittableRandom r = new SplittableRandom(9);
        int[] t = new int[B * T];
        for (int i = 0; i < t.length; i++) t[i] = r.nextInt(V);
        return t;
    }

    static LlamaModel lora(LlamaConfig c, boolean ckpt, boolean bf16, Gemm gemm, Parallel par) {
        List<String> sites = LlamaFamily.INSTANCE.loraSites();
        ParamLayout layout = Lora.extend(LlamaLayout.of(c), c, sites, R);
        LlamaModel m = new LlamaModel(c, layout, gemm, par, B, T, ckpt, n -> bf16 && LlamaFamily.INSTANCE.bf16Storable(n));
        m.initRandom(5);                    // A and B random too (a non-zero adapter)
        m.setLinearHook(new Lora(m, sites, R, S, 0f, gemm, par));
        return m;
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama_untied_llama3_bias", "qwen2_tied_yarn", "qwen3_headdim_qknorm"})
    void equalsTheMergedModelAndChainsItsGradients(String name) {
        LlamaConfig c = cfg(name);
        try (Parallel par = new Parallel(2)) {
            Gemm gemm = new Gemm(par);
            LlamaModel m = lora(c, false, false, gemm, par);
            LlamaModel merged = new LlamaModel(c, gemm, par, B, T, false);
            ParamLayout base = merged.layout();
            for (ParamLayout.View v : base.views())
                System.arraycopy(m.params(), m.paramOffset(v.name()), merged.params(), v.offset(), v.size());
            List<String> adapted = Lora.viewNames(c, LlamaFamily.INSTANCE.loraSites());
            for (int i = 0; i < adapted.size(); i += 2) {
                String module = adapted.get(i).substring(0, adapted.get(i).length() - ".lora_A.weight".length());
                ParamLayout.View w = base.get(module + ".weight"), a = m.layout().get(adapted.get(i)), b = m.layout().get(adapted.get(i + 1));
                int out = w.shape()[0], in = w.shape()[1];
                for (int o = 0; o < out; o++)
                    for (int k = 0; k < in; k++) {
                        double d = 0;
                        for (int j = 0; j < R; j++) d += m.params()[b.offset() + o * R + j] * m.params()[a.offset() + j * in + k];
                        merged.params()[w.offset() + o * in + k] += (float) (S * d);
                    }
            }
            int[] tok = tokens(c.vocabSize());
            m.zeroGrad();
            merged.zeroGrad();
            float l1 = m.forward(tok, B, T, true, 0), l2 = merged.forward(tok, B, T, true, 0);
            m.backward();
            merged.backward();
            assertThat(l1).isCloseTo(l2, org.assertj.core.data.Offset.offset(2e-5f * Math.max(1, Math.abs(l2))));
            for (ParamLayout.View v : base.views())
                assertClose(m.grads(), m.gradOffset(v.name()), merged.grads(), merged.gradOffset(v.name()), v.size(), v.name());
            for (int i = 0; i < adapted.size(); i += 2) {
                String module = adapted.get(i).substring(0, adapted.get(i).length() - ".lora_A.weight".length());
                ParamLayout.View w = base.get(module + ".weight"), a = m.layout().get(adapted.get(i)), b = m.layout().get(adapted.get(i + 1));
                int out = w.shape()[0], in = w.shape()[1];
                float[] g = merged.grads(), p = m.params();
                int gw = merged.gradOffset(w.name());
                float[] dA = new float[R * in], dB = new float[out * R];
                for (int o = 0; o < out; o++)
                    for (int k = 0; k < in; k++) {
                        float dw = g[gw + o * in + k];
                        for (int j = 0; j < R; j++) {
                            dB[o * R + j] += S * dw * p[a.offset() + j * in + k];
                            dA[j * in + k] += S * dw * p[b.offset() + o * R + j];
                        }
                    }
                assertClose(m.grads(), m.gradOffset(a.name()), dA, 0, dA.length, a.name());
                assertClose(m.grads(), m.gradOffset(b.name()), dB, 0, dB.length, b.name());
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama_untied_llama3_bias", "qwen3_headdim_qknorm"})
    void checkpointingAndBf16StorageChangeNothing(String name) {
        LlamaConfig c = cfg(name);
        try (Parallel par = new Parallel(2)) {
            Gemm gemm = new Gemm(par);
            int[] tok = tokens(c.vocabSize());
            // fp32 reference whose frozen projection weights are rounded through bf16
            LlamaModel ref = lora(c, false, false, gemm, par);
            for (ParamLayout.View v : ref.layout().views())
                if (LlamaFamily.INSTANCE.bf16Storable(v.name()))
                    for (int i = v.offset(); i < v.offset() + v.size(); i++)
                        ref.params()[i] = DType.bf16ToFloat(DType.floatToBf16(ref.params()[i]));
            ref.setFrozen(LlamaFamily.INSTANCE::bf16Storable);
            for (boolean ckpt : new boolean[] {false, true}) {
                LlamaModel bf = lora(c, ckpt, true, gemm, par);
                bf.setFrozen(LlamaFamily.INSTANCE::bf16Storable);
                assertThat(bf.storageLayout().size()).isLessThan(bf.layout().size());
                ref.zeroGrad();
                bf.zeroGrad();
                float l1 = ref.forward(tok, B, T, true, 0), l2 = bf.forward(tok, B, T, true, 0);
                ref.backward();
                bf.backward();
                assertThat(l2).as("checkpointing %s", ckpt).isEqualTo(l1);
                for (ParamLayout.View v : ref.layout().views()) {
                    if (LlamaFamily.INSTANCE.bf16Storable(v.name())) {
                        assertThat(bf.gradOffset(v.name())).isEqualTo(-1);
                        continue;
                    }
                    assertClose(bf.grads(), bf.gradOffset(v.name()), ref.grads(), ref.gradOffset(v.name()), v.size(),
                            v.name() + " checkpointing " + ckpt);
                }
            }
        }
    }

    @org.junit.jupiter.api.Test
    void theActivationEstimateIsWhatTheModelAllocates() {
        try (Parallel par = new Parallel(1)) {
            for (String name : List.of("llama_untied_llama3_bias", "qwen3_headdim_qknorm", "mistral_onekv_bf16"))
                for (boolean ckpt : new boolean[] {false, true})
                    for (int[] bt : new int[][] {{1, 1}, {3, 7}, {2, 40}}) {
                        LlamaConfig c = cfg(name);
                        LlamaModel m = new LlamaModel(c, new Gemm(par), par, bt[0], bt[1], ckpt);
                        assertThat(LlamaFamily.INSTANCE.activationBytes(c, bt[0], bt[1], ckpt))
                                .as("%s B %d, T %d, checkpointing %s", name, bt[0], bt[1], ckpt).isEqualTo(m.allocatedActivationBytes());
                    }
        }
    }

    static void assertClose(float[] a, int ao, float[] b, int bo, int n, String what) {
        double max = 0, diff = 0;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, Math.abs(b[bo + i]));
            diff = Math.max(diff, Math.abs(a[ao + i] - b[bo + i]));
        }
        assertThat(diff).as("%s: largest difference %.3g of largest |ref| %.3g", what, diff, max).isLessThanOrEqualTo(2e-4 * Math.max(max, 1e-3));
    }
}
