package dev.cpt4j.generate;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

/** The multinomial draw against a known distribution, with a fixed seed. */
class SamplerTest {

    @Test
    void frequenciesFollowTheSoftmax() {
        double[] p = {0.40, 0.25, 0.15, 0.10, 0.06, 0.04};
        float[] s = new float[p.length];
        for (int i = 0; i < p.length; i++) s[i] = (float) Math.log(p[i]) + 3f; // a shift must not matter
        int draws = 200_000;
        long[] count = new long[p.length];
        SplittableRandom rng = new SplittableRandom(2024);
        for (int d = 0; d < draws; d++) count[TokenChooser.sample(s, 0, s.length, rng.nextDouble())]++;
        // Pearson chi-square, 5 degrees of freedom: P(X > 20.5) ≈ 0.001
        double chi2 = 0;
        for (int i = 0; i < p.length; i++) {
            double e = draws * p[i];
            chi2 += (count[i] - e) * (count[i] - e) / e;
        }
        assertThat(chi2).isLessThan(20.5);
    }

    @Test
    void filteredTokensAreNeverDrawnAndEdgesAreExact() {
        float neg = Float.NEGATIVE_INFINITY;
        float[] s = {neg, 0f, neg, 0f, neg};
        // two equal tokens: u < 0.5 → the first, u >= 0.5 → the second
        assertThat(TokenChooser.sample(s, 0, 5, 0.0)).isEqualTo(1);
        assertThat(TokenChooser.sample(s, 0, 5, 0.4999)).isEqualTo(1);
        assertThat(TokenChooser.sample(s, 0, 5, 0.5)).isEqualTo(3);
        assertThat(TokenChooser.sample(s, 0, 5, Math.nextDown(1.0))).isEqualTo(3);
        // a row offset
        float[] two = {9f, 9f, neg, 5f};
        assertThat(TokenChooser.sample(two, 2, 2, 0.3)).isEqualTo(1);
    }

    @Test
    void topPThenSampleStaysInTheNucleus() {
        GenerationConfig cfg = GenerationConfig.sampling(0.9f, 1, 1, 0L);
        float[] base = {(float) Math.log(0.5), (float) Math.log(0.3), (float) Math.log(0.15), (float) Math.log(0.05)};
        TokenChooser ch = new TokenChooser(cfg, 4, 1);
        ch.start(new int[] {0});
        SplittableRandom rng = new SplittableRandom(7);
        long[] count = new long[4];
        int draws = 100_000;
        for (int d = 0; d < draws; d++) count[ch.choose(base.clone(), 0, rng)]++;
        assertThat(count[3]).isZero(); // cumulative 0.05 <= 0.1: removed
        // renormalised nucleus: 0.5/0.95, 0.3/0.95, 0.15/0.95, each within 1 % absolute
        assertThat(count[0] / (double) draws).isCloseTo(0.5 / 0.95, org.assertj.core.data.Offset.offset(0.01));
        assertThat(count[1] / (double) draws).isCloseTo(0.3 / 0.95, org.assertj.core.data.Offset.offset(0.01));
        assertThat(count[2] / (double) draws).isCloseTo(0.15 / 0.95, org.assertj.core.data.Offset.offset(0.01));
    }

    @Test
    void greedyTakesTheFirstMaximum() {
        assertThat(TokenChooser.argmax(new float[] {1, 4, 2, 4}, 0, 4)).isEqualTo(1);
        assertThat(TokenChooser.argmax(new float[] {0, 0, 7, 1}, 2, 2)).isEqualTo(0);
    }
}
