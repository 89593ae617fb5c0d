package dev.cpt4j.serve;

import dev.cpt4j.hf.AdapterMerge;
import dev.cpt4j.hf.HfCheckpoints;
import dev.cpt4j.hf.PeftAdapters;
import dev.cpt4j.model.UnmergedAdapter;
import dev.cpt4j.model.StepModel;
import dev.cpt4j.tensor.Parallel;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.Arrays;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The continuous-batching contract of both families' decoders ({@link StepModel#prefillSlot}, {@link StepModel#release}):
 * a sequence that joins while others are mid-decode, and one that reuses a released slot, get the logits a decoder
 * running that sequence alone gives (tiny random models of golden/generate and golden/llama).
 */
class SlotDecodingTest {
    static final int V_STEPS = 5;

    @ParameterizedTest
    @ValueSource(strings = {"generate/tiny_untied", "llama/llama_untied_llama3_bias", "llama/qwen3_headdim_qknorm",
            "llama/mistral_sliding_window"})
    void aJoiningSequenceDecodesAsIfAlone(String fixture) {
        HfCheckpoints.ModelDir m = HfCheckpoints.loadModelDir(Path.of("src/test/resources/golden", fixture));
        int V = m.config().vocabSize();
        int[][] prompts = {{4, 8, 15, 16, 23}, {9, 1, 7}, {2, 30, 31, 32, 33, 34, 35}};
        int[][] feeds = {{1, 2, 3, 4, 5, 6, 7, 8}, {40, 41, 42, 43, 44, 45, 46, 47}, {11, 12, 13, 14, 15, 16, 17, 18}};
        try (Parallel par = new Parallel(2)) {
            StepModel batch = m.config().family().decoder(m.config(), m.params(), m.layout(), 3, 24, par);
            float[][][] got = new float[3][V_STEPS + 1][];
            // slot 0 starts alone; slot 1 joins after two steps; slot 0 then ends and sequence 2 reuses it
            int[] step = new int[3];
            got[0][0] = row(batch.prefillSlot(0, prompts[0]), 0, V);
            int[] last = new int[3];
            boolean[] active = {true, false, false};
            for (int s = 0; s < 2; s++) advance(batch, got, step, feeds, active, last, V, new int[] {0, -1, -1});
            got[1][0] = row(batch.prefillSlot(1, prompts[1]), 1, V);
            active[1] = true;
            for (int s = 0; s < 3; s++) advance(batch, got, step, feeds, active, last, V, new int[] {0, 1, -1});
            batch.release(0);
            active[0] = false;
            got[2][0] = row(batch.prefillSlot(0, prompts[2]), 0, V);
            active[0] = true;
            // slot 0 now decodes sequence 2
            for (int s = 0; s < V_STEPS; s++) advance(batch, got, step, feeds, active, last, V, new int[] {2, 1, -1});

            for (int n = 0; n < 3; n++) {
                StepModel single = m.config().family().decoder(m.config(), m.params(), m.layout(), 1, 24, Parallel.serial());
                float[] lg = single.prefill(prompts[n], 1);
                assertClose(row(lg, 0, V), got[n][0], "sequence " + n + " prefill");
                for (int s = 0; s < Math.min(step[n], V_STEPS); s++) {
                    lg = single.next(new int[] {feeds[n][s]}, new boolean[] {true});
                    assertClose(row(lg, 0, V), got[n][s + 1], "sequence " + n + " step " + (s + 1));
                }
            }
            assertThat(step).containsExactly(5, 8, V_STEPS);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"generate/tiny_wp:generate/tiny_wp_adapter",
            "llama/llama_untied_llama3_bias:peft_llama/llama_untied_llama3_bias",
            "llama/qwen2_tied_yarn:peft_llama/qwen2_tied_yarn"})
    void adaptersAppliedPerSlotDecodeLikeTheMergedModel(String pair) {
        Path root = Path.of("src/test/resources/golden");
        Path baseDir = root.resolve(pair.split(":")[0]), adapterDir = root.resolve(pair.split(":")[1]);
        HfCheckpoints.ModelDir base = HfCheckpoints.loadModelDir(baseDir);
        // the golden adapters add tokens; cut back to the base's vocabulary, they are served unmerged
        PeftAdapters.Adapter pa = Adapters.withVocab(PeftAdapters.read(adapterDir), base.config().vocabSize(),
                base.config().hiddenSize());
        StringBuilder why = new StringBuilder();
        UnmergedAdapter u = AdapterMerge.unmerged(base, pa, adapterDir.toString(), baseDir.toString(), why);
        assertThat(u).as(why.toString()).isNotNull();
        assertThat(u.deltas()).isNotEmpty();
        HfCheckpoints.ModelDir merged = AdapterMerge.merge(base, pa, adapterDir.toString(), baseDir.toString());
        int V = base.config().vocabSize();
        int[][] prompts = {{4, 8, 15, 16, 23}, {9, 1, 7}, {2, 30, 31, 32, 33}};
        int[][] feeds = {{1, 2, 3, 4, 5, 6}, {40 % V, 41 % V, 42 % V, 43 % V, 44 % V, 45 % V}, {11, 12, 13, 14, 15, 16}};
        try (Parallel par = new Parallel(2)) {
            StepModel batch = base.config().family().decoder(base.config(), base.params(), base.layout(), 3, 16, par);
            StepModel.Adapter a = batch.prepareAdapter(u);
            // slot 0: the base; slots 1 and 2: the adapter, slot 2 joining two steps later
            float[][][] got = new float[3][5][];
            batch.setAdapter(1, a);
            got[0][0] = row(batch.prefillSlot(0, prompts[0]), 0, V);
            got[1][0] = row(batch.prefillSlot(1, prompts[1]), 1, V);
            int[] last = new int[3];
            boolean[] active = {true, true, false};
            int[] step = new int[3];
            for (int s = 0; s < 4; s++) {
                if (s == 2) {
                    batch.setAdapter(2, a);
                    got[2][0] = row(batch.prefillSlot(2, prompts[2]), 2, V);
                    active[2] = true;
                }
                for (int n = 0; n < 3; n++) if (active[n]) last[n] = feeds[n][step[n]];
                float[] lg = batch.next(last, active);
                for (int n = 0; n < 3; n++) if (active[n] && ++step[n] < 5) got[n][step[n]] = row(lg, n, V);
            }
            for (int n = 0; n < 3; n++) {
                HfCheckpoints.ModelDir m = n == 0 ? base : merged;
                StepModel single = m.config().family().decoder(m.config(), m.params(), m.layout(), 1, 16, Parallel.serial());
                float[] lg = single.prefill(prompts[n], 1);
                assertClose(row(lg, 0, V), got[n][0], 1e-4, pair + " sequence " + n + " prefill");
                for (int s = 0; s < Math.min(step[n], 4); s++) {
                    lg = single.next(new int[] {feeds[n][s]}, new boolean[] {true});
                    assertClose(row(lg, 0, V), got[n][s + 1], 1e-4, pair + " sequence " + n + " step " + (s + 1));
                }
            }
            // the adapter changes the logits (the test would pass vacuously otherwise)
            StepModel plain = base.config().family().decoder(base.config(), base.params(), base.layout(), 1, 16, Parallel.serial());
            float[] b = row(plain.prefill(prompts[1], 1), 0, V);
            double diff = 0;
            for (int i = 0; i < V; i++) diff = Math.max(diff, Math.abs(b[i] - got[1][0][i]));
            assertThat(diff).as("adapter vs base logits").isGreaterThan(1e-3);
        }
    }

