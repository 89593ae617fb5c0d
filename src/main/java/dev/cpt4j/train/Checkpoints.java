package dev.cpt4j.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.UserError;
import dev.cpt4j.tensor.ParamLayout;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Training checkpoints: {@code output_dir/checkpoint-N/} with
 * <ul>
 *   <li>{@code trainable.safetensors} — every trainable tensor, by layout name (F32);</li>
 *   <li>{@code optimizer.safetensors} — AdamW moments {@code exp_avg.NAME}, {@code exp_avg_sq.NAME};</li>
 *   <li>{@code cpt4j_state.json} — optimizer/scheduler step, RNG state, the data cursor (opaque JSON from the data
 *       source); its presence marks the folder as a complete cpt4j checkpoint;</li>
 *   <li>{@code trainer_state.json} — HF Trainer's fields ({@code global_step}, {@code max_steps},
 *       {@code log_history}, …) for people and tools that read them.</li>
 * </ul>
 * A checkpoint is written into a hidden temporary folder and renamed into place atomically, so a killed run leaves
 * either a complete checkpoint or none. Only folders named {@code checkpoint-N} holding {@code cpt4j_state.json} are
 * ever rotated or replaced, and inside them only the files listed here are deleted: no user file is touched.
 */
public final class Checkpoints {
    public static final String PREFIX = "checkpoint-";
    public static final String STATE = "cpt4j_state.json";
    public static final String TRAINER_STATE = "trainer_state.json";
    public static final String WEIGHTS = "trainable.safetensors";
    public static final String OPTIMIZER = "optimizer.safetensors";
    static final List<String> OWN_FILES = List.of(STATE, TRAINER_STATE, WEIGHTS, OPTIMIZER);
    static final String TMP_PREFIX = ".tmp-" + PREFIX;
    private static final Pattern NAME = Pattern.compile("checkpoint-(\\d+)");
    private static final int FORMAT_VERSION = 1;
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private Checkpoints() {}

    /**
     * The training progress a checkpoint restores besides tensors.
     *
     * @param globalStep    optimizer steps completed (the N of checkpoint-N)
     * @param maxSteps      the run's total optimizer steps
     * @param schedule      the learning-rate schedule in force
     * @param seed          the run's seed
     * @param rng           RNG state (opaque JSON from the trainer)
     * @param dataCursor    data-source position (opaque JSON from the data source)
     * @param logHistory    logged records so far, HF's {@code log_history}
     * @param threads       thread count of the run (bit-identical resume needs the same)
     */
    public record State(long globalStep, int maxSteps, LrSchedule schedule, long seed, JsonNode rng, JsonNode dataCursor,
                        ArrayNode logHistory, int threads) {}

    /** The folder of the checkpoint after {@code step} optimizer steps. */
    public static Path dirFor(Path outputDir, long step) {
        return outputDir.resolve(PREFIX + step);
    }

