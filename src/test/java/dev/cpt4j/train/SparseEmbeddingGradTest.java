package dev.cpt4j.train;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cpt4j.model.Gpt2Config;
import dev.cpt4j.model.Gpt2Layout;
import dev.cpt4j.model.Gpt2Model;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.RowSparseGrad;
import dev.cpt4j.tensor.cpu.Gemm;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The row-sparse gradient of an untied token embedding ({@link Gpt2Model#setSparseTokenEmbeddingGrad}) trains
 * exactly as the dense gradient: LoRA + modules_to_save wte, lm_head on a tiny GPT-2, gradient accumulation 2,
 * clipping, AdamW with weight decay — the same losses, gradient norms and final weights up to float summation order.
 */
class SparseEmbeddingGradTest {
    private static final int V = 97, T = 9, STEPS = 6;
    private static final Gpt2Config BASE = Gpt2Config.of(V, 16, 32, 2, 2).withDropout(0.1f, 0.1f, 0.1f);

    private static TrainOptions opts(Path out) {
        return TrainOptions.builder().modelNameOrPath(Path.of("model")).datasetDir(Path.of("data"))
                .validationSplit(0.05).blockSize(T).threads(2).preprocessingNumWorkers(1).perDeviceTrainBatchSize(4)
                .perDeviceEvalBatchSize(3).gradientAccumulationSteps(2).maxSteps(STEPS).seed(1234).learningRate(2e-3)
                .embeddingLearningRate(1e-3).weightDecay(0.01).maxGradNorm(0.5).lrSchedulerType(LrSchedule.Type.COSINE)
                .warmupRatio(0.2).loraRank(4).loraAlpha(16).loraDropout(0.05).trainable(List.of("attn.c_attn"))
                .modulesToSave(List.of("transformer.wte", "lm_head")).gradientCheckpointing(true).loggingSteps(1)
                .loggingFirstStep(true).evalSteps(0).saveSteps(0).outputDir(out).build();
    }

    private record Run(List<double[]> steps, float[] initial, float[] params, FamilyTrainable model) {}

    private static Run train(Path out, boolean sparse) {
        TrainOptions o = opts(out);
        List<double[]> steps = new ArrayList<>();
        Progress record = new Progress() {
            public void start(long startStep, long maxSteps) {}

            public void step(long step, double loss, double lr, double gradNorm, double tokensPerS) {
                steps.add(new double[] {loss, gradNorm});
            }

            public void message(String line) {}

            public void close() {}
        };
        try (Parallel par = new Parallel(2)) {
            FamilyTrainable m = FamilyTrainable.fromScratch(BASE, FamilyTrainable.Spec.of(o, V, T), new Gemm(par), par, s -> {});
            if (!sparse) m.model().setSparseTokenEmbeddingGrad(false);
            float[] initial = m.params().clone();
            Trainer.run(o, m, new ToyData(V, T, 50, 5), par, record, new PrintStream(new ByteArrayOutputStream()));
            return new Run(steps, initial, m.params().clone(), m);
        }
    }

    @Test
    void sparseAndDenseEmbeddingGradientsTrainAlike(@TempDir Path tmp) {
        Run sparse = train(tmp.resolve("sparse"), true), dense = train(tmp.resolve("dense"), false);
        FamilyTrainable s = sparse.model(), d = dense.model();
        assertThat(s.config().tieWordEmbeddings()).isFalse();
        assertThat(s.sparseGrad(Gpt2Layout.WTE)).isNotNull();
        assertThat(s.gradOffset(Gpt2Layout.WTE)).isEqualTo(-1);
        assertThat(d.sparseGrad(Gpt2Layout.WTE)).isNull();
        int wteSize = s.layout().get(Gpt2Layout.WTE).size();
        assertThat(s.grads().length).isEqualTo(d.grads().length - wteSize); // no dense rows for wte
        // each step touches only some of the 97 rows: the rows without a gradient must still move (weight decay, moments)
        assertThat(s.sparseGrad(Gpt2Layout.WTE).used()).isBetween(1, V - 1);

        assertThat(sparse.steps()).hasSize(STEPS);
        assertThat(dense.steps()).hasSize(STEPS);
        boolean clipped = false;
        for (int i = 0; i < STEPS; i++) {
            double[] a = sparse.steps().get(i), b = dense.steps().get(i);
            assertThat(a[0]).as("loss, step %d", i + 1).isCloseTo(b[0], org.assertj.core.data.Offset.offset(1e-6 * Math.abs(b[0])));
            assertThat(a[1]).as("grad norm, step %d", i + 1).isCloseTo(b[1], org.assertj.core.data.Offset.offset(1e-6 * b[1]));
            clipped |= b[1] > 0.5;
        }
        assertThat(clipped).as("some step clips (max_grad_norm 0.5)").isTrue();

        // clipping multiplies by max_norm / norm in fp32, so a norm summed in another order can move the coefficient
        // by an ulp: compare each trained tensor relative to its largest element
        for (ParamLayout.View v : s.layout().views()) {
            if (!s.isTrainable(v.name())) continue;
            double maxDiff = 0, maxAbs = 0;
            for (int i = v.offset(); i < v.offset() + v.size(); i++) {
                maxDiff = Math.max(maxDiff, Math.abs(sparse.params()[i] - dense.params()[i]));
                maxAbs = Math.max(maxAbs, Math.abs(dense.params()[i]));
            }
            assertThat(maxDiff / maxAbs).as("%s: largest difference / largest |weight|", v.name()).isLessThan(1e-6);
        }
        // every row of wte moved, also those no batch held (AdamW decays all of them, as dense)
        int C = BASE.nEmbd(), wte = s.layout().get(Gpt2Layout.WTE).offset();
        for (int r = 0; r < V; r++) {
            boolean moved = false;
            for (int c = 0; c < C; c++) moved |= sparse.params()[wte + r * C + c] != sparse.initial()[wte + r * C + c];
            assertThat(moved).as("wte row %d moved", r).isTrue();
        }
    }

    /** AdamW and clipping on a row-sparse view equal the dense kernels on its densified gradient, bit for bit. */
    @Test
    void adamWAndClippingOnARowSparseViewEqualDense() {
        int rows = 1500, cols = 24; // 36 000 elements: above AdamW's threshold for splitting across threads
        ParamLayout layout = new ParamLayout();
        layout.add("a.weight", new int[] {5});
        layout.add("emb", new int[] {rows, cols});
        java.util.SplittableRandom r = new java.util.SplittableRandom(7);
        float[] init = new float[layout.size()], dense = new float[layout.size()];
        for (int i = 0; i < init.length; i++) init[i] = (float) r.nextGaussian();
        RowSparseGrad sparse = new RowSparseGrad(rows, cols);
        int emb = layout.get("emb").offset();
        for (int k = 0; k < 300; k++) {            // rows in random order, some repeated, most rows never seen
            int row = r.nextInt(rows), slot = sparse.slot(row);
            for (int c = 0; c < cols; c++) {
                float g = (float) r.nextGaussian();
                sparse.data()[slot * cols + c] += g;
                dense[emb + row * cols + c] += g;
            }
        }
        for (int i = 0; i < 5; i++) dense[i] = (float) r.nextGaussian();
        float[] sparseBuf = java.util.Arrays.copyOf(dense, 5); // the dense views' buffer: "a" only
        List<AdamW.Group> groups = List.of(new AdamW.Group("decay", 1e-2, 0.1));
        for (boolean vector : new boolean[] {true, false})
            try (Parallel par = new Parallel(2)) {
                AdamW od = new AdamW(layout, groups, v -> 0, ParamLayout.View::offset, v -> null, 0.9, 0.999, 1e-8);
                AdamW os = new AdamW(layout, groups, v -> 0, v -> v.name().equals("emb") ? -1 : v.offset(),
                        v -> v.name().equals("emb") ? sparse : null, 0.9, 0.999, 1e-8);
                assertThat(os.segments()).hasSize(2);
                double nd = GradClip.globalNorm(dense, od.segments(), par), ns = GradClip.globalNorm(sparseBuf, os.segments(), par);
                assertThat(ns).isCloseTo(nd, org.assertj.core.data.Offset.offset(1e-6 * nd));
                assertThat(GradClip.globalNormNaive(sparseBuf, os.segments()))
                        .isCloseTo(GradClip.globalNormNaive(dense, od.segments()), org.assertj.core.data.Offset.offset(1e-12 * nd));
                float[] pd = init.clone(), ps = init.clone();
                for (int step = 0; step < 3; step++) {
                    if (vector) {
                        od.step(pd, dense, 1.0, par);
                        os.step(ps, sparseBuf, 1.0, par);
                    } else {
                        od.stepNaive(pd, dense, 1.0);
                        os.stepNaive(ps, sparseBuf, 1.0);
                    }
                }
                assertThat(ps).isEqualTo(pd);
                assertThat(os.m()).isEqualTo(od.m());
                assertThat(os.v()).isEqualTo(od.v());
            }
        float[] d2 = dense.clone(), s2 = sparseBuf.clone();
        RowSparseGrad sp = sparse;
        AdamW od = new AdamW(layout, List.of(new AdamW.Group("g", 1e-2, 0)), v -> 0, 0.9, 0.999, 1e-8);
        AdamW os = new AdamW(layout, List.of(new AdamW.Group("g", 1e-2, 0)), v -> 0,
                v -> v.name().equals("emb") ? -1 : v.offset(), v -> v.name().equals("emb") ? sp : null, 0.9, 0.999, 1e-8);
        GradClip.clip(d2, od.segments(), 1.0, null);
        GradClip.clip(s2, os.segments(), 1.0, null);
        float[] back = new float[rows * cols];
        sp.addTo(back, 0);
        // clipped alike, up to the clip coefficient (fp32, from a norm summed in another order)
        double worst = 0;
        for (int i = 0; i < rows * cols; i++) worst = Math.max(worst, Math.abs(back[i] - d2[emb + i]) / (Math.abs(d2[emb + i]) + 1e-30));
        for (int i = 0; i < 5; i++) worst = Math.max(worst, Math.abs(s2[i] - d2[i]) / Math.abs(d2[i]));
        assertThat(worst).as("largest relative difference after clipping").isLessThan(1e-6);
        double before = GradClip.globalNormNaive(dense, od.segments()), after = GradClip.globalNormNaive(d2, od.segments());
        assertThat(after).isCloseTo(1.0, org.assertj.core.data.Offset.offset(1e-5)).isLessThan(before);
    }

    @Test
    void aTiedEmbeddingStaysDense() {
        try (Parallel par = Parallel.serial()) {
            Gpt2Model tied = new Gpt2Model(BASE, new Gemm(par), par, 2, T, false);
            tied.setSparseTokenEmbeddingGrad(true);
            assertThat(tied.sparseGrad(Gpt2Layout.WTE)).isNull();              // the head writes every row of wte
            assertThat(tied.gradOffset(Gpt2Layout.WTE)).isEqualTo(tied.layout().get(Gpt2Layout.WTE).offset());
            Gpt2Model untied = new Gpt2Model(BASE.withTiedEmbeddings(false), new Gemm(par), par, 2, T, false);
            untied.setSparseTokenEmbeddingGrad(true);
            assertThat(untied.sparseGrad(Gpt2Layout.WTE)).isNotNull();
            untied.setFrozen(n -> n.equals(Gpt2Layout.WTE));
            assertThat(untied.sparseGrad(Gpt2Layout.WTE)).isNull();            // frozen: no gradient at all
        }
    }

    @Test
    void rowSparseGradSlotsInFirstSeenOrderAndZeroReleasesThem() {
        RowSparseGrad g = new RowSparseGrad(50, 3);
        int[] rows = {7, 3, 7, 49, 0};
        for (int r : rows) {
            int s = g.slot(r);
            for (int c = 0; c < 3; c++) g.data()[s * 3 + c] += r + c;
        }
        assertThat(g.used()).isEqualTo(4);
        assertThat(new int[] {g.rowOf(0), g.rowOf(1), g.rowOf(2), g.rowOf(3)}).containsExactly(7, 3, 49, 0);
        float[] dense = new float[150];
        g.addTo(dense, 0);
        assertThat(dense[7 * 3 + 1]).isEqualTo(2 * 8f);
        assertThat(dense[49 * 3 + 2]).isEqualTo(51f);
        assertThat(g.slotOf(5)).isEqualTo(-1);
        for (int r = 0; r < 50; r++) g.slot(r);                                  // grows up to every row
        assertThat(g.used()).isEqualTo(50);
        g.zero();
        assertThat(g.used()).isZero();
        assertThat(g.slotOf(7)).isEqualTo(-1);
        int s = g.slot(20);
        assertThat(s).isZero();
        assertThat(g.data()[0]).isZero();                                         // a reused slot starts at zero
    }
}
