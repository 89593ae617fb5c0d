package dev.cpt4j.data;

import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.io.PrintStream;

/** Where {@link Prepare} reports tokenization progress. */
public interface PrepareProgress extends AutoCloseable {
    /** Called once before tokenizing; {@code totalBytes} is the size on disk of the files still to tokenize. */
    void start(long totalBytes);

    /** Cumulative bytes (as stored), examples and tokens done so far. */
    void update(long bytes, long lines, long tokens);

    @Override
    void close();

    /** Reports nothing. */
    static PrepareProgress none() {
        return new PrepareProgress() {
            @Override public void start(long totalBytes) {}
            @Override public void update(long bytes, long lines, long tokens) {}
            @Override public void close() {}
        };
    }

    /** A console progress bar (MB done, MB/s, ETA, lines, tokens/s) on {@code out}, usually stderr. */
    static PrepareProgress console(PrintStream out) {
        return new PrepareProgress() {
            private ProgressBar bar;
            private long startNanos;

            @Override
            public void start(long totalBytes) {
                startNanos = System.nanoTime();
                bar = new ProgressBarBuilder().setTaskName("tokenizing")
                        .setInitialMax(Math.max(1, totalBytes))
                        .setUnit(" MB", 1 << 20)
                        .setStyle(ProgressBarStyle.ASCII)
                        .showSpeed(new java.text.DecimalFormat("#.0"))
                        .setUpdateIntervalMillis(500)
                        .setConsumer(new ConsoleProgressBarConsumer(out, 120))
                        .build();
            }

            @Override
            public void update(long bytes, long lines, long tokens) {
                if (bar == null) return;
                double s = Math.max(1e-9, (System.nanoTime() - startNanos) / 1e9);
                bar.stepTo(bytes);
                bar.setExtraMessage(" " + human(lines) + " lines, " + human((long) (tokens / s)) + " tok/s");
            }

            @Override
            public void close() {
                if (bar != null) bar.close();
                bar = null;
            }
        };
    }

    private static String human(long n) {
        if (n >= 10_000_000) return (n / 1_000_000) + "M";
        if (n >= 10_000) return (n / 1_000) + "k";
        return Long.toString(n);
    }
}
