package dev.cpt4j.train;

import dev.cpt4j.UserError;
import dev.cpt4j.io.TfEvents;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

/**
 * {@code --report_to tensorboard}: the training metrics as TensorBoard event files, with transformers'
 * {@code TensorBoardCallback} tags ({@code train/loss}, {@code train/learning_rate}, {@code train/grad_norm}, plus
 * {@code train/tokens_per_second}; {@code eval/loss}, {@code eval/perplexity}) in its folder,
 * {@code output_dir/runs/<Mon DD_HH-MM-SS>_<host>} (or {@code runs/<run_name>}, or {@code --logging_dir}).
 *
 * <p>A resumed run continues the newest run folder and first writes a {@code SessionLog START} at the step after its
 * checkpoint, so TensorBoard drops what the interrupted run logged past the checkpoint and the curve is one line.
 * {@code metrics.jsonl} is written either way; this is an extra view of it.
 */
public final class TensorBoardLog implements AutoCloseable {
    /** The folder under {@code --output_dir} that holds the run folders. */
    public static final String RUNS = "runs";

    private final TfEvents events;

    private TensorBoardLog(TfEvents events) {
        this.events = events;
    }

    /** The run folder of {@code o}: {@code --logging_dir}, or {@code runs/<run_name>}, or a new date_host one. */
    static Path runDir(TrainOptions o, boolean resuming) {
        if (o.loggingDir() != null) return o.loggingDir();
        Path runs = o.outputDir().resolve(RUNS);
        if (o.runName() != null) return runs.resolve(o.runName());
        if (resuming) {
            Path newest = newestRun(runs);
            if (newest != null) return newest;
        }
        String stamp = LocalDateTime.now().format(DateTimeFormatter.ofPattern("MMMdd_HH-mm-ss", Locale.ROOT));
        return runs.resolve(stamp + "_" + host());
    }

    private static Path newestRun(Path runs) {
        if (!Files.isDirectory(runs)) return null;
        try (Stream<Path> s = Files.list(runs)) {
            return s.filter(Files::isDirectory).max((a, b) -> {
                try {
                    return Files.getLastModifiedTime(a).compareTo(Files.getLastModifiedTime(b));
                } catch (IOException e) {
                    return 0;
                }
            }).orElse(null);
        } catch (IOException e) {
            return null;
        }
    }

    private static String host() {
        try {
            return java.net.InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            return "localhost";
        }
    }

    /** Opens a new event file for a run starting (or resuming) after step {@code startStep}. */
    static TensorBoardLog open(TrainOptions o, long startStep, boolean resuming) {
        Path dir = runDir(o, resuming);
        try {
            TfEvents e = TfEvents.create(dir, host());
            if (resuming) e.sessionStart(startStep + 1);
            return new TensorBoardLog(e);
        } catch (IOException e) {
            throw new UserError("cannot write TensorBoard events into " + dir + ": " + dev.cpt4j.io.AtomicFiles.reason(e)
                    + "; check --output_dir, or drop --report_to tensorboard");
        }
    }

    public Path file() {
        return events.file();
    }

    void log(MetricsLog.Train r) {
        Map<String, Double> v = new LinkedHashMap<>();
        v.put("train/loss", r.loss());
        v.put("train/learning_rate", r.lr());
        v.put("train/grad_norm", r.gradNorm());
        v.put("train/tokens_per_second", r.tokensPerS());
        write(r.step(), v);
    }

    void log(MetricsLog.Eval r) {
        Map<String, Double> v = new LinkedHashMap<>();
        v.put("eval/loss", r.evalLoss());
        v.put("eval/perplexity", r.perplexity());
        write(r.step(), v);
    }

    private void write(long step, Map<String, Double> values) {
        try {
            events.scalars(step, values);
        } catch (IOException e) {
            throw new UserError("cannot write " + events.file() + ": " + dev.cpt4j.io.AtomicFiles.reason(e));
        }
    }

    @Override
    public void close() {
        try {
            events.close();
        } catch (IOException e) {
            throw new UserError("cannot close " + events.file() + ": " + dev.cpt4j.io.AtomicFiles.reason(e));
        }
    }
}
