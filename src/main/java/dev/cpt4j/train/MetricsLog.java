package dev.cpt4j.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.UserError;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * Training metrics as JSON Lines ({@code metrics.jsonl}): one object per logged step with {@code step},
 * {@code loss}, {@code lr}, {@code grad_norm}, {@code tokens_per_s}, {@code elapsed_s}, and per evaluation
 * {@code step}, {@code eval_loss}, {@code eval_ppl} (and {@code general_eval_loss}, {@code general_eval_ppl} with
 * {@code --general_eval_file}); when mixing sources a training line also has {@code tokens_by_source}. Each line is flushed as written so a killed run keeps its log;
 * a resumed run first drops the lines past the checkpoint it resumes from (they belong to the lost steps).
 */
public final class MetricsLog implements AutoCloseable {
    public static final String FILE = "metrics.jsonl";
    private static final ObjectMapper JSON = new ObjectMapper();

    /** One training record. */
    public record Train(long step, double loss, double lr, double gradNorm, double tokensPerS, double elapsedS) {}

    /** One evaluation record. */
    public record Eval(long step, double evalLoss) {
        public double perplexity() {
            return Math.exp(evalLoss);
        }
    }

    private final BufferedWriter out;
    private final Path file;

    private MetricsLog(Path file, BufferedWriter out) {
        this.file = file;
        this.out = out;
    }

    /**
     * Opens {@code dir/metrics.jsonl}: a new run truncates it; a run resumed at {@code resumeStep} (≥ 0) keeps the
     * lines with step ≤ resumeStep.
     */
    public static MetricsLog open(Path dir, long resumeStep) {
        Path file = dir.resolve(FILE);
        try {
            Files.createDirectories(dir);
            if (resumeStep >= 0 && Files.exists(file)) {
                List<String> keep = new ArrayList<>();
                for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                    if (line.isBlank()) continue;
                    try {
                        if (JSON.readTree(line).path("step").asLong(Long.MAX_VALUE) <= resumeStep) keep.add(line);
                    } catch (IOException torn) {
                        // a line cut by kill -9: drop it
                    }
                }
                StringBuilder kept = new StringBuilder();
                for (String line : keep) kept.append(line).append('\n');
                dev.cpt4j.io.AtomicFiles.writeString(file, kept.toString());
                return new MetricsLog(file, Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.APPEND));
            }
            return new MetricsLog(file, Files.newBufferedWriter(file, StandardCharsets.UTF_8,
                    StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE));
        } catch (IOException e) {
            throw new UserError("cannot write " + file + ": " + e.getMessage() + "; check --output_dir", e);
        }
    }

    public Path file() {
        return file;
    }

    public void log(Train r) {
        write(trainNode(r));
    }

    private static ObjectNode trainNode(Train r) {
        ObjectNode o = JSON.createObjectNode();
        o.put("step", r.step());
        o.put("loss", r.loss());
        o.put("lr", r.lr());
        o.put("grad_norm", r.gradNorm());
        o.put("tokens_per_s", r.tokensPerS());
        o.put("elapsed_s", r.elapsedS());
        return o;
    }

    public void log(Eval r) {
        log(r, null);
    }

    /**
     * As {@link #log(Eval)}, with {@code general_eval_loss} and {@code general_eval_ppl} of the general-domain
     * held-out text ({@code --general_eval_file}) when {@code generalLoss} is not null.
     */
    public void log(Eval r, Double generalLoss) {
        ObjectNode o = JSON.createObjectNode();
        o.put("step", r.step());
        o.put("eval_loss", r.evalLoss());
        o.put("eval_ppl", r.perplexity());
        if (generalLoss != null) {
            o.put("general_eval_loss", generalLoss);
            o.put("general_eval_ppl", Math.exp(generalLoss));
        }
        write(o);
    }

    /**
     * As {@link #log(Train)}, with {@code tokens_by_source}: the cumulative training tokens drawn from each source,
     * keyed by the source as given, when mixing ({@code bySource} not empty).
     */
    public void log(Train r, java.util.Map<String, Long> bySource) {
        ObjectNode o = trainNode(r);
        if (!bySource.isEmpty()) {
            ObjectNode t = o.putObject("tokens_by_source");
            bySource.forEach(t::put);
        }
        write(o);
    }

    /** "A 75.2 %, B 24.8 % of the tokens so far": the shares of {@code bySource}, in its order. */
    public static String shares(java.util.Map<String, Long> bySource) {
        long total = 0;
        for (long v : bySource.values()) total += v;
        StringBuilder sb = new StringBuilder();
        for (var e : bySource.entrySet()) {
            if (!sb.isEmpty()) sb.append(", ");
            sb.append(e.getKey()).append(' ').append(String.format(java.util.Locale.ROOT, "%.1f %%",
                    total == 0 ? 0.0 : 100.0 * e.getValue() / total));
        }
        return sb.append(" of the tokens so far").toString();
    }

    private void write(JsonNode o) {
        try {
            out.write(JSON.writeValueAsString(o));
            out.write('\n');
            out.flush();
        } catch (IOException e) {
            throw new UserError("cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    /** Reads a metrics file back: training records and evaluation records, in file order. */
    public static List<JsonNode> read(Path file) {
        List<JsonNode> out = new ArrayList<>();
        try {
            for (String line : Files.readAllLines(file, StandardCharsets.UTF_8))
                if (!line.isBlank()) out.add(JSON.readTree(line));
        } catch (IOException e) {
            throw new UserError("cannot read " + file + ": " + e.getMessage(), e);
        }
        return out;
    }

    @Override
    public void close() {
        try {
            out.close();
        } catch (IOException e) {
            throw new UserError("cannot close " + file + ": " + e.getMessage(), e);
        }
    }
}
