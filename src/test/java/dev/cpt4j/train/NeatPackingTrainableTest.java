package dev.cpt4j.train;

import dev.cpt4j.UserError;
import dev.cpt4j.model.Gpt2Config;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.cpu.Gemm;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The trainer's model under neat packing: one-token documents leave nothing to learn and say so. */
class NeatPackingTrainableTest {
    @Test
    void documentsOfOneTokenAreOneLineAndLongerOnesTrain() {
        try (Parallel par = new Parallel(1)) {
            int B = 2, T = 6;
            FamilyTrainable m = FamilyTrainable.fromScratch(Gpt2Config.of(20, 8, 8, 1, 2), B, T, false, 1, new Gemm(par), par);
            int[] ids = new int[B * T], single = new int[B * T], pairs = new int[B * T];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = (i * 7) % 20;
                single[i] = i % T;                    // every token starts its own document
                pairs[i] = (i % T) - (i % T) % 2;     // documents of 2 tokens
            }
            assertThatThrownBy(() -> m.forwardBackward(ids, single, B, T, 1f, 3))
                    .isInstanceOf(UserError.class).hasMessageContaining("documents (lines) need at least 2 tokens");
            double l = m.forwardBackward(ids, pairs, B, T, 1f, 3);
            assertThat(l).isFinite().isPositive();
            assertThat(m.loss(ids, pairs, B, T)).isFinite();
        }
    }
}
