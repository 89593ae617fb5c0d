package dev.cpt4j.generate;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The processors/warpers against transformers' own on fixed logits (processors.json, pipeline.json from
 * tools/golden/make_generate_golden.py), and on tiny cases checkable by hand.
 */
class LogitsProcessorsTest {
    static final float NEG = Float.NEGATIVE_INFINITY;

    @Test
    void eachProcessorMatchesTransformersOnFixedLogits() {
        JsonNode g = Golden.json("processors.json");
        int V = g.get("vocab").asInt();
        int promptLen = g.get("prompt_length").asInt();
        JsonNode ids = g.get("input_ids");
        JsonNode logits = g.get("logits");
        int rows = logits.size();
        int cases = 0;
        for (JsonNode c : g.get("cases")) {
            String name = c.get("name").asText();
            for (int r = 0; r < rows; r++) {
                float[] s = Golden.floats(logits.get(r));
                int[] seq = Golden.ints(ids.get(r));
                apply(name, s, V, seq, promptLen);
                assertScores(s, Golden.floats(c.get("scores").get(r)), name + " row " + r);
            }
            cases++;
        }
        assertThat(cases).isEqualTo(13);
    }

    /** Mirrors the processor lists of make_generate_golden.py's processors_cases(). */
    private static void apply(String name, float[] s, int V, int[] seq, int promptLen) {
        int[] distinct = IntStream.of(seq).distinct().toArray();
        float[] f = new float[V];
        double[] d = new double[V];
        long[] k = new long[V];
        int generated = seq.length - promptLen;
        switch (name) {
            case "repetition_penalty_1.3" -> LogitsProcessors.repetitionPenalty(s, 0, V, distinct, distinct.length, 1.3f);
            case "repetition_penalty_0.7" -> LogitsProcessors.repetitionPenalty(s, 0, V, distinct, distinct.length, 0.7f);
            case "min_new_tokens" -> {
                if (generated < 3) LogitsProcessors.suppress(s, 0, V, new int[] {9, 40});
            }
            case "temperature_0.7" -> LogitsProcessors.temperature(s, 0, V, 0.7f);
            case "temperature_1.6" -> LogitsProcessors.temperature(s, 0, V, 1.6f);
            case "top_k_1" -> LogitsProcessors.topK(s, 0, V, 1, f);
            case "top_k_5" -> LogitsProcessors.topK(s, 0, V, 5, f);
            case "top_k_50" -> LogitsProcessors.topK(s, 0, V, 50, f);
            case "top_p_0.9" -> LogitsProcessors.topP(s, 0, V, 0.9f, d, k);
            case "top_p_0.5" -> LogitsProcessors.topP(s, 0, V, 0.5f, d, k);
            case "top_p_0.1" -> LogitsProcessors.topP(s, 0, V, 0.1f, d, k);
            case "top_p_0.999" -> LogitsProcessors.topP(s, 0, V, 0.999f, d, k);
            case "chain" -> {
                LogitsProcessors.repetitionPenalty(s, 0, V, distinct, distinct.length, 1.2f);
                if (generated < 3) LogitsProcessors.suppress(s, 0, V, new int[] {9});
                LogitsProcessors.temperature(s, 0, V, 0.8f);
                LogitsProcessors.topK(s, 0, V, 12, f);
                LogitsProcessors.topP(s, 0, V, 0.85f, d, k);
            }
            default -> throw new AssertionError("unknown case " + name);
        }
    }

    @Test
    void generatePipelineReplaysTransformersScores() {
        // transformers' generate(do_sample=True, output_logits, output_scores) on the tiny model: per step the raw
        // logits and the scores after ITS processor list; TokenChooser must turn one into the other.
        JsonNode g = Golden.json("pipeline.json");
        for (JsonNode c : g.get("cases")) {
            JsonNode conf = c.get("config");
            int N = conf.get("num_return_sequences").asInt();
            GenerationConfig cfg = new GenerationConfig(true, (float) conf.path("temperature").asDouble(1.0),
                    conf.path("top_k").asInt(50), (float) conf.path("top_p").asDouble(1.0),
                    (float) conf.path("repetition_penalty").asDouble(1.0), N, GenerationConfig.UNSET,
                    conf.get("max_new_tokens").asInt(), conf.path("min_new_tokens").asInt(0),
                    new int[] {c.get("eos_token_id").asInt()}, 0, 0L);
            int[] prompt = Golden.ints(c.get("prompt"));
            JsonNode steps = c.get("steps");
            int V = steps.get(0).get("logits").get(0).size();
            TokenChooser chooser = new TokenChooser(cfg, V, N);
            chooser.start(prompt);
            for (int t = 0; t < steps.size(); t++) {
                float[] logits = new float[N * V];
                for (int n = 0; n < N; n++) {
                    System.arraycopy(Golden.floats(steps.get(t).get("logits").get(n)), 0, logits, n * V, V);
                    chooser.process(logits, n);
                    assertScores(Arrays.copyOfRange(logits, n * V, (n + 1) * V),
                            Golden.floats(steps.get(t).get("scores").get(n)), c.get("name").asText() + " step " + t + " seq " + n);
                }
                if (t + 1 < steps.size())
                    for (int n = 0; n < N; n++) {
                        JsonNode next = steps.get(t + 1).get("ids").get(n);
                        chooser.append(n, next.get(next.size() - 1).asInt());
                    }
            }
        }
    }

