package dev.cpt4j.generate;

import com.fasterxml.jackson.databind.JsonNode;
import dev.cpt4j.model.Gpt2Decoder;
import dev.cpt4j.model.Gpt2Config;
import dev.cpt4j.tensor.Parallel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

/** Parity of the KV-cache decoder with transformers' GPT2LMHeadModel (fixtures: tools/golden/make_generate_golden.py). */
class Gpt2DecoderTest {

    @ParameterizedTest
    @ValueSource(strings = {"tiny_tied", "tiny_untied"})
    void greedyIdsAndLogitsMatchTransformers(String name) {
        Golden.TinyModel m = Golden.model(name);
        JsonNode g = Golden.json(name + "/greedy.json");
        int[] prompt = Golden.ints(g.get("prompt"));
        int maxNew = g.get("max_new_tokens").asInt();
        GenerationConfig cfg = new GenerationConfig(false, 1f, 50, 1f, (float) g.get("repetition_penalty").asDouble(),
                1, GenerationConfig.UNSET, maxNew, g.get("min_new_tokens").asInt(),
                new int[] {g.get("eos_token_id").asInt()}, g.get("pad_token_id").asInt(), 0L);
        try (Parallel par = new Parallel(2)) {
            Gpt2Decoder dec = new Gpt2Decoder((Gpt2Config) m.config(), m.params(), m.layout(), 1, prompt.length + maxNew, par);

            float[] first = dec.prefill(prompt, 1).clone();
            assertClose(first, Golden.floats(g.get("first_logits")), 1e-4, "first-step logits");

            Generator.Result r = Generator.generate(dec, prompt, cfg, new SplittableRandom(0), Generator.TokenListener.NONE);
            assertThat(r.tokens()[0]).hasSizeGreaterThanOrEqualTo(64).containsExactly(Golden.ints(g.get("ids")));
            assertThat(r.reasons()[0]).isEqualTo(Generator.FinishReason.LENGTH);
        }
    }

    @Test
    void lastStepLogitsMatchTransformers() {
        Golden.TinyModel m = Golden.model("tiny_untied");
        JsonNode g = Golden.json("tiny_untied/greedy.json");
        int[] prompt = Golden.ints(g.get("prompt"));
        int[] ids = Golden.ints(g.get("ids"));
        Gpt2Decoder dec = new Gpt2Decoder((Gpt2Config) m.config(), m.params(), m.layout(), 1, prompt.length + ids.length, Parallel.serial());
        float[] logits = dec.prefill(prompt, 1);
        for (int t = 0; t < ids.length - 1; t++) logits = dec.next(new int[] {ids[t]}, new boolean[] {true});
        assertClose(logits, Golden.floats(g.get("last_logits")), 1e-4, "logits after " + (ids.length - 1) + " steps");
    }

    @Test
    void batchedSequencesMatchOneAtATime() {
        Golden.TinyModel m = Golden.model("tiny_tied");
        int V = m.config().vocabSize();
        int[] prompt = {4, 8, 15, 16, 23};
        int[][] feeds = {{1, 2, 3, 4}, {50, 60, 70, 80}, {96, 0, 96, 0}};
        Gpt2Decoder batch = new Gpt2Decoder((Gpt2Config) m.config(), m.params(), m.layout(), 3, 12, new Parallel(2));
        float[] pre = batch.prefill(prompt, 3);
        assertThat(Arrays.copyOfRange(pre, 0, V)).containsExactly(Arrays.copyOfRange(pre, 2 * V, 3 * V));
        float[][] batched = new float[3][];
        boolean[] active = {true, true, true};
        for (int s = 0; s < 4; s++) {
            if (s == 2) active[1] = false; // sequence 1 stops after two tokens: the others must not notice
            float[] lg = batch.next(new int[] {feeds[0][s], feeds[1][s], feeds[2][s]}, active);
            if (s == 1) batched[1] = Arrays.copyOfRange(lg, V, 2 * V);
            if (s == 3) {
                batched[0] = Arrays.copyOfRange(lg, 0, V);
                batched[2] = Arrays.copyOfRange(lg, 2 * V, 3 * V);
            }
        }
        for (int n = 0; n < 3; n++) {
            Gpt2Decoder single = new Gpt2Decoder((Gpt2Config) m.config(), m.params(), m.layout(), 1, 12, Parallel.serial());
            float[] lg = single.prefill(prompt, 1);
            int steps = n == 1 ? 2 : 4;
            for (int s = 0; s < steps; s++) lg = single.next(new int[] {feeds[n][s]}, new boolean[] {true});
            assertClose(batched[n], Arrays.copyOf(lg, V), 1e-5, "sequence " + n);
        }
    }

    @Test
    void prefillEqualsFeedingThePromptOneTokenAtATime() {
        Golden.TinyModel m = Golden.model("tiny_untied");
        int[] prompt = {9, 8, 7, 6, 50, 51, 52};
        Gpt2Decoder a = new Gpt2Decoder((Gpt2Config) m.config(), m.params(), m.layout(), 1, 16, Parallel.serial());
        float[] whole = a.prefill(prompt, 1).clone();
        Gpt2Decoder b = new Gpt2Decoder((Gpt2Config) m.config(), m.params(), m.layout(), 1, 16, Parallel.serial());
        float[] lg = b.prefill(new int[] {prompt[0]}, 1);
        for (int t = 1; t < prompt.length; t++) lg = b.next(new int[] {prompt[t]}, new boolean[] {true});
        assertClose(whole, lg, 1e-5, "prefill vs stepwise");
    }

    @Test
    void activationsMatchTransformers() {
        JsonNode g = Golden.json("activations.json");
        float[] x = Golden.floats(g.get("x"));
        for (String name : dev.cpt4j.model.Gpt2Config.ACTIVATIONS) {
            float[] want = Golden.floats(g.get("y").get(name));
            float[] got = new float[x.length];
            dev.cpt4j.tensor.cpu.Activation.of(name).forward(Parallel.serial(), got, 0, x, 0, x.length);
            assertClose(got, want, 2e-6, name);
        }
    }

    static void assertClose(float[] got, float[] want, double tol, String what) {
        assertThat(got.length).as(what + " length").isGreaterThanOrEqualTo(want.length);
        double worst = 0;
        int at = -1;
        for (int i = 0; i < want.length; i++) {
            double d = Math.abs((double) got[i] - want[i]) / Math.max(1.0, Math.abs(want[i]));
            if (d > worst) {
                worst = d;
                at = i;
            }
        }
        assertThat(worst).as(what + ": largest difference at " + at).isLessThanOrEqualTo(tol);
    }
}
