package dev.cpt4j.generate;

import dev.cpt4j.model.Gpt2Config;
import dev.cpt4j.model.Gpt2Layout;
import dev.cpt4j.tensor.Parallel;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

class GenerateBenchTest {
    @Test
    void countsEveryNewTokenOfEverySequence() {
        Gpt2Config tiny = Gpt2Config.of(101, 64, 32, 2, 4);
        try (Parallel par = new Parallel(2)) {
            GenerateBench.Result r = GenerateBench.run(tiny, 8, 16, 3, 0.9f, 1L, par);
            assertThat(r.newTokens()).isEqualTo(48); // no eos: 3 × 16
            assertThat(r.tokensPerSecond()).isPositive();
            assertThat(r.threads()).isEqualTo(2);
        }
    }

    @Test
    void seedGeometryIsWenzhongShaped() {
        Gpt2Config c = GenerateBench.seedGeometry();
        assertThat(Gpt2Layout.of(c).size()).isBetween(100_000_000, 110_000_000);
        float[] p = GenerateBench.randomParams(Gpt2Config.of(11, 8, 8, 1, 2), Gpt2Layout.of(Gpt2Config.of(11, 8, 8, 1, 2)), 3);
        var layout = Gpt2Layout.of(Gpt2Config.of(11, 8, 8, 1, 2));
        assertThat(p[layout.get(Gpt2Layout.LNF_W).offset()]).isEqualTo(1f);
        assertThat(p[layout.get(Gpt2Layout.LNF_B).offset()]).isZero();
    }
}
