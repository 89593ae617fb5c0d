package dev.cpt4j.tensor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** A lost worker would leave the caller waiting forever: the timeout turns that hang into a failure. */
@Timeout(120)
class ParallelTest {
    @Test
    void everyIndexRunsExactlyOnceOverManyLoops() {
        try (Parallel par = new Parallel(3)) {
            for (int round = 0; round < 20_000; round++) {
                int n = 1 + round % 7;
                int[] hits = new int[n];
                par.forRange(n, (s, e) -> {
                    for (int i = s; i < e; i++) hits[i]++;
                });
                for (int i = 0; i < n; i++) assertThat(hits[i]).as("round %d index %d", round, i).isEqualTo(1);
            }
        }
    }

    @Test
    void chunksAreTheSameContiguousRangesForAThreadCount() {
        try (Parallel par = new Parallel(2)) {
            int[] owner = new int[11];
            par.forRange(11, (s, e) -> {
                for (int i = s; i < e; i++) owner[i] = s;
            });
            assertThat(owner).containsExactly(0, 0, 0, 0, 0, 5, 5, 5, 5, 5, 5);
        }
    }

    @Test
    void aNestedLoopRunsItsChunksOnTheCallingThread() {
        try (Parallel par = new Parallel(2)) {
            AtomicLong sum = new AtomicLong();
            par.forRange(2, (s, e) -> par.forRange(100, (a, b) -> {
                for (int i = a; i < b; i++) sum.addAndGet(i);
            }));
            assertThat(sum.get()).isEqualTo(2 * 4950L);
        }
    }

    @Test
    void aWorkerFailureReachesTheCallerAndThePoolStaysUsable() {
        try (Parallel par = new Parallel(2)) {
            assertThatThrownBy(() -> par.forRange(2, (s, e) -> {
                if (s == 1) throw new IllegalStateException("chunk " + s);
            })).isInstanceOf(IllegalStateException.class).hasMessage("chunk 1");
            int[] hits = new int[4];
            par.forRange(4, (s, e) -> {
                for (int i = s; i < e; i++) hits[i]++;
            });
            assertThat(hits).containsOnly(1);
        }
    }

    @Test
    void workersWakeUpAfterParking() throws InterruptedException {
        try (Parallel par = new Parallel(2)) {
            Thread.sleep(5 + Parallel.SPIN_NANOS / 1_000_000);
            long[] seen = new long[2];
            par.forRange(2, (s, e) -> seen[s] = Thread.currentThread().threadId());
            assertThat(seen[1]).isNotEqualTo(seen[0]).isNotZero();
        }
    }
}
