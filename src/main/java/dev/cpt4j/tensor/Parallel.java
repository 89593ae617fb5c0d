package dev.cpt4j.tensor;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.ArrayList;
import java.util.List;

/**
 * The worker threads kernels split their work across. Work is always split into the same contiguous chunks for a
 * given thread count, so results are deterministic for a given (seed, thread count). Passed explicitly to every
 * kernel (no global pool).
 */
public final class Parallel implements AutoCloseable {
    /** A chunk of a parallel loop: handles indices [start, end). */
    @FunctionalInterface
    public interface RangeBody {
        void run(int start, int end);
    }

    private final int threads;
    private final ExecutorService pool;

    public Parallel(int threads) {
        if (threads < 1) throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        this.threads = threads;
        this.pool = threads == 1 ? null : Executors.newFixedThreadPool(threads - 1, r -> {
            Thread t = new Thread(r, "cpt4j-worker");
            t.setDaemon(true);
            return t;
        });
    }

    public static Parallel serial() {
        return new Parallel(1);
    }

    public static Parallel allCores() {
        return new Parallel(Runtime.getRuntime().availableProcessors());
    }

    public int threads() {
        return threads;
    }

    /** Splits [0, n) into at most threads() contiguous chunks; the calling thread runs the first chunk. */
    public void forRange(int n, RangeBody body) {
        int chunks = Math.min(threads, n);
        if (chunks <= 1) {
            if (n > 0) body.run(0, n);
            return;
        }
        List<Future<?>> futures = new ArrayList<>(chunks - 1);
        for (int c = 1; c < chunks; c++) {
            int s = (int) ((long) n * c / chunks), e = (int) ((long) n * (c + 1) / chunks);
            futures.add(pool.submit(() -> body.run(s, e)));
        }
        body.run(0, (int) ((long) n / chunks));
        try {
            for (Future<?> f : futures) f.get();
        } catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
            throw new RuntimeException(ex);
        } catch (java.util.concurrent.ExecutionException ex) {
            Throwable c = ex.getCause();
            if (c instanceof RuntimeException re) throw re;
            if (c instanceof Error er) throw er;
            throw new RuntimeException(c);
        }
    }

    @Override
    public void close() {
        if (pool != null) pool.shutdownNow();
    }
}
