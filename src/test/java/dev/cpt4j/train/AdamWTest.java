package dev.cpt4j.train;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.cpt4j.model.Gpt2Config;
import dev.cpt4j.model.Gpt2Layout;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class AdamWTest {

    /** Six steps of torch.optim.AdamW with three param groups; fixture from tools/golden/make_train_golden.py. */
    @Test
    void matchesTorchAdamW() {
        JsonNode gold = Golden.load("adamw.json");
        ParamLayout layout = new ParamLayout();
        List<String> order = new ArrayList<>();
        gold.get("order").forEach(n -> order.add(n.asText()));
        for (String name : order) {
            JsonNode shape = gold.get("shapes").get(name);
            int[] dims = new int[shape.size()];
            for (int i = 0; i < dims.length; i++) dims[i] = shape.get(i).asInt();
            layout.add(name, dims);
        }
        List<AdamW.Group> groups = new ArrayList<>();
        for (JsonNode g : gold.get("groups"))
            groups.add(new AdamW.Group(g.get("names").get(0).asText(), g.get("lr").asDouble(), g.get("weight_decay").asDouble()));
        AdamW opt = new AdamW(layout, groups, view -> order.indexOf(view.name()),
                gold.get("betas").get(0).asDouble(), gold.get("betas").get(1).asDouble(), gold.get("eps").asDouble());
        float[] params = new float[layout.size()], grads = new float[layout.size()];
        for (String name : order) put(params, layout.get(name), Golden.floats(gold.get("init").get(name)));

        double worst = 0;
        for (JsonNode step : gold.get("steps")) {
            for (String name : order) put(grads, layout.get(name), Golden.floats(step.get("grads").get(name)));
            opt.step(params, grads, step.get("lr_factor").asDouble(), null);
            for (String name : order) {
                ParamLayout.View view = layout.get(name);
                int so = opt.stateOffset(view);
                worst = Math.max(worst, maxRel(params, view.offset(), Golden.floats(step.get("params").get(name))));
                worst = Math.max(worst, maxRel(opt.m(), so, Golden.floats(step.get("m").get(name))));
                worst = Math.max(worst, maxRel(opt.v(), so, Golden.floats(step.get("v").get(name))));
            }
        }
        assertThat(worst).as("largest relative difference to torch.optim.AdamW").isLessThanOrEqualTo(1e-6);
        assertThat(opt.stepCount()).isEqualTo(gold.get("steps").size());
    }

    @Test
    void vectorKernelEqualsNaiveTwinOnOddSizes() {
        for (int n : new int[] {1, 7, 15, 16, 17, 33, 100, 1023, 40_000}) {
            Random r = new Random(n);
            ParamLayout layout = new ParamLayout();
            layout.add("w", n);
            layout.add("b", n % 5 + 1);
            float[] p1 = rand(r, layout.size()), g = rand(r, layout.size()), p2 = p1.clone();
            AdamW fast = AdamW.forLanguageModel(layout, 1e-2, 1e-3, 0.1, 0.9, 0.999, 1e-8, s -> true, s -> false);
            AdamW naive = AdamW.forLanguageModel(layout, 1e-2, 1e-3, 0.1, 0.9, 0.999, 1e-8, s -> true, s -> false);
            try (Parallel par = new Parallel(2)) {
                for (int s = 0; s < 3; s++) {
                    fast.step(p1, g, 0.5 + s, par);
                    naive.stepNaive(p2, g, 0.5 + s);
                }
            }
            assertThat(p1).as("n=" + n).containsExactly(p2);
            assertThat(fast.m()).containsExactly(naive.m());
            assertThat(fast.v()).containsExactly(naive.v());
        }
    }

    @Test
    void frozenViewsAreUntouchedAndHoldNoState() {
        ParamLayout layout = Gpt2Layout.of(Gpt2Config.of(13, 8, 8, 2, 2));
        Random r = new Random(7);
        float[] p = rand(r, layout.size()), g = rand(r, layout.size()), before = p.clone();
        // LoRA-style: only c_attn weights train; wte trains with the embedding learning rate
        AdamW opt = AdamW.forLanguageModel(layout, 1e-2, 1e-3, 0.1, 0.9, 0.999, 1e-8,
                n -> n.endsWith("c_attn.weight") || n.equals(Gpt2Layout.WTE), n -> n.equals(Gpt2Layout.WTE));
        opt.step(p, g, 1.0, null);
        int trainable = 0;
        for (ParamLayout.View v : layout.views()) {
            boolean changed = false;
            for (int i = 0; i < v.size(); i++) changed |= p[v.offset() + i] != before[v.offset() + i];
            boolean train = v.name().endsWith("c_attn.weight") || v.name().equals(Gpt2Layout.WTE);
            assertThat(changed).as(v.name()).isEqualTo(train);
            if (train) trainable += v.size();
        }
        assertThat(opt.trainableCount()).isEqualTo(trainable);
        assertThat(opt.groupOf(layout.get(Gpt2Layout.WTE))).isEqualTo(2);
        assertThat(opt.groupOf(layout.get(Gpt2Layout.layer(0, "attn.c_attn.weight")))).isEqualTo(0);
        assertThat(opt.groupOf(layout.get(Gpt2Layout.layer(0, "ln_1.weight")))).isEqualTo(-1);
        // first step of Adam moves every element by ~lr (|m/sqrt(v)| = 1): embedding lr is 10x smaller
        ParamLayout.View wte = layout.get(Gpt2Layout.WTE), attn = layout.get(Gpt2Layout.layer(1, "attn.c_attn.weight"));
        assertThat(Math.abs(p[wte.offset()] - before[wte.offset()] * (1 - 1e-3 * 0.1))).isCloseTo(1e-3, org.assertj.core.data.Offset.offset(1e-6));
        assertThat(Math.abs(p[attn.offset()] - before[attn.offset()] * (1 - 1e-2 * 0.1))).isCloseTo(1e-2, org.assertj.core.data.Offset.offset(1e-5));
    }

    @Test
    void noDecayGroupForBiasesAndLayerNorm() {
        ParamLayout layout = Gpt2Layout.of(Gpt2Config.of(13, 8, 8, 1, 2));
        AdamW opt = AdamW.forLanguageModel(layout, 1e-2, 1e-3, 0.1, 0.9, 0.999, 1e-8, n -> true, n -> n.equals(Gpt2Layout.WTE));
        assertThat(opt.groupOf(layout.get(Gpt2Layout.layer(0, "attn.c_attn.bias")))).isEqualTo(1);
        assertThat(opt.groupOf(layout.get(Gpt2Layout.layer(0, "ln_2.weight")))).isEqualTo(1);
        assertThat(opt.groupOf(layout.get(Gpt2Layout.LNF_W))).isEqualTo(1);
        assertThat(opt.groupOf(layout.get(Gpt2Layout.layer(0, "mlp.c_fc.weight")))).isEqualTo(0);
        assertThat(opt.groups().get(1).weightDecay()).isZero();
    }

    /**
     * ZeRO-1: N optimizers, each keeping the moments of its share of the trainable elements (shares cutting through
     * views and through the rows of a row-sparse gradient), stitched together, give the unsharded run's bits.
     */
    @Test
    void shardsStitchedTogetherAreTheUnshardedStepBitForBit() {
        ParamLayout layout = Gpt2Layout.of(Gpt2Config.of(13, 8, 8, 2, 2));
        java.util.function.Predicate<String> train = n -> n.endsWith("c_attn.weight") || n.endsWith("c_attn.bias")
                || n.equals(Gpt2Layout.WTE);
        Random r = new Random(11);
        float[] p0 = rand(r, layout.size()), g = rand(r, layout.size());
        int cols = layout.get(Gpt2Layout.WTE).shape()[1], rows = layout.get(Gpt2Layout.WTE).shape()[0];
        dev.cpt4j.tensor.RowSparseGrad[] sparse = new dev.cpt4j.tensor.RowSparseGrad[1];
        java.util.function.Supplier<AdamW> make = () -> AdamW.forLanguageModel(layout, ParamLayout.View::offset,
                v -> v.name().equals(Gpt2Layout.WTE) ? sparse[0] : null, 1e-2, 1e-3, 0.1, 0.9, 0.999, 1e-8, train,
                n -> n.equals(Gpt2Layout.WTE));
        sparse[0] = new dev.cpt4j.tensor.RowSparseGrad(rows, cols);
        for (int row : new int[] {4, 0, 9}) {                      // three rows with a gradient, first-seen order
            int s = sparse[0].slot(row);
            for (int c = 0; c < cols; c++) sparse[0].data()[s * cols + c] = (float) r.nextGaussian();
        }
        AdamW whole = make.get();
        float[] ref = p0.clone();
        try (Parallel par = new Parallel(2)) {
            for (int step = 0; step < 3; step++) whole.step(ref, g, 1.0 - 0.2 * step, par);
            for (int ranks : new int[] {2, 3, 7}) {
                int count = whole.trainableCount(), per = (count + ranks - 1) / ranks;
                float[] stitched = new float[layout.size()];
                float[] m = new float[count], v = new float[count];
                for (int q = 0; q < ranks; q++) {
                    AdamW part = make.get();
                    int lo = Math.min(q * per, count), len = Math.min(per, count - lo);
                    part.shard(lo, len);
                    float[] p = p0.clone();
                    for (int step = 0; step < 3; step++) part.step(p, g, 1.0 - 0.2 * step, par);
                    System.arraycopy(part.m(), 0, m, lo, len);
                    System.arraycopy(part.v(), 0, v, lo, len);
                    for (AdamW.Segment s : part.segments())        // this share's updated elements
                        for (int k = 0; k < s.length(); k++)
                            if (s.stateOffset() + k >= lo && s.stateOffset() + k < lo + len)
                                stitched[s.offset() + k] = p[s.offset() + k];
                }
                for (AdamW.Segment s : whole.segments())
                    for (int k = 0; k < s.length(); k++)
                        assertThat(stitched[s.offset() + k]).as(ranks + " shards, element " + (s.offset() + k))
                                .isEqualTo(ref[s.offset() + k]);
                assertThat(m).as(ranks + " shards: exp_avg").containsExactly(whole.m());
                assertThat(v).as(ranks + " shards: exp_avg_sq").containsExactly(whole.v());
            }
        }
    }

    private static void put(float[] dst, ParamLayout.View view, float[] src) {
        assertThat(src).hasSize(view.size());
        System.arraycopy(src, 0, dst, view.offset(), src.length);
    }

    private static double maxRel(float[] actual, int off, float[] expected) {
        double worst = 0;
        for (int i = 0; i < expected.length; i++) {
            double d = Math.abs(actual[off + i] - expected[i]);
            worst = Math.max(worst, d / Math.max(Math.abs(expected[i]), 1e-30));
        }
        return worst;
    }

    private static float[] rand(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) r.nextGaussian();
        return a;
    }
}
