package dev.cpt4j.hf;

import dev.cpt4j.UserError;
import dev.cpt4j.model.Gpt2Config;
import dev.cpt4j.model.Gpt2Layout;
import dev.cpt4j.tensor.ParamLayout;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/** The merge arithmetic on hand-sized adapters (the peft-made adapter is checked end to end in generate.EvaluationTest). */
class AdapterMergeTest {
    static final Gpt2Config CFG = Gpt2Config.of(11, 8, 6, 2, 2);

    static HfCheckpoints.ModelDir base() {
        ParamLayout l = Gpt2Layout.of(CFG);
        float[] p = new float[l.size()];
        SplittableRandom r = new SplittableRandom(3);
        for (int i = 0; i < p.length; i++) p[i] = (float) r.nextGaussian();
        return new HfCheckpoints.ModelDir(CFG, l, p);
    }

    static PeftAdapters.Tensor rand(SplittableRandom r, int... shape) {
        int n = 1;
        for (int d : shape) n *= d;
        float[] d = new float[n];
        for (int i = 0; i < n; i++) d[i] = (float) r.nextGaussian();
        return new PeftAdapters.Tensor(shape, d);
    }

    @Test
    void conv1dDeltaIsTransposedProductTimesScale() {
        SplittableRandom r = new SplittableRandom(9);
        int rank = 3, C = 6;
        for (boolean rs : new boolean[] {false, true}) {
            Map<String, PeftAdapters.Tensor> t = new LinkedHashMap<>();
            PeftAdapters.Tensor a = rand(r, rank, C), b = rand(r, 3 * C, rank);
            t.put(PeftAdapters.loraKey("transformer.h.1.attn.c_attn", 'A'), a);
            t.put(PeftAdapters.loraKey("transformer.h.1.attn.c_attn", 'B'), b);
            var cfg = PeftAdapters.LoraConfig.of(rank, 12, 0, List.of("c_attn"), List.of(), rs, null);
            HfCheckpoints.ModelDir base = base();
            HfCheckpoints.ModelDir m = AdapterMerge.merge(base, new PeftAdapters.Adapter(cfg, t), "ad", "base");
            double s = rs ? 12 / Math.sqrt(rank) : 12.0 / rank;
            int off = m.layout().get(Gpt2Layout.layer(1, "attn.c_attn.weight")).offset();
            for (int i = 0; i < C; i++)
                for (int o = 0; o < 3 * C; o++) {
                    double d = 0;
                    for (int k = 0; k < rank; k++) d += b.data()[o * rank + k] * a.data()[k * C + i];
                    assertThat((double) m.params()[off + i * 3 * C + o]).isCloseTo(base.params()[off + i * 3 * C + o] + s * d, within(1e-4));
                }
            int other = m.layout().get(Gpt2Layout.layer(0, "attn.c_attn.weight")).offset();
            assertThat(m.params()[other]).isEqualTo(base.params()[other]);
            assertThat(m.config()).isEqualTo(CFG);
        }
    }

    @Test
    void onlyWteSavedOnATiedBaseUntiesWithTheOldHead() {
        SplittableRandom r = new SplittableRandom(4);
        Map<String, PeftAdapters.Tensor> t = new LinkedHashMap<>();
        t.put(PeftAdapters.loraKey("transformer.h.0.attn.c_attn", 'A'), rand(r, 2, 6));
        t.put(PeftAdapters.loraKey("transformer.h.0.attn.c_attn", 'B'), rand(r, 18, 2));
        PeftAdapters.Tensor wte = rand(r, 13, 6); // two rows more than the base: resized automatically
        t.put(PeftAdapters.savedKey(Gpt2Layout.WTE), wte);
        var cfg = PeftAdapters.LoraConfig.of(2, 4, 0, List.of("c_attn"), List.of("wte"), false, null);
        HfCheckpoints.ModelDir base = base();
        HfCheckpoints.ModelDir m = AdapterMerge.merge(base, new PeftAdapters.Adapter(cfg, t), "ad", "base");
        assertThat(m.config().vocabSize()).isEqualTo(13);
        assertThat(m.config().tieWordEmbeddings()).isFalse();
        int w = m.layout().get(Gpt2Layout.WTE).offset(), h = m.layout().get(Gpt2Layout.LM_HEAD).offset();
        for (int i = 0; i < 13 * 6; i++) assertThat(m.params()[w + i]).isEqualTo(wte.data()[i]);
        // peft's wrapper copies only wte; the tied head keeps reading the base embedding
        int bw = base.layout().get(Gpt2Layout.WTE).offset();
        for (int i = 0; i < 11 * 6; i++) assertThat(m.params()[h + i]).isEqualTo(base.params()[bw + i]);
    }