    /** One step of every active slot; {@code seqOfSlot[slot]} says which sequence a slot decodes. */
    private static void advance(StepModel dec, float[][][] got, int[] step, int[][] feeds, boolean[] active, int[] last,
                                int V, int[] seqOfSlot) {
        for (int slot = 0; slot < 3; slot++) if (active[slot]) last[slot] = feeds[seqOfSlot[slot]][step[seqOfSlot[slot]]];
        float[] lg = dec.next(last, active);
        for (int slot = 0; slot < 3; slot++) {
            if (!active[slot]) continue;
            int n = seqOfSlot[slot];
            step[n]++;
            if (step[n] <= V_STEPS) got[n][step[n]] = row(lg, slot, V);
        }
    }

    private static float[] row(float[] lg, int r, int V) {
        return Arrays.copyOfRange(lg, r * V, (r + 1) * V);
    }

    private static void assertClose(float[] want, float[] got, String what) {
        assertClose(want, got, 1e-5, what);
    }

    private static void assertClose(float[] want, float[] got, double tol, String what) {
        assertThat(got).as(what).isNotNull();
        double worst = 0;
        for (int i = 0; i < want.length; i++)
            worst = Math.max(worst, Math.abs(want[i] - got[i]) / Math.max(1.0, Math.abs(want[i])));
        assertThat(worst).as(what + ": largest relative difference").isLessThanOrEqualTo(tol);
    }
}