    /**
     * Writes checkpoint-{@code state.globalStep()} atomically, then deletes the oldest of our checkpoints beyond
     * {@code saveTotalLimit} (0 = keep all). Returns the checkpoint folder.
     */
    public static Path save(Path outputDir, ParamLayout layout, float[] params, AdamW opt, State state, int saveTotalLimit) {
        Path dst = dirFor(outputDir, state.globalStep());
        try {
            Files.createDirectories(outputDir);
            if (Files.exists(dst) && !isOurs(dst))
                throw new UserError(dst + " exists and is not a cpt4j checkpoint; move it away or choose another --output_dir");
            Path tmp = Files.createTempDirectory(outputDir, TMP_PREFIX + state.globalStep() + "-");
            List<SafetensorsLite.Entry> weights = new ArrayList<>(), moments = new ArrayList<>();
            ArrayNode names = JSON.createArrayNode();
            for (ParamLayout.View v : layout.views()) {
                if (!opt.isTrainable(v)) continue;
                names.add(v.name());
                weights.add(new SafetensorsLite.Entry(v.name(), v.shape(), params, v.offset()));
                int so = opt.stateOffset(v);
                moments.add(new SafetensorsLite.Entry("exp_avg." + v.name(), v.shape(), opt.m(), so));
                moments.add(new SafetensorsLite.Entry("exp_avg_sq." + v.name(), v.shape(), opt.v(), so));
            }
            SafetensorsLite.write(tmp.resolve(WEIGHTS), weights, Map.of("format", "pt"));
            SafetensorsLite.write(tmp.resolve(OPTIMIZER), moments, Map.of("step", Long.toString(opt.stepCount())));

            ObjectNode hf = JSON.createObjectNode();
            hf.put("global_step", state.globalStep());
            hf.put("max_steps", state.maxSteps());
            hf.putNull("epoch");
            hf.set("log_history", state.logHistory() == null ? JSON.createArrayNode() : state.logHistory());
            hf.putNull("best_model_checkpoint");
            writeJson(tmp.resolve(TRAINER_STATE), hf);

            ObjectNode st = JSON.createObjectNode();     // written last: its presence means "complete"
            st.put("format", "cpt4j-checkpoint");
            st.put("version", FORMAT_VERSION);
            st.put("global_step", state.globalStep());
            st.put("max_steps", state.maxSteps());
            st.put("optimizer_step", opt.stepCount());
            ObjectNode sch = st.putObject("scheduler");
            sch.put("type", state.schedule().type().hfName());
            sch.put("warmup_steps", state.schedule().warmupSteps());
            sch.put("total_steps", state.schedule().totalSteps());
            sch.put("last_step", state.globalStep());
            st.put("seed", state.seed());
            st.set("rng", state.rng() == null ? JSON.nullNode() : state.rng());
            st.set("data_cursor", state.dataCursor() == null ? JSON.nullNode() : state.dataCursor());
            st.put("threads", state.threads());
            st.set("tensors", names);
            writeJson(tmp.resolve(STATE), st);
            fsyncDir(tmp);

            if (Files.exists(dst)) {
                // our own older checkpoint with the same step (a restarted run): move it aside, then replace
                Path old = Files.createTempDirectory(outputDir, TMP_PREFIX + "old-");
                Files.delete(old);
                Files.move(dst, old, StandardCopyOption.ATOMIC_MOVE);
                moveAtomic(tmp, dst);
                deleteOwn(old);
            } else {
                moveAtomic(tmp, dst);
            }
            fsyncDir(outputDir);
            rotate(outputDir, saveTotalLimit);
            return dst;
        } catch (IOException e) {
            throw new UserError("could not write checkpoint " + dst + ": " + e.getMessage()
                    + "; check free space and permissions of --output_dir", e);
        }
    }

