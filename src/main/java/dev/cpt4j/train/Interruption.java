package dev.cpt4j.train;

import java.nio.file.Path;

/**
 * A request to stop a run (SIGTERM, SIGINT: the CLI's shutdown hook calls {@link #request()}), and what the run
 * has reached, for the hook's last words. The trainer looks at the request only between optimizer steps, so it
 * stops at a step boundary, never mid-update; it then writes a checkpoint of that step when one fits in the time
 * left of {@link #BUDGET_NANOS}, and throws {@link Trainer.Interrupted}. Thread-safe: fields are volatile, written
 * by the training thread and read by the hook.
 */
public final class Interruption {
    /** How long a stop may take in all (Docker's default grace before SIGKILL is 10 s). */
    public static final long BUDGET_NANOS = 8_000_000_000L;

    private volatile long deadline;
    private volatile boolean requested, training;
    private volatile long step;
    private volatile Path lastCheckpoint;

    /** Asks the run to stop at the next step boundary, within {@link #BUDGET_NANOS} from now. */
    public void request() {
        deadline = System.nanoTime() + BUDGET_NANOS;
        requested = true;
    }

    public boolean requested() {
        return requested;
    }

    /** Nanoseconds left of the stop's budget (meaningful once requested). */
    public long nanosLeft() {
        return deadline - System.nanoTime();
    }

    /** True while the run is in its step loop, where it will answer a request (so the hook should wait). */
    public boolean training() {
        return training;
    }

    /** Optimizer steps completed so far. */
    public long step() {
        return step;
    }

    /** The newest checkpoint written or resumed from, or null. */
    public Path lastCheckpoint() {
        return lastCheckpoint;
    }

    void progress(long step, Path lastCheckpoint, boolean training) {
        this.step = step;
        this.lastCheckpoint = lastCheckpoint;
        this.training = training;
    }

    /** The line printed when a run stops on a signal at a step boundary after {@code step} steps. */
    public static String message(long step, Path lastCheckpoint) {
        return "interrupted at step " + step + "; " + where(lastCheckpoint);
    }

    /** The line printed when the run could not reach a step boundary in time. */
    public String lateMessage() {
        return "interrupted during step " + (step + 1) + " (it did not end within " + BUDGET_NANOS / 1_000_000_000L
                + " s; nothing of it is kept); " + where(lastCheckpoint);
    }

    private static String where(Path lastCheckpoint) {
        return lastCheckpoint != null
                ? "the last checkpoint is " + lastCheckpoint + "; resume with --resume_from_checkpoint true"
                : "no checkpoint was written yet; run the same command again to start over";
    }
}
