package dev.cpt4j.serve;

import dev.cpt4j.hf.HfCheckpoints;
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
        assertThat(got).as(what).isNotNull();
        double worst = 0;
        for (int i = 0; i < want.length; i++)
            worst = Math.max(worst, Math.abs(want[i] - got[i]) / Math.max(1.0, Math.abs(want[i])));
        assertThat(worst).as(what + ": largest relative difference").isLessThanOrEqualTo(1e-5);
    }
}