    /**
     * Restores the trainable tensors into {@code params} and the optimizer moments into {@code opt} from
     * {@code dir}; returns the saved progress. Frozen tensors are not touched (they come from the base model).
     */
    public static State load(Path dir, ParamLayout layout, float[] params, AdamW opt) {
        if (!isOurs(dir))
            throw new UserError(dir + " is not a complete cpt4j checkpoint (no " + STATE + "); give a checkpoint-N "
                    + "folder written by cpt4j to --resume_from_checkpoint, or 'true' for the latest");
        try {
            JsonNode st = JSON.readTree(dir.resolve(STATE).toFile());
            if (st.path("version").asInt() != FORMAT_VERSION)
                throw new UserError(dir + ": checkpoint format version " + st.path("version") + " is not supported by "
                        + "this cpt4j (expects " + FORMAT_VERSION + ")");
            List<String> expected = new ArrayList<>();
            for (ParamLayout.View v : layout.views()) if (opt.isTrainable(v)) expected.add(v.name());
            List<String> saved = new ArrayList<>();
            st.path("tensors").forEach(n -> saved.add(n.asText()));
            if (!saved.equals(expected))
                throw new UserError(dir + ": the checkpoint trains " + saved.size() + " tensors " + summary(saved)
                        + " but this run trains " + expected.size() + " " + summary(expected)
                        + "; resume with the same --lora_rank/--trainable/--modules_to_save");
            SafetensorsLite.Read w = SafetensorsLite.read(dir.resolve(WEIGHTS));
            SafetensorsLite.Read o = SafetensorsLite.read(dir.resolve(OPTIMIZER));
            float[] m = new float[opt.trainableCount()], v = new float[opt.trainableCount()];
            for (ParamLayout.View view : layout.views()) {
                if (!opt.isTrainable(view)) continue;
                w.readInto(view.name(), view.shape(), params, view.offset());
                o.readInto("exp_avg." + view.name(), view.shape(), m, opt.stateOffset(view));
                o.readInto("exp_avg_sq." + view.name(), view.shape(), v, opt.stateOffset(view));
            }
            opt.restore(m, v, st.path("optimizer_step").asLong());
            JsonNode sch = st.path("scheduler");
            LrSchedule schedule = new LrSchedule(LrSchedule.Type.parse(sch.path("type").asText()),
                    sch.path("warmup_steps").asInt(), sch.path("total_steps").asInt());
            JsonNode hf = readJsonOrNull(dir.resolve(TRAINER_STATE));
            ArrayNode history = hf != null && hf.get("log_history") instanceof ArrayNode a ? a : JSON.createArrayNode();
            return new State(st.path("global_step").asLong(), st.path("max_steps").asInt(), schedule,
                    st.path("seed").asLong(), st.get("rng"), st.get("data_cursor"), history, st.path("threads").asInt());
        } catch (IOException e) {
            throw new UserError("could not read checkpoint " + dir + ": " + e.getMessage()
                    + "; resume from an earlier checkpoint-N folder", e);
        }
    }

    /** Our complete checkpoints in {@code outputDir}, oldest (lowest step) first. */
    public static List<Path> list(Path outputDir) {
        List<Path> out = new ArrayList<>();
        if (!Files.isDirectory(outputDir)) return out;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(outputDir, PREFIX + "*")) {
            for (Path p : ds) if (step(p) >= 0 && isOurs(p)) out.add(p);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        out.sort(Comparator.comparingLong(Checkpoints::step));
        return out;
    }

    /** The latest complete checkpoint in {@code outputDir}, or null. */
    public static Path latest(Path outputDir) {
        List<Path> all = list(outputDir);
        return all.isEmpty() ? null : all.get(all.size() - 1);
    }

    /** The checkpoint to resume from for {@code --resume_from_checkpoint}, or null when not resuming. */
    public static Path resolveResume(TrainOptions o) {
        if (o.resumeFromCheckpoint() == null) return null;
        if (o.resumeLatest()) {
            Path p = latest(o.outputDir());
            if (p == null)
                throw new UserError("--resume_from_checkpoint true: " + o.outputDir() + " holds no complete cpt4j "
                        + "checkpoint; drop the flag to start a new run");
            return p;
        }
        Path p = o.resumePath();
        if (!Files.isDirectory(p)) throw new UserError("--resume_from_checkpoint " + p + ": no such folder");
        if (!isOurs(p)) throw new UserError("--resume_from_checkpoint " + p + ": not a complete cpt4j checkpoint (no "
                + STATE + ")");
        return p;
    }

    /** The step N of a {@code checkpoint-N} path, −1 when the name does not match. */
    public static long step(Path p) {
        Matcher m = NAME.matcher(p.getFileName().toString());
        return m.matches() ? Long.parseLong(m.group(1)) : -1;
    }

    /** Deletes our oldest checkpoints so that at most {@code limit} remain (0 = keep all). */
    public static void rotate(Path outputDir, int limit) {
        if (limit <= 0) return;
        List<Path> all = list(outputDir);
        for (int i = 0; i < all.size() - limit; i++) deleteOwn(all.get(i));
    }