    @Test
    void handCheckedCases() {
        // top-k 2 of [1, 3, 2, 3]: the 2nd largest is 3, ties kept → only the two 3s survive
        float[] s = {1, 3, 2, 3};
        LogitsProcessors.topK(s, 0, 4, 2, new float[4]);
        assertThat(s).containsExactly(NEG, 3, NEG, 3);

        // top-k 3 with a tie at the cut keeps 4 tokens
        s = new float[] {5, 1, 2, 2, 0};
        LogitsProcessors.topK(s, 0, 5, 3, new float[5]);
        assertThat(s).containsExactly(5, NEG, 2, 2, NEG);

        // probabilities 0.5, 0.3, 0.15, 0.05 (log-space). Ascending cumsum: 0.05, 0.20, 0.50, 1.0.
        float[] base = {(float) Math.log(0.05), (float) Math.log(0.5), (float) Math.log(0.15), (float) Math.log(0.3)};
        // top-p 0.7: remove cum <= 0.3 → 0.05 and 0.15 go
        assertThat(topP(base, 0.7f)).containsExactly(NEG, base[1], NEG, base[3]);
        // top-p 0.9: remove cum <= 0.1 → only 0.05 goes
        assertThat(topP(base, 0.9f)).containsExactly(NEG, base[1], base[2], base[3]);
        // top-p 0.3: remove cum <= 0.7 → only the 0.5 token stays (and min_tokens_to_keep keeps it anyway)
        assertThat(topP(base, 0.3f)).containsExactly(NEG, base[1], NEG, NEG);
        // top-p 0: everything has cum <= 1, but the most likely token is always kept
        assertThat(topP(base, 0f)).containsExactly(NEG, base[1], NEG, NEG);
        // top-p 1: no-op
        assertThat(topP(base, 1f)).containsExactly(base);

        // repetition penalty: positive scores divided, negative multiplied, each token once
        s = new float[] {2, -2, 4, 1};
        LogitsProcessors.repetitionPenalty(s, 0, 4, new int[] {0, 1, 2}, 3, 2f);
        assertThat(s).containsExactly(1, -4, 2, 1);

        // temperature 0.5 doubles the scores
        s = new float[] {1, -3};
        LogitsProcessors.temperature(s, 0, 2, 0.5f);
        assertThat(s).containsExactly(2, -6);
    }

    private static float[] topP(float[] base, float p) {
        float[] s = base.clone();
        LogitsProcessors.topP(s, 0, s.length, p, new double[s.length], new long[s.length]);
        return s;
    }

    @Test
    void topPQuickselectEqualsSortingOnRandomRows() {
        // the O(V) selection must keep exactly what HF's sort-and-cumsum keeps (exact arithmetic, no ties)
        SplittableRandom rng = new SplittableRandom(42);
        for (int trial = 0; trial < 150; trial++) {
            int V = 1 + rng.nextInt(1500);
            float[] s = new float[V];
            double spread = rng.nextDouble() * 8;
            for (int i = 0; i < V; i++) s[i] = (float) (rng.nextGaussian() * spread);
            if (trial % 3 == 0) for (int i = 0; i < V; i += 2) s[i] = NEG; // rows already cut by top-k
            if (s[0] == NEG) s[0] = 0f;
            float p = (float) rng.nextDouble();
            float[] got = s.clone();
            LogitsProcessors.topP(got, 0, V, p, new double[V], new long[V]);
            assertThat(got).as("trial " + trial + " V " + V + " p " + p).containsExactly(topPBySorting(s, p));
        }
    }

