package dev.cpt4j.data;

import java.util.BitSet;
import java.util.SplittableRandom;

/**
 * Which blocks are held out for validation. Count: {@code ceil(fraction × blocks)} as {@code datasets}'
 * {@code train_test_split(test_size=fraction)} computes it — so any fraction above 0 holds out at least one block —
 * but never all blocks: with fewer than 2 blocks nothing is held out, otherwise at least one block stays for training.
 * Choice: a uniform sample of that many block indices, drawn with Floyd's algorithm from a generator seeded by the seed
 * (memory O(blocks) bits, independent of the fraction), so the same corpus, block size and seed give the same split.
 */
final class ValidationSplit {
    private ValidationSplit() {}

    static long count(long blocks, double fraction) {
        if (fraction <= 0 || blocks < 2) return 0;
        // The small epsilon keeps e.g. 0.1 × 30 = 3.0000000000000004 from rounding up to 4.
        long n = (long) Math.ceil(fraction * blocks - 1e-9);
        return Math.max(1, Math.min(blocks - 1, n));
    }

    static BitSet choose(long blocks, long count, long seed) {
        if (blocks > Integer.MAX_VALUE) throw new IllegalArgumentException("too many blocks: " + blocks);
        BitSet chosen = new BitSet((int) blocks);
        SplittableRandom rng = new SplittableRandom(seed);
        // Floyd (Bentley & Floyd, CACM 1987): for j in [n-k, n): pick t in [0, j]; take t, or j if t is taken.
        for (long j = blocks - count; j < blocks; j++) {
            int t = (int) rng.nextLong(j + 1);
            chosen.set(chosen.get(t) ? (int) j : t);
        }
        return chosen;
    }
}
