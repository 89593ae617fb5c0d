package dev.cpt4j.data;

import com.fasterxml.jackson.databind.JsonNode;
import dev.cpt4j.train.MixedBatches;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/** Mixing prepared stores per block: the probabilities, each source's own epochs, and an exact resume. */
class MixedBatchesTest {
    @TempDir
    Path tmp;

    private TokenStore store(String name, char first, int lines) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve(name));
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < lines; i++) sb.append(first).append((char) (first + 1 + i % 5)).append('\n'); // 1 x y 2
        Files.writeString(dir.resolve("t.txt"), sb.toString());
        PrepareOptions o = PrepareOptions.of(List.of(dir), tmp.resolve(name + "-store"), 4).withValidationFraction(0)
                .withWorkers(1);
        return Prepare.run(o, CodePointTokenizer.recording(1000), m -> {});
    }

    @Test
    void blocksFollowTheProbabilitiesAndEachSourceCyclesItsOwnEpochs() throws IOException {
        try (TokenStore big = store("big", 'a', 400); TokenStore small = store("small", 'p', 8)) {
            MixedBatches m = new MixedBatches(List.of(big, small), List.of("big", "small"), List.of(0.75, 0.25), 7, true);
            int B = 8, T = 4, steps = 500;
            int[] ids = new int[B * T], starts = new int[B * T];
            Map<Integer, Integer> smallBlocks = new HashMap<>();
            long fromSmall = 0;
            for (int s = 0; s < steps; s++) {
                m.nextTrain(ids, starts, B);
                for (int b = 0; b < B; b++) {
                    assertThat(starts[b * T]).isZero();
                    if (ids[b * T + 1] >= 'p' || ids[b * T] >= 'p') {
                        fromSmall++;
                        smallBlocks.merge(Arrays.hashCode(Arrays.copyOfRange(ids, b * T, b * T + T)), 1, Integer::sum);
                    }
                }
            }
            double share = fromSmall / (double) (B * steps);
            assertThat(share).isCloseTo(0.25, within(0.02));
            assertThat(m.tokensBySource().get("small")).isEqualTo(fromSmall * T);
            // the small source (8 blocks) repeated its blocks about 125 times each: its own epochs, every block alike
            assertThat(smallBlocks.values()).allMatch(n -> n > 80);
        }
    }

    @Test
    void stateRestoresTheSameStream() throws IOException {
        try (TokenStore a = store("a", 'a', 50); TokenStore b = store("b", 'p', 20)) {
            MixedBatches m = new MixedBatches(List.of(a, b), List.of("a", "b"), List.of(0.5, 0.5), 3, false);
            int[] ids = new int[3 * 4];
            for (int i = 0; i < 17; i++) m.nextTrain(ids, 3);
            JsonNode st = m.state();
            List<int[]> want = new ArrayList<>();
            for (int i = 0; i < 30; i++) {
                m.nextTrain(ids, 3);
                want.add(ids.clone());
            }
            MixedBatches r = new MixedBatches(List.of(a, b), List.of("a", "b"), List.of(0.5, 0.5), 3, false);
            r.restore(st);
            for (int i = 0; i < 30; i++) {
                r.nextTrain(ids, 3);
                assertThat(ids).as("batch %d after the restore", i).isEqualTo(want.get(i));
            }
            assertThat(r.tokensBySource()).isEqualTo(m.tokensBySource());
        }
    }

    @Test
    void aCheckpointOfAnotherPackingOrSourceLayoutIsRefused() throws IOException {
        try (TokenStore a = store("a", 'a', 50); TokenStore b = store("b", 'p', 20)) {
            JsonNode packed = new dev.cpt4j.train.StoreBatches(a, 2, 1, true).state();
            org.assertj.core.api.Assertions.assertThatThrownBy(() -> new dev.cpt4j.train.StoreBatches(a, 2, 1, false).restore(packed))
                    .isInstanceOf(dev.cpt4j.UserError.class).hasMessageContaining("with --neat_packing");
            JsonNode mixed = new MixedBatches(List.of(a, b), List.of("a", "b"), List.of(0.5, 0.5), 3, false).state();
            org.assertj.core.api.Assertions.assertThatThrownBy(() -> new dev.cpt4j.train.StoreBatches(a, 2, 1, false).restore(mixed))
                    .isInstanceOf(dev.cpt4j.UserError.class).hasMessageContaining("--interleave_probs");
            JsonNode plain = new dev.cpt4j.train.StoreBatches(a, 2, 1, false).state();
            assertThat(plain.has("neat_packing")).as("plain checkpoints read as before").isFalse();
            org.assertj.core.api.Assertions.assertThatThrownBy(() ->
                            new MixedBatches(List.of(a, b), List.of("a", "b"), List.of(0.5, 0.5), 3, false).restore(plain))
                    .isInstanceOf(dev.cpt4j.UserError.class).hasMessageContaining("mixed sources");
        }
    }
}