    @Test
    void adapterForAnotherBaseIsOneClearError() {
        SplittableRandom r = new SplittableRandom(5);
        Map<String, PeftAdapters.Tensor> t = new LinkedHashMap<>();
        t.put(PeftAdapters.loraKey("transformer.h.3.attn.c_attn", 'A'), rand(r, 2, 8));
        t.put(PeftAdapters.loraKey("transformer.h.3.attn.c_attn", 'B'), rand(r, 24, 2));
        var cfg = PeftAdapters.LoraConfig.of(2, 4, 0, List.of("c_attn"), List.of(), false, null);
        assertThatThrownBy(() -> AdapterMerge.merge(base(), new PeftAdapters.Adapter(cfg, t), "out/adapter", "models/base"))
                .isInstanceOf(UserError.class)
                .hasMessageContaining("adapter out/adapter was made for a base with")
                .hasMessageContaining("width (n_embd) 8").hasMessageContaining("at least 4 layers")
                .hasMessageContaining("this base (models/base) has n_embd 6, n_layer 2")
                .satisfies(e -> assertThat(e.getMessage().lines().count()).isEqualTo(1));
    }

    /** LoRA on the (nn.Linear) head of a tied base: W[o, i] += s·Σ_k B[o, k]·A[k, i] into an untied copy; rank_pattern/alpha_pattern. */
    @Test
    void linearHeadDeltaUntiesAndPatternsSetRankAndAlpha() {
        SplittableRandom r = new SplittableRandom(6);
        int V = 11, C = 6;
        Map<String, PeftAdapters.Tensor> t = new LinkedHashMap<>();
        PeftAdapters.Tensor a = rand(r, 3, C), b = rand(r, V, 3);
        t.put(PeftAdapters.loraKey("lm_head", 'A'), a);
        t.put(PeftAdapters.loraKey("lm_head", 'B'), b);
        t.put(PeftAdapters.loraKey("transformer.h.0.attn.c_attn", 'A'), rand(r, 2, C));
        t.put(PeftAdapters.loraKey("transformer.h.0.attn.c_attn", 'B'), rand(r, 3 * C, 2));
        var base0 = PeftAdapters.LoraConfig.of(2, 4, 0, List.of("c_attn", "lm_head"), List.of(), false, null);
        com.fasterxml.jackson.databind.node.ObjectNode extra = base0.extra();
        extra.putObject("rank_pattern").put("lm_head", 3);
        extra.putObject("alpha_pattern").put("lm_head", 9);
        var cfg = new PeftAdapters.LoraConfig("LORA", "CAUSAL_LM", 2, 4, 0, base0.targetModules(), false, List.of(), true,
                "none", null, "true", false, true, extra);
        HfCheckpoints.ModelDir base = base();
        HfCheckpoints.ModelDir m = AdapterMerge.merge(base, new PeftAdapters.Adapter(cfg, t), "ad", "base");
        assertThat(m.config().tieWordEmbeddings()).isFalse();
        int h = m.layout().get(Gpt2Layout.LM_HEAD).offset(), w = base.layout().get(Gpt2Layout.WTE).offset();
        int mw = m.layout().get(Gpt2Layout.WTE).offset();
        for (int o = 0; o < V; o++)
            for (int i = 0; i < C; i++) {
                double d = 0;
                for (int k = 0; k < 3; k++) d += b.data()[o * 3 + k] * a.data()[k * C + i];
                assertThat((double) m.params()[h + o * C + i]).isCloseTo(base.params()[w + o * C + i] + 3.0 * d, within(1e-4));
                assertThat(m.params()[mw + o * C + i]).isEqualTo(base.params()[w + o * C + i]);  // the input side keeps the base
            }
        // without the pattern, the config's r = 2 disagrees with the head's rank 3: one line
        var plain = PeftAdapters.LoraConfig.of(2, 4, 0, List.of("c_attn", "lm_head"), List.of(), false, null);
        assertThatThrownBy(() -> AdapterMerge.merge(base, new PeftAdapters.Adapter(plain, t), "ad", "base"))
                .isInstanceOf(UserError.class).hasMessageContaining("lm_head has rank 3").hasMessageContaining("r 2");
    }
}
