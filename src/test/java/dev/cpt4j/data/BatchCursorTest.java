package dev.cpt4j.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;

class BatchCursorTest {
    @TempDir
    Path tmp;

    /** A store of 23 train blocks of T=4, block i starting with the marker id 100+i. */
    private TokenStore store() throws IOException {
        Path dir = tmp.resolve("c");
        Files.createDirectories(dir);
        StringBuilder sb = new StringBuilder();
        // Line i → ids 1, 100+i, 120 ('x'), 2: exactly one block per line.
        for (int i = 0; i < 23; i++) sb.append(Character.toString(100 + i)).append("x\n");
        Files.writeString(dir.resolve("a.txt"), sb.toString());
        return Prepare.run(PrepareOptions.of(List.of(dir), tmp.resolve("o"), 4).withValidationFraction(0),
                new CodePointTokenizer(1000), s -> {});
    }

    private static int marker(int[] batch, int row) {
        return batch[row * 4 + 1] - 100;
    }

    @Test
    void everyEpochIsAPermutationAndEpochsDiffer() throws IOException {
        try (TokenStore s = store()) {
            assertThat(s.train().blockCount()).isEqualTo(23);
            BatchCursor c = new BatchCursor(s.train(), 1, 5, true);
            int[] b = new int[4];
            List<Integer> e0 = new ArrayList<>(), e1 = new ArrayList<>();
            for (int i = 0; i < 23; i++) {
                c.next(b);
                e0.add(marker(b, 0));
                assertThat(b).startsWith(1).endsWith(120, 2);
            }
            assertThat(c.state()).isEqualTo(new BatchCursor.State(0, 23));
            for (int i = 0; i < 23; i++) {
                c.next(b);
                e1.add(marker(b, 0));
            }
            assertThat(new HashSet<>(e0)).hasSize(23);
            assertThat(new HashSet<>(e1)).isEqualTo(new HashSet<>(e0));
            assertThat(e1).isNotEqualTo(e0);
            assertThat(c.state()).isEqualTo(new BatchCursor.State(1, 23));

            BatchCursor ordered = new BatchCursor(s.train(), 1, 5, false);
            ordered.next(b);
            assertThat(marker(b, 0)).isZero();
        }
    }

    @Test
    void savedStateResumesExactlyAcrossEpochBoundaries() throws IOException {
        try (TokenStore s = store()) {
            int B = 5; // 23 is not a multiple of 5: batches straddle epochs
            BatchCursor a = new BatchCursor(s.train(), B, 1234, true);
            int[] batch = new int[B * 4];
            for (int i = 0; i < 7; i++) a.next(batch);
            BatchCursor.State saved = a.state();
            assertThat(saved).isEqualTo(new BatchCursor.State(1, 12)); // 35 blocks served = 23 + 12

            List<int[]> expected = new ArrayList<>();
            for (int i = 0; i < 9; i++) {
                a.next(batch);
                expected.add(batch.clone());
            }
            BatchCursor b = new BatchCursor(s.train(), B, 1234, true);
            b.restore(new BatchCursor.State(saved.epoch(), saved.position()));
            long[] peek = b.peekIds();
            for (int i = 0; i < 9; i++) {
                b.next(batch);
                assertThat(batch).as("batch %d after resume", i).isEqualTo(expected.get(i));
                if (i == 0) for (int r = 0; r < B; r++) assertThat((long) marker(batch, r)).isEqualTo(peek[r]);
            }
            assertThat(b.state()).isEqualTo(a.state());

            // Same seed → same order; another seed → another order.
            Set<String> orders = new HashSet<>();
            for (long seed : new long[]{1234, 1234, 99}) {
                BatchCursor c = new BatchCursor(s.train(), B, seed, true);
                orders.add(java.util.Arrays.toString(c.peekIds()));
            }
            assertThat(orders).hasSize(2);
        }
    }
}
