package dev.cpt4j.train;

import java.io.PrintStream;
import java.time.Duration;
import java.util.Locale;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * Where the trainer reports progress. {@link #console} draws a progress bar (step, loss, lr, grad norm, tokens/s,
 * ETA) on a stream, normally stderr; {@link #NONE} is silent (tests, library use).
 */
public interface Progress extends AutoCloseable {
    /** Called once before the first step; {@code startStep} > 0 when resuming. */
    void start(long startStep, long maxSteps);

    /** Called after every optimizer step with that step's numbers. */
    void step(long step, double loss, double lr, double gradNorm, double tokensPerS);

    /** A one-line message (evaluation results, checkpoints). */
    void message(String line);

    @Override
    void close();

    Progress NONE = new Progress() {
        public void start(long startStep, long maxSteps) {}

        public void step(long step, double loss, double lr, double gradNorm, double tokensPerS) {}

        public void message(String line) {}

        public void close() {}
    };

    /** A progress bar on {@code out} (me.tongfei:progressbar); messages are printed above it. */
    static Progress console(PrintStream out) {
        return new Progress() {
            private ProgressBar bar;

            public void start(long startStep, long maxSteps) {
                bar = new ProgressBarBuilder().setTaskName("train").setInitialMax(maxSteps)
                        .setStyle(ProgressBarStyle.ASCII).setUpdateIntervalMillis(500).setUnit(" steps", 1)
                        .setConsumer(new ConsoleProgressBarConsumer(out, 150))
                        .startsFrom(startStep, Duration.ZERO).build();
            }

            public void step(long step, double loss, double lr, double gradNorm, double tokensPerS) {
                if (bar == null) return;
                bar.stepTo(step);
                bar.setExtraMessage(String.format(Locale.ROOT, "loss %.4f lr %.2e |g| %.3f %.0f tok/s",
                        loss, lr, gradNorm, tokensPerS));
            }

            public void message(String line) {
                out.println("\r" + line);
            }

            public void close() {
                if (bar != null) bar.close();
                bar = null;
            }
        };
    }
}
