package dev.cpt4j.train;

import java.io.PrintStream;
import java.time.Duration;
import java.util.Locale;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarConsumer;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * Where the trainer reports progress. Two forms for a person: {@link #console} draws a progress bar (step, loss, lr,
 * grad norm, tokens/s, ETA) for a terminal, with every event (evaluation, checkpoint) on a line of its own above it;
 * {@link #lines} prints one plain line per logged step and per event, as they happen, for a file, a pipe or a
 * scheduler's log (a bar there is carriage returns that never end a line). {@link #forTerminal} picks between them;
 * {@link #NONE} is silent (tests, library use).
 */
public interface Progress extends AutoCloseable {
    /** Called once before the first step; {@code startStep} > 0 when resuming. */
    void start(long startStep, long maxSteps);

    /** Called after every optimizer step with that step's numbers. */
    void step(long step, double loss, double lr, double gradNorm, double tokensPerS);

    /** Called at every logging step ({@code --logging_steps}) with what {@code metrics.jsonl} gets. */
    default void logged(Log log) {}

    /** A one-line message (evaluation results, checkpoints). */
    void message(String line);

    @Override
    void close();

    /**
     * One logged step: its mean loss since the last log, learning rate, gradient norm, tokens/s since the last log,
     * the run's elapsed seconds (continued across resumes) and the estimated seconds left (NaN: not known yet).
     */
    record Log(long step, long maxSteps, double loss, double lr, double gradNorm, double tokensPerS, double elapsedS,
               double etaS) {
        /** {@code step 40/2500  loss 4.1234  lr 1.95e-04  grad norm 0.512  1484 tok/s  elapsed 1m40s  ETA 1h42m}. */
        public String line() {
            return String.format(Locale.ROOT, "step %d/%d  loss %.4f  lr %.2e  grad norm %.3f  %.0f tok/s  elapsed %s  ETA %s",
                    step, maxSteps, loss, lr, gradNorm, tokensPerS, duration(elapsedS), Double.isFinite(etaS) ? duration(etaS) : "?");
        }
    }

    /** {@code 42s}, {@code 3m07s}, {@code 2h05m}. */
    static String duration(double seconds) {
        long s = Math.round(Math.max(0, seconds));
        if (s < 60) return s + "s";
        if (s < 3600) return String.format(Locale.ROOT, "%dm%02ds", s / 60, s % 60);
        return String.format(Locale.ROOT, "%dh%02dm", s / 3600, (s % 3600) / 60);
    }

    Progress NONE = new Progress() {
        public void start(long startStep, long maxSteps) {}

        public void step(long step, double loss, double lr, double gradNorm, double tokensPerS) {}

        public void message(String line) {}

        public void close() {}
    };

    /** The environment variable that overrides the choice of {@link #forTerminal}: {@code bar} or {@code lines}. */
    String ENV = "CPT4J_PROGRESS";
    /** The system property the launcher sets to whether stderr is a terminal ({@code true}/{@code false}). */
    String TERMINAL_PROPERTY = "cpt4j.stderr.terminal";

    /**
     * A bar when {@code out} (stderr) is a terminal, plain lines otherwise. Decided by {@value #ENV} ({@code bar} or
     * {@code lines}) when set, else by the launcher's {@value #TERMINAL_PROPERTY} (it checks {@code [ -t 2 ]}), else
     * by whether the JVM has an interactive console.
     */
    static Progress forTerminal(PrintStream out) {
        return terminal(System.getenv(ENV), System.getProperty(TERMINAL_PROPERTY)) ? console(out) : lines(out);
    }

    /** The decision of {@link #forTerminal} from the environment variable's and the property's values (may be null). */
    static boolean terminal(String env, String property) {
        if (env != null && !env.isBlank()) {
            String e = env.strip().toLowerCase(Locale.ROOT);
            if (e.equals("bar")) return true;
            if (e.equals("lines")) return false;
        }
        if (property != null && !property.isBlank()) return Boolean.parseBoolean(property.strip());
        java.io.Console c = System.console();
        return c != null && c.isTerminal();
    }

    /** One plain line per logged step and per message, flushed as printed. */
    static Progress lines(PrintStream out) {
        return new Progress() {
            public void start(long startStep, long maxSteps) {}

            public void step(long step, double loss, double lr, double gradNorm, double tokensPerS) {}

            public void logged(Log log) {
                out.println(log.line());
                out.flush();
            }

            public void message(String line) {
                out.println(line);
                out.flush();
            }

            public void close() {}
        };
    }

    /**
     * A progress bar on {@code out} (me.tongfei:progressbar, drawn by its own thread); a message clears the bar's line,
     * prints itself on a line of its own and redraws the bar below it. Bar and messages share one lock, so neither
     * ever lands inside the other.
     */
    static Progress console(PrintStream out) {
        return new Progress() {
            private final Object lock = new Object();
            private ProgressBar bar;
            private String drawn = "";                 // the bar's last rendering, without the carriage return

            private final ProgressBarConsumer consumer = new ProgressBarConsumer() {
                public int getMaxRenderedLength() {
                    return 150;
                }

                public void accept(String rendered) {
                    synchronized (lock) {
                        String s = rendered.length() > 150 ? rendered.substring(0, 150) : rendered;
                        out.print("\r" + s + " ".repeat(Math.max(0, drawn.length() - s.length())));
                        out.flush();
                        drawn = s;
                    }
                }

                public void close() {
                    synchronized (lock) {
                        if (!drawn.isEmpty()) out.println();
                        out.flush();
                        drawn = "";
                    }
                }
            };

            public void start(long startStep, long maxSteps) {
                bar = new ProgressBarBuilder().setTaskName("train").setInitialMax(maxSteps)
                        .setStyle(ProgressBarStyle.ASCII).setUpdateIntervalMillis(500).setUnit(" steps", 1)
                        .setConsumer(consumer).startsFrom(startStep, Duration.ZERO).build();
            }

            public void step(long step, double loss, double lr, double gradNorm, double tokensPerS) {
                if (bar == null) return;
                bar.stepTo(step);
                bar.setExtraMessage(String.format(Locale.ROOT, "loss %.4f lr %.2e |g| %.3f %.0f tok/s",
                        loss, lr, gradNorm, tokensPerS));
            }

            public void message(String line) {
                synchronized (lock) {
                    if (drawn.isEmpty()) out.println(line);
                    else out.print("\r" + " ".repeat(drawn.length()) + "\r" + line + "\n" + drawn);
                    out.flush();
                }
            }

            public void close() {
                if (bar != null) bar.close();
                bar = null;
            }
        };
    }
}
