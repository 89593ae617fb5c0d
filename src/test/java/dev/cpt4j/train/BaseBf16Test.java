package dev.cpt4j.train;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cpt4j.io.DType;
import dev.cpt4j.model.Gpt2Config;
import dev.cpt4j.model.Gpt2Layout;
import dev.cpt4j.model.Gpt2Model;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.cpu.Backend;
import dev.cpt4j.tensor.cpu.Gemm;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * {@code --base_dtype bf16}: the frozen Conv1D weights stored in bf16 (widened inside the GEMM) train exactly as an
 * fp32 model whose frozen weights were rounded through bf16 — same losses, gradients and updated weights, bit for
 * bit — on the small-M GEMM path and the blocked one, with and without gradient checkpointing.
 */
class BaseBf16Test {
    private static final Gpt2Config BASE = Gpt2Config.of(37, 32, 16, 2, 2).withDropout(0.1f, 0.1f, 0.1f);

    private static FamilyTrainable build(boolean storeBf16, int batch, int T, boolean checkpointing, Gemm gemm, Parallel par) {
        Gpt2Model init = new Gpt2Model(BASE, gemm, par, 1, 1, false);
        init.initRandom(5);
        FamilyTrainable.Spec spec = new FamilyTrainable.Spec(0, batch, T, checkpointing, 4, 2.0, 0.1,
                List.of("attn.c_attn", "mlp.c_fc"), List.of("transformer.wte", "lm_head"), false, storeBf16, 11);
        FamilyTrainable t = FamilyTrainable.build(BASE, init.layout(), init.params(), spec, gemm, par, s -> {});
        if (!storeBf16) {   // the reference: every frozen tensor rounded through bf16 in fp32 storage
            float[] p = t.params();
            for (ParamLayout.View v : t.layout().views())
                if (!t.isTrainable(v.name()))
                    for (int i = v.offset(); i < v.offset() + v.size(); i++) p[i] = DType.bf16ToFloat(DType.floatToBf16(p[i]));
        }
        return t;
    }

    /** View {@code name}'s gradient, dense (from the row-sparse gradient when it is kept so). */
    static float[] grad(TrainableModel t, String name) {
        float[] out = new float[t.layout().get(name).size()];
        if (t.sparseGrad(name) != null) t.sparseGrad(name).addTo(out, 0);
        else System.arraycopy(t.grads(), t.gradOffset(name), out, 0, out.length);
        return out;
    }

    @Test
    void storingTheFrozenBaseInBf16EqualsRoundingItThroughBf16() {
        try (Parallel par = new Parallel(2)) {
            // The Java backend: there the bf16 product is the fp32 kernel on exactly widened values, bit for bit. With
            // the native backend fp32 products run in OpenBLAS while bf16 ones stay on the Java kernels (widening),
            // so the two differ by rounding.
            Gemm gemm = new Gemm(par, Backend.JAVA);
            // B·T = 6 rows: the GEMM's small-M path; 3 × 20 = 60 rows: the packed path
            for (int[] bt : new int[][] {{2, 3}, {3, 20}})
                for (boolean ckpt : new boolean[] {false, true}) {
                    int batch = bt[0], T = bt[1];
                    FamilyTrainable ref = build(false, batch, T, ckpt, gemm, par), bf = build(true, batch, T, ckpt, gemm, par);
                    Gpt2Model m = (Gpt2Model) bf.model();
                    String fc = Gpt2Layout.layer(1, "mlp.c_fc.weight");
                    assertThat(m.storedBf16(fc)).isTrue();
                    assertThat(m.paramOffset(fc)).isEqualTo(-1);
                    assertThat(bf.layout().has(fc)).isFalse();
                    assertThat(m.storedBf16(Gpt2Layout.WTE)).isFalse();
                    int conv = 0;
                    for (ParamLayout.View v : m.layout().views()) if (Gpt2Model.isConv1dWeight(v.name())) conv += v.size();
                    assertThat(bf.params().length).isEqualTo(ref.params().length - conv);

                    AdamW oRef = AdamW.forLanguageModel(ref.layout(), v -> ref.gradOffset(v.name()), v -> ref.sparseGrad(v.name()), 1e-2, 1e-3, 0.1,
                            0.9, 0.999, 1e-8, ref::isTrainable, ref::isEmbedding);
                    AdamW oBf = AdamW.forLanguageModel(bf.layout(), v -> bf.gradOffset(v.name()), v -> bf.sparseGrad(v.name()), 1e-2, 1e-3, 0.1,
                            0.9, 0.999, 1e-8, bf::isTrainable, bf::isEmbedding);
                    SplittableRandom r = new SplittableRandom(3);
                    int[] tokens = new int[batch * T];
                    for (int step = 0; step < 3; step++) {
                        for (int i = 0; i < tokens.length; i++) tokens[i] = r.nextInt(BASE.vocabSize());
                        ref.model().zeroGrad();
                        m.zeroGrad();
                        double lRef = ref.forwardBackward(tokens, batch, T, 1f, 100 + step);
                        double lBf = bf.forwardBackward(tokens, batch, T, 1f, 100 + step);
                        assertThat(lBf).as("loss, step %d, %d×%d, checkpointing %s", step, batch, T, ckpt).isEqualTo(lRef);
                        for (ParamLayout.View v : ref.layout().views()) {
                            if (!ref.isTrainable(v.name())) continue;
                            float[] a = grad(ref, v.name()), b = grad(bf, v.name());
                            for (int i = 0; i < v.size(); i++)
                                assertThat(b[i]).as("grad %s[%d]", v.name(), i).isEqualTo(a[i]);
                        }
                        oRef.step(ref.params(), ref.grads(), 1.0, par);
                        oBf.step(bf.params(), bf.grads(), 1.0, par);
                    }
                    for (ParamLayout.View v : ref.layout().views()) {
                        if (!ref.isTrainable(v.name())) continue;
                        int a = v.offset(), b = bf.layout().get(v.name()).offset();
                        for (int i = 0; i < v.size(); i++)
                            assertThat(bf.params()[b + i]).as("%s[%d]", v.name(), i).isEqualTo(ref.params()[a + i]);
                    }
                    assertThat(bf.loss(tokens, batch, T)).isEqualTo(ref.loss(tokens, batch, T));
                }
        }
    }
}
