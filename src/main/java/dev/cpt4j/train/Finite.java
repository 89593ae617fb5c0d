package dev.cpt4j.train;

import dev.cpt4j.UserError;
import java.nio.file.Path;

/** Stops a run at the first NaN/Inf, naming the step and the last good checkpoint. */
public final class Finite {
    private Finite() {}

    /**
     * Throws a {@link UserError} when {@code value} is NaN or infinite.
     *
     * @param what           what was measured ("loss", "grad norm")
     * @param step           the optimizer step being computed (1-based, as logged)
     * @param lastCheckpoint the last complete checkpoint, or null
     */
    public static double require(double value, String what, long step, Path lastCheckpoint) {
        return require(value, what, step, lastCheckpoint, null);
    }

    /**
     * As {@link #require(double, String, long, Path)}, where {@code lastCheckpoint} is the newest <em>sound</em>
     * checkpoint (see {@link Checkpoints.Health}) and {@code skipped}, when not null, says which newer checkpoint is
     * not recommended and why.
     */
    public static double require(double value, String what, long step, Path lastCheckpoint, String skipped) {
        if (Double.isFinite(value)) return value;
        throw new UserError(what + " became " + (Double.isNaN(value) ? "NaN" : "infinite") + " at step " + step
                + "; no update was applied; "
                + (lastCheckpoint != null ? "the last good checkpoint is " + lastCheckpoint + " (resume with "
                        + "--resume_from_checkpoint " + lastCheckpoint + ")"
                        : skipped != null ? "no checkpoint of this run is sound" : "no checkpoint was written yet")
                + (skipped != null ? " (" + skipped + ")" : "")
                + "; lower --learning_rate or --max_grad_norm and resume");
    }
}
