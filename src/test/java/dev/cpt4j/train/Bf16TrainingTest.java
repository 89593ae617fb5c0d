package dev.cpt4j.train;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cpt4j.hf.HfConfigs;
import dev.cpt4j.model.ModelConfig;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.cpu.Backend;
import dev.cpt4j.tensor.cpu.Bf16;
import dev.cpt4j.tensor.cpu.Gemm;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Training in bf16 mode ({@link Bf16}): on tiny GPT-2 and LLaMA models (2 layers, 48 wide, batch 2 × 32, lr 3e-3), the
 * loss after 6 AdamW steps stays within 0.5 % of the fp32 run's (measured: 0.013 % and 0.011 %; the bound a user
 * is promised is 2 %), for the oneDNN products and for the emulated ones, and the bf16 runs do differ from fp32 (the
 * mode is in effect).
 */
class Bf16TrainingTest {
    private static final int STEPS = 6, BATCH = 2, BLOCK = 32;

    @Test
    void gpt2LossAfterSixStepsStaysWithinTwoPercentOfFp32(@TempDir Path dir) throws Exception {
        check(config(dir, "{\"model_type\":\"gpt2\",\"vocab_size\":96,\"n_positions\":32,\"n_embd\":48,\"n_layer\":2,\"n_head\":4}"));
    }

    @Test
    void llamaLossAfterSixStepsStaysWithinTwoPercentOfFp32(@TempDir Path dir) throws Exception {
        check(config(dir, "{\"model_type\":\"llama\",\"vocab_size\":96,\"max_position_embeddings\":32,\"hidden_size\":48,"
                + "\"intermediate_size\":96,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2}"));
    }

    private static ModelConfig config(Path dir, String json) throws Exception {
        Path f = dir.resolve("config.json");
        Files.writeString(f, json);
        return HfConfigs.read(f);
    }

    private static void check(ModelConfig cfg) {
        try (Parallel par = new Parallel(2)) {
            double[] fp32 = losses(cfg, new Gemm(par, Backend.AUTO, Bf16.Mode.OFF), par);
            // oneDNN's bf16 matmul needs AVX-512 (Bf16ModeTest.nativeRuns checks that only such a CPU lacks it).
            boolean nativeRuns = Bf16.nativeUnavailableReason() == null;
            double[] emu = losses(cfg, new Gemm(par, Backend.JAVA, Bf16.Mode.EMULATED), par);
            double[] nat = nativeRuns ? losses(cfg, new Gemm(par, Backend.AUTO, Bf16.Mode.NATIVE), par) : emu;
            assertThat(fp32[STEPS - 1]).as("the model learns: %s", java.util.Arrays.toString(fp32)).isLessThan(fp32[0] - 0.3);
            for (double[] bf : new double[][] {nat, emu}) {
                assertThat(bf[STEPS - 1]).isCloseTo(fp32[STEPS - 1], org.assertj.core.data.Percentage.withPercentage(0.5));
                assertThat(bf[0]).as("bf16 rounding changes the first loss").isNotEqualTo(fp32[0]);
            }
            // oneDNN and the emulation compute the same rounded products (in another summation order).
            assertThat(nat[STEPS - 1]).isCloseTo(emu[STEPS - 1], org.assertj.core.data.Percentage.withPercentage(0.1));
        }
    }

    /** The loss of each of {@link #STEPS} AdamW steps on a fixed, learnable sequence (ids cycling with stride 7). */
    private static double[] losses(ModelConfig cfg, Gemm gemm, Parallel par) {
        FamilyTrainable.Spec spec = new FamilyTrainable.Spec(0, BATCH, BLOCK, false, 0, 0, 0, List.of(), List.of(), false, false, 1234);
        FamilyTrainable model = FamilyTrainable.fromScratch(cfg, spec, gemm, par, m -> {});
        float[] p = model.params(), g = model.grads();
        AdamW opt = AdamW.forModel(model, 3e-3, 3e-3, 0.01, 0.9, 0.999, 1e-8);
        int[] ids = new int[BATCH * BLOCK];
        for (int i = 0; i < ids.length; i++) ids[i] = (i * 7 + i / BLOCK) % cfg.vocabSize();
        double[] out = new double[STEPS];
        for (int s = 0; s < STEPS; s++) {
            opt.zeroGrads(g);
            out[s] = model.forwardBackward(ids, BATCH, BLOCK, 1f, s);
            GradClip.clip(g, opt.segments(), 1.0, par);
            opt.step(p, g, 1.0, par);
        }
        return out;
    }
}
