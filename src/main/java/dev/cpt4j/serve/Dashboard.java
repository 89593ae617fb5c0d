package dev.cpt4j.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/**
 * The training dashboard's data: a training output directory's {@code metrics.jsonl} (the trainer's log: training
 * records with step, loss, lr, grad_norm, tokens_per_s, elapsed_s; evaluation records with eval_loss, eval_ppl),
 * re-read on every request, plus {@code max_steps} from the newest checkpoint's trainer_state.json for the ETA. A
 * line cut by a running writer is skipped. The directory is fixed by {@code --watch}; requests cannot name one.
 */
final class Dashboard {
    private final Path dir;

    Dashboard(Path dir) {
        this.dir = dir;
    }

    ObjectNode snapshot() {
        ObjectNode o = OpenAiServer.JSON.createObjectNode();
        o.put("watching", dir != null);
        if (dir == null) return o;
        o.put("run", dir.toAbsolutePath().normalize().getFileName() == null ? dir.toString()
                : dir.toAbsolutePath().normalize().getFileName().toString());
        ArrayNode train = o.putArray("train"), eval = o.putArray("eval");
        Path f = dir.resolve("metrics.jsonl");
        if (Files.isRegularFile(f)) {
            try {
                for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) {
                    if (line.isBlank()) continue;
                    JsonNode r;
                    try {
                        r = OpenAiServer.JSON.readTree(line);
                    } catch (IOException torn) {
                        continue;
                    }
                    if (r == null || !r.isObject()) continue;
                    if (r.has("eval_loss")) eval.add(r);
                    else if (r.has("loss")) train.add(r);
                }
            } catch (IOException e) {
                o.put("error", "cannot read metrics.jsonl: " + e.getMessage());
            }
        }
        long maxSteps = maxSteps();
        if (maxSteps > 0) o.put("max_steps", maxSteps);
        if (!train.isEmpty()) {
            JsonNode last = train.get(train.size() - 1);
            long step = last.path("step").asLong();
            double elapsed = last.path("elapsed_s").asDouble();
            o.put("step", step);
            o.put("lr", last.path("lr").asDouble());
            o.put("loss", last.path("loss").asDouble());
            if (maxSteps > 0 && step > 0 && step < maxSteps) o.put("eta_s", elapsed / step * (maxSteps - step));
            if (maxSteps > 0 && step >= maxSteps) o.put("eta_s", 0);
        }
        return o;
    }

    /** The newest checkpoint-N directory holding a PEFT adapter (adapter_config.json), or null. */
    Path newestAdapterCheckpoint() {
        if (dir == null || !Files.isDirectory(dir)) return null;
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().matches("checkpoint-\\d+"))
                    .filter(p -> Files.isRegularFile(p.resolve("adapter_config.json")))
                    .max((a, b) -> Long.compare(num(a), num(b))).orElse(null);
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    /** max_steps of the newest checkpoint-N/trainer_state.json, or 0. */
    private long maxSteps() {
        if (!Files.isDirectory(dir)) return 0;
        try (Stream<Path> s = Files.list(dir)) {
            List<Path> cks = s.filter(p -> p.getFileName().toString().matches("checkpoint-\\d+"))
                    .sorted((a, b) -> Long.compare(num(b), num(a))).toList();
            for (Path ck : cks) {
                Path st = ck.resolve("trainer_state.json");
                if (!Files.isRegularFile(st)) continue;
                long m = OpenAiServer.JSON.readTree(st.toFile()).path("max_steps").asLong(0);
                if (m > 0) return m;
            }
        } catch (IOException | RuntimeException e) {
            return 0;
        }
        return 0;
    }

    private static long num(Path p) {
        String n = p.getFileName().toString();
        return Long.parseLong(n.substring(n.lastIndexOf('-') + 1));
    }
}
