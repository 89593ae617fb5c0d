package dev.cpt4j.data;

import java.util.SplittableRandom;

/**
 * Serves batches of B blocks from a split. With shuffling, each epoch visits every block once in an order drawn by
 * Fisher–Yates from a generator seeded by (seed, epoch) — so the order of any epoch can be recomputed from the seed
 * alone, and {@link #state()} / {@link #restore(State)} resume exactly where training stopped. A batch that runs past
 * the end of an epoch continues with the next epoch's order, so every batch is full.
 * Not thread-safe.
 */
public final class BatchCursor {
    /**
     * Where the cursor stands: the next block served is number {@code position} of epoch {@code epoch}'s order.
     *
     * @param epoch    0-based epoch
     * @param position blocks of this epoch already served
     */
    public record State(long epoch, long position) {}

    private final TokenBlocks blocks;
    private final int batchSize;
    private final long seed;
    private final boolean shuffle;
    private final int n;
    private int[] order; // (N) block ids of the current epoch
    private long epoch;
    private long position;

    /** A cursor over {@code blocks}, B = {@code batchSize}; {@code shuffle} false serves blocks in stored order. */
    public BatchCursor(TokenBlocks blocks, int batchSize, long seed, boolean shuffle) {
        if (batchSize < 1) throw new IllegalArgumentException("batch size must be >= 1, got " + batchSize);
        if (blocks.blockCount() < 1) throw new IllegalArgumentException("no blocks to serve");
        if (blocks.blockCount() > Integer.MAX_VALUE) throw new IllegalArgumentException("too many blocks: " + blocks.blockCount());
        this.blocks = blocks;
        this.batchSize = batchSize;
        this.seed = seed;
        this.shuffle = shuffle;
        this.n = (int) blocks.blockCount();
        restore(new State(0, 0));
    }

    /** B. */
    public int batchSize() {
        return batchSize;
    }

    /** T. */
    public int blockSize() {
        return blocks.blockSize();
    }

    /** Fills {@code dst[0, B*T)} with the next B blocks, row-major (B, T). */
    public void next(int[] dst) {
        next(dst, null);
    }

    /**
     * As {@link #next(int[])}, also filling {@code docStarts[0, B*T)} with each token's document start in its block
     * ({@link TokenBlocks#readDocStarts}) when it is not null.
     */
    public void next(int[] dst, int[] docStarts) {
        int T = blocks.blockSize();
        if (dst.length < batchSize * T) throw new IllegalArgumentException("batch buffer holds " + dst.length + " ids, needs " + batchSize * T);
        for (int b = 0; b < batchSize; b++) {
            if (position == n) {
                epoch++;
                position = 0;
                order = orderOf(epoch);
            }
            blocks.readBlock(order[(int) position], dst, b * T);
            if (docStarts != null) blocks.readDocStarts(order[(int) position], docStarts, b * T);
            position++;
        }
    }

    /** The block ids the next {@code next} call will serve (for logs and tests). */
    public long[] peekIds() {
        long[] ids = new long[batchSize];
        long e = epoch, p = position;
        int[] o = order;
        for (int b = 0; b < batchSize; b++) {
            if (p == n) {
                e++;
                p = 0;
                o = orderOf(e);
            }
            ids[b] = o[(int) p++];
        }
        return ids;
    }

    public State state() {
        return new State(epoch, position);
    }

    /** Continues exactly where {@code s} was taken (same blocks, seed and batch size assumed). */
    public void restore(State s) {
        if (s.epoch() < 0 || s.position() < 0 || s.position() > n) {
            throw new IllegalArgumentException("cursor state " + s + " does not fit a split of " + n + " blocks");
        }
        if (order == null || s.epoch() != epoch) order = orderOf(s.epoch());
        epoch = s.epoch();
        position = s.position();
    }

    private int[] orderOf(long e) {
        int[] o = new int[n];
        for (int i = 0; i < n; i++) o[i] = i;
        if (!shuffle) return o;
        SplittableRandom rng = new SplittableRandom(mix64(seed ^ mix64(e + 0x9E3779B97F4A7C15L)));
        for (int i = n - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int t = o[i];
            o[i] = o[j];
            o[j] = t;
        }
        return o;
    }

    /** Stafford's 64-bit finalizer (variant 13): decorrelates nearby seeds such as consecutive epochs. */
    static long mix64(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