    /**
     * Checks {@code --output_dir} before a run and clears what a previous run left that is ours to clear.
     * Refuses a non-empty folder unless resuming or {@code --overwrite_output_dir}; with overwrite (and no resume)
     * deletes our own old checkpoints so that a later {@code --resume_from_checkpoint true} cannot pick up the
     * previous run. Always removes our stale temporary folders (from a killed save). User files are never touched.
     * Returns one line per thing done, for the log.
     */
    public static List<String> prepareOutputDir(TrainOptions o) {
        Path dir = o.outputDir();
        List<String> done = new ArrayList<>();
        if (Files.exists(dir) && !Files.isDirectory(dir))
            throw new UserError("--output_dir " + dir + " is a file; give a folder");
        if (!Files.isDirectory(dir)) return done;
        List<Path> entries = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
            for (Path p : ds) entries.add(p);
        } catch (IOException e) {
            throw new UserError("cannot list --output_dir " + dir + ": " + e.getMessage());
        }
        for (Path p : entries)
            if (p.getFileName().toString().startsWith(TMP_PREFIX) && Files.isDirectory(p)) {
                deleteOwn(p);
                done.add("removed an unfinished checkpoint " + p.getFileName() + " (interrupted save)");
            }
        entries.removeIf(p -> !Files.exists(p));
        if (entries.isEmpty() || o.resumeFromCheckpoint() != null) return done;
        List<Path> ours = list(dir);
        if (!o.overwriteOutputDir()) {
            if (!ours.isEmpty())
                throw new UserError("--output_dir " + dir + " holds checkpoints of an earlier run (latest "
                        + ours.get(ours.size() - 1).getFileName() + "); add --resume_from_checkpoint true to continue "
                        + "it, or --overwrite_output_dir to start over");
            throw new UserError("--output_dir " + dir + " is not empty and holds no cpt4j checkpoint; choose an empty "
                    + "folder or add --overwrite_output_dir (cpt4j only replaces its own files)");
        }
        for (Path p : ours) {
            deleteOwn(p);
            done.add("removed " + p.getFileName() + " of the earlier run (--overwrite_output_dir)");
        }
        return done;
    }

    static boolean isOurs(Path dir) {
        return Files.isRegularFile(dir.resolve(STATE));
    }

    /** Deletes only our own files in {@code dir}, then {@code dir} if that left it empty. */
    private static void deleteOwn(Path dir) {
        try {
            for (String f : OWN_FILES) Files.deleteIfExists(dir.resolve(f));
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
                if (ds.iterator().hasNext()) return; // something else in there: leave it
            }
            Files.deleteIfExists(dir);
        } catch (IOException e) {
            throw new UserError("could not delete old checkpoint " + dir + ": " + e.getMessage());
        }
    }

    private static void moveAtomic(Path src, Path dst) throws IOException {
        dev.cpt4j.io.AtomicFiles.publishable(src);
        try {
            Files.move(src, dst, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
            throw new IOException("the file system of " + dst.getParent() + " cannot rename atomically", e);
        }
    }

    private static void writeJson(Path file, JsonNode node) throws IOException {
        byte[] bytes = JSON.writeValueAsBytes(node);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ch.write(java.nio.ByteBuffer.wrap(bytes));
            ch.force(true);
        }
    }

    private static JsonNode readJsonOrNull(Path file) throws IOException {
        return Files.isRegularFile(file) ? JSON.readTree(file.toFile()) : null;
    }

    private static void fsyncDir(Path dir) {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException | UnsupportedOperationException ignored) {
            // not every platform can sync a directory; the atomic rename still guarantees all-or-nothing
        }
    }

    private static String summary(List<String> names) {
        Map<String, Integer> shown = new LinkedHashMap<>();
        for (String n : names) if (shown.size() < 3) shown.put(n, 1);
        return "(" + String.join(", ", shown.keySet()) + (names.size() > 3 ? ", …" : "") + ")";
    }
}
