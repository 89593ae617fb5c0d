package dev.cpt4j.tensor;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * The worker threads kernels split their work across. Work is always split into the same contiguous chunks for a
 * given thread count, so results are deterministic for a given (seed, thread count). Passed explicitly to every
 * kernel (no global pool).
 *
 * <p>A training step or a decode step hands the workers hundreds of short loops (a GEMM, a layernorm, a matrix-vector
 * product of a few hundred microseconds each). An executor's submit/future round trip (a queue, a park and an unpark
 * per task: tens of microseconds) is then a visible share of the step, so the workers here are persistent threads
 * that spin briefly on a job counter after each job and only park after {@link #SPIN_NANOS} without work. The
 * calling thread runs chunk 0 itself and spins until the others are done.
 *
 * <p>A {@code forRange} issued while another is running on the same instance (from inside a body, or from a second
 * thread) runs its chunks one after the other on the calling thread: the same chunks, so the same results.
 */
public final class Parallel implements AutoCloseable {
    /** A chunk of a parallel loop: handles indices [start, end). */
    @FunctionalInterface
    public interface RangeBody {
        void run(int start, int end);
    }

    /** How long an idle worker spins on the job counter before it parks (a decode or training step's gaps are shorter). */
    static final long SPIN_NANOS = 100_000;
    /**
     * How long the caller spins for the workers before it parks until the last one wakes it. Bounded, so that on an
     * oversubscribed machine a caller does not burn its time slice waiting for a worker that is not running.
     */
    static final long WAIT_SPIN_NANOS = 50_000;

    private final int threads;
    private final Thread[] workers;
    private final AtomicBoolean busy = new AtomicBoolean();
    private final AtomicInteger pending = new AtomicInteger();
    private volatile Job job = new Job(0, null, 0, 0, null); // replaced per parallel loop; workers wait for a new id
    private volatile boolean closed;

    /** One parallel loop. Immutable but for the first failure of a worker. */
    private static final class Job {
        final long id;
        final RangeBody body;
        final int n, chunks;
        final Thread caller;
        volatile Throwable failure;

        Job(long id, RangeBody body, int n, int chunks, Thread caller) {
            this.id = id;
            this.body = body;
            this.n = n;
            this.chunks = chunks;
            this.caller = caller;
        }
    }

    public Parallel(int threads) {
        if (threads < 1) throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        this.threads = threads;
        this.workers = new Thread[threads - 1];
        for (int w = 0; w < workers.length; w++) {
            int chunk = w + 1;
            Thread t = new Thread(() -> workLoop(chunk), "cpt4j-worker-" + chunk);
            t.setDaemon(true);
            workers[w] = t;
            t.start();
        }
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
        if (closed || !busy.compareAndSet(false, true)) {
            for (int c = 0; c < chunks; c++) body.run(start(n, chunks, c), start(n, chunks, c + 1));
            return;
        }
        try {
            pending.set(chunks - 1);
            Job j = new Job(job.id + 1, body, n, chunks, Thread.currentThread());
            job = j;
            for (int c = 1; c < chunks; c++) LockSupport.unpark(workers[c - 1]);
            Throwable mine = null;
            try {
                body.run(0, start(n, chunks, 1));
            } catch (Throwable t) {
                mine = t;
            }
            long spinStart = System.nanoTime();
            int spins = 0;
            while (pending.get() != 0) {
                if ((++spins & 63) == 0 && System.nanoTime() - spinStart > WAIT_SPIN_NANOS) LockSupport.parkNanos(this, 1_000_000);
                else Thread.onSpinWait();
            }
            Throwable f = mine != null ? mine : j.failure;
            if (f instanceof RuntimeException re) throw re;
            if (f instanceof Error er) throw er;
            if (f != null) throw new RuntimeException(f);
        } finally {
            busy.set(false);
        }
    }

    private static int start(int n, int chunks, int c) {
        return (int) ((long) n * c / chunks);
    }

    private void workLoop(int chunk) {
        long seen = 0;
        while (true) {
            long spinStart = System.nanoTime();
            int spins = 0;
            Job j;
            while ((j = job).id == seen && !closed) {
                if ((++spins & 255) == 0 && System.nanoTime() - spinStart > SPIN_NANOS) LockSupport.park(this);
                else Thread.onSpinWait();
            }
            if (closed) return;
            // A loop this worker had no chunk in may have been replaced already; it skips to the newest one (the
            // caller cannot move past a loop before every worker with a chunk in it has finished).
            seen = j.id;
            if (chunk < j.chunks) {
                try {
                    j.body.run(start(j.n, j.chunks, chunk), start(j.n, j.chunks, chunk + 1));
                } catch (Throwable t) {
                    j.failure = t;
                }
                if (pending.decrementAndGet() == 0) LockSupport.unpark(j.caller);
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        for (Thread t : workers) LockSupport.unpark(t);
    }
}
