package dev.cpt4j.model;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.cpu.Gemm;
import org.junit.jupiter.api.Test;

/** {@link Gpt2Model#activationBytes} predicts exactly what the constructor allocates (train's heap check relies on it). */
class ActivationEstimateTest {
    @Test
    void theEstimateIsWhatTheModelAllocates() {
        try (Parallel par = new Parallel(1)) {
            for (boolean ckpt : new boolean[] {false, true})
                for (int[] bt : new int[][] {{1, 1}, {3, 7}, {2, 40}, {9, 33}}) {
                    Gpt2Config cfg = Gpt2Config.of(53, 64, 24, 3, 2);
                    Gpt2Model m = new Gpt2Model(cfg, new Gemm(par), par, bt[0], bt[1], ckpt);
                    assertThat(Gpt2Model.activationBytes(cfg, bt[0], bt[1], ckpt))
                            .as("B %d, T %d, checkpointing %s", bt[0], bt[1], ckpt).isEqualTo(m.allocatedActivationBytes());
                }
        }
    }
}
