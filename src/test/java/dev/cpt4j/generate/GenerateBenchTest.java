package dev.cpt4j.generate;

import dev.cpt4j.model.Gpt2Config;
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
}