    @Test
    void candidateTopPAndDrawEqualTheDenseOnesAfterTopK() {
        // the sparse path (ids left by top-k) must give bit-identical rows and the same draws as the dense one
        SplittableRandom rng = new SplittableRandom(7);
        for (int trial = 0; trial < 200; trial++) {
            int V = 1 + rng.nextInt(3000), k = 1 + rng.nextInt(80);
            float[] s = new float[V];
            double spread = rng.nextDouble() * 8;
            for (int i = 0; i < V; i++) s[i] = (float) (rng.nextGaussian() * spread);
            if (trial % 4 == 0) for (int i = 0; i < V; i += 3) s[i] = s[0]; // ties
            LogitsProcessors.topK(s, 0, V, k, new float[V]);
            float p = (float) rng.nextDouble();
            float[] dense = s.clone(), sparse = s.clone();
            int[] cand = new int[V];
            int n = LogitsProcessors.finiteIndices(sparse, 0, V, cand);
            LogitsProcessors.topP(dense, 0, V, p, new double[V], new long[V]);
            LogitsProcessors.topP(sparse, 0, cand, n, p, new double[V], new long[V]);
            assertThat(sparse).as("trial %d", trial).containsExactly(dense);
            for (int d = 0; d < 20; d++) {
                double u = rng.nextDouble();
                assertThat(TokenChooser.sample(sparse, 0, cand, n, u)).isEqualTo(TokenChooser.sample(dense, 0, V, u));
            }
        }
    }

    /** HF's algorithm literally: ascending sort, cumulative softmax, remove <= 1 - p, keep the last one. */
    private static float[] topPBySorting(float[] s, float p) {
        int V = s.length;
        double max = Double.NEGATIVE_INFINITY;
        for (float v : s) max = Math.max(max, v);
        double[] prob = new double[V];
        double tot = 0;
        for (int i = 0; i < V; i++) tot += prob[i] = Math.exp(s[i] - max);
        for (int i = 0; i < V; i++) prob[i] /= tot;
        Integer[] order = new Integer[V];
        for (int i = 0; i < V; i++) order[i] = i;
        // ascending by score, ties: higher id first (so lower id ranks higher, as LogitsProcessors documents)
        Arrays.sort(order, Comparator.<Integer>comparingDouble(i -> s[i]).thenComparing(i -> -i));
        float[] out = s.clone();
        // cumulative from the top, as in the implementation, to compare like with like
        double above = 0;
        for (int j = V - 1; j >= 0; j--) {
            int pos = V - 1 - j;
            int i = order[j];
            if (pos >= 1 && 1.0 - above <= 1.0 - p) out[i] = NEG;
            above += prob[i];
        }
        return out;
    }

    @Test
    void kthLargestOnRandomArrays() {
        SplittableRandom rng = new SplittableRandom(3);
        for (int trial = 0; trial < 200; trial++) {
            int n = 1 + rng.nextInt(500);
            float[] a = new float[n];
            for (int i = 0; i < n; i++) a[i] = rng.nextInt(20) - 10; // many ties
            int k = 1 + rng.nextInt(n);
            float[] sorted = a.clone();
            Arrays.sort(sorted);
            assertThat(LogitsProcessors.kthLargest(a.clone(), n, k)).isEqualTo(sorted[n - k]);
            float[] padded = new float[n + 3];
            System.arraycopy(a, 0, padded, 3, n);
            if (trial % 5 == 0) padded[3] = NEG;
            float[] sortedPadded = Arrays.copyOfRange(padded, 3, n + 3);
            Arrays.sort(sortedPadded);
            assertThat(LogitsProcessors.kthLargestByHeap(padded, 3, n, k, new float[k])).isEqualTo(sortedPadded[n - k]);
        }
    }

    static void assertScores(float[] got, float[] want, String what) {
        assertThat(got).as(what + " length").hasSize(want.length);
        for (int i = 0; i < want.length; i++) {
            if (want[i] == NEG) {
                assertThat(got[i]).as(what + " token " + i + " must be filtered").isEqualTo(NEG);
            } else {
                assertThat(got[i]).as(what + " token " + i + " must be kept").isNotEqualTo(NEG);
                assertThat((double) got[i]).as(what + " token " + i)
                        .isCloseTo(want[i], org.assertj.core.data.Offset.offset(1e-5 * Math.max(1, Math.abs(want[i]))));
            }
        }
    }
}
