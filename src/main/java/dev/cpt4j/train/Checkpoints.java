package dev.cpt4j.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.UserError;
import dev.cpt4j.dist.Collective;
import dev.cpt4j.io.AtomicFiles;
import dev.cpt4j.io.DType;
import dev.cpt4j.io.Safetensors;
import dev.cpt4j.io.TensorInfo;
import dev.cpt4j.tensor.ParamLayout;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Training checkpoints: {@code output_dir/checkpoint-N/} with
 * <ul>
 *   <li>{@code trainable.safetensors} — every trainable tensor, by layout name (F32);</li>
 *   <li>{@code optimizer.safetensors} — AdamW moments {@code exp_avg.NAME}, {@code exp_avg_sq.NAME};</li>
 *   <li>{@code trainer_state.json} — HF Trainer's fields ({@code global_step}, {@code max_steps},
 *       {@code log_history}, …) for people and tools that read them;</li>
 *   <li>what the run's {@link Extra} writes: the PEFT adapter (or HF model) and tokenizer files, so the folder can be
 *       given to {@code --adapter} as peft checkpoints of HF Trainer can;</li>
 *   <li>{@code cpt4j_state.json}, written last — optimizer/scheduler step, RNG state, the data cursor, the
 *       {@link LogWindow} (losses since the last logged step), the size and
 *       CRC32C of every other file, and the {@link Health} of the weights; its presence marks the folder complete.</li>
 * </ul>
 * All files go through {@link AtomicFiles} into a hidden temporary folder that is renamed into place, so a killed
 * run leaves either a complete checkpoint or none, and a failed write (a full disk) removes the temporary folder and
 * names the file and the OS's reason. A checkpoint is written only when every trainable weight and AdamW moment is
 * finite; on resume each file's size and CRC32C are checked against the manifest and the tensors are read through the
 * one safetensors reader ({@link Safetensors}, which checks shapes and refuses overlapping offsets), so a damaged
 * or truncated file is refused by name, together with the newest intact earlier checkpoint. Only folders named
 * {@code checkpoint-N} holding {@code cpt4j_state.json} are ever rotated or replaced, and inside them only the files
 * their manifest lists are deleted: no user file is touched.
 *
 * <p>Under data parallelism with the AdamW state sharded over ranks (ZeRO-1, {@link AdamW#shard}) the moments are
 * not in {@code optimizer.safetensors} but in one file per rank, {@code optimizer-rank-R-of-N.safetensors} (flat
 * {@code exp_avg}, {@code exp_avg_sq} of the rank's range of trainable elements, the range in the metadata); each
 * rank writes its own into rank 0's temporary folder, rank 0 writes the rest and the manifest (which lists and
 * checksums every shard, and records {@code ranks}) and renames the folder into place: still all or nothing. Such a
 * checkpoint resumes with the same number of ranks; a single-process checkpoint resumes with any number.
 */
public final class Checkpoints {
    public static final String PREFIX = "checkpoint-";
    public static final String STATE = "cpt4j_state.json";
    public static final String TRAINER_STATE = "trainer_state.json";
    public static final String WEIGHTS = "trainable.safetensors";
    public static final String OPTIMIZER = "optimizer.safetensors";
    static final List<String> OWN_FILES = List.of(STATE, TRAINER_STATE, WEIGHTS, OPTIMIZER);
    static final String TMP_PREFIX = ".tmp-" + PREFIX;

    /** The optimizer shard file of {@code rank} of {@code ranks} (ZeRO-1 checkpoints). */
    public static String shardFile(int rank, int ranks) {
        return "optimizer-rank-" + rank + "-of-" + ranks + ".safetensors";
    }
    private static final Pattern NAME = Pattern.compile("checkpoint-(\\d+)");
    /** 2 added the per-file checksums and the health record; 1 (no checksums) is still read. */
    private static final int FORMAT_VERSION = 2;
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private Checkpoints() {}

    /** Writes what a checkpoint holds besides the training state (adapter or model files) into a folder. */
    @FunctionalInterface
    public interface Extra {
        Extra NONE = dir -> { };

        void writeInto(Path dir);
    }

    /**
     * Whether a checkpoint's weights are fit to continue from. Every checkpoint written is finite; a finite one is
     * still <em>exploded</em> when the training loss of its step is above {@link #LOSS_FACTOR} × the run's first-step
     * loss, or the root-mean-square of its trainable weights is above {@link #RMS_FACTOR} × their value before the
     * first step. A NaN stop recommends only a sound checkpoint. The references travel with the checkpoints, so a
     * resumed run judges against its original start.
     *
     * @param loss           training loss of the checkpoint's step (NaN when unknown)
     * @param firstLoss      training loss of step 1 of the run
     * @param weightsRms     RMS of the trainable weights at the checkpoint
     * @param startRms       RMS of the trainable weights before step 1
     */
    public record Health(double loss, double firstLoss, double weightsRms, double startRms) {
        public static final double LOSS_FACTOR = 2, RMS_FACTOR = 100;

        /** Null when sound, else why the weights count as exploded. */
        public String explosion() {
            if (Double.isFinite(loss) && Double.isFinite(firstLoss) && firstLoss > 0 && loss > LOSS_FACTOR * firstLoss)
                return String.format(Locale.ROOT, "its loss %.4g is over %.0f× the first step's %.4g", loss, LOSS_FACTOR, firstLoss);
            if (startRms > 0 && weightsRms > RMS_FACTOR * startRms)
                return String.format(Locale.ROOT, "its weights grew %.0f× (RMS %.4g, %.4g at the start)",
                        weightsRms / startRms, weightsRms, startRms);
            return null;
        }

        public boolean sound() {
            return explosion() == null;
        }
    }

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
     * @param threads       thread count of the run (recorded; training numbers do not depend on it, docs/LIMITS.md)
     * @param health        the weights' health, or null when not judged (a checkpoint of format 1)
     * @param logWindow     the training losses since the last logged step, which the next logged mean includes
     * @param elapsedS      seconds of training so far, over every run that led to this checkpoint ({@code elapsed_s}
     *                      of {@code metrics.jsonl} continues from it on resume); 0 when not recorded
     */
    public record State(long globalStep, int maxSteps, LrSchedule schedule, long seed, JsonNode rng, JsonNode dataCursor,
                        ArrayNode logHistory, int threads, Health health, LogWindow logWindow, double elapsedS) {
        public State {
            if (logWindow == null) logWindow = LogWindow.EMPTY;
            if (!(elapsedS >= 0 && Double.isFinite(elapsedS))) elapsedS = 0;
        }

        public State(long globalStep, int maxSteps, LrSchedule schedule, long seed, JsonNode rng, JsonNode dataCursor,
                     ArrayNode logHistory, int threads, Health health, LogWindow logWindow) {
            this(globalStep, maxSteps, schedule, seed, rng, dataCursor, logHistory, threads, health, logWindow, 0);
        }

        public State(long globalStep, int maxSteps, LrSchedule schedule, long seed, JsonNode rng, JsonNode dataCursor,
                     ArrayNode logHistory, int threads, Health health) {
            this(globalStep, maxSteps, schedule, seed, rng, dataCursor, logHistory, threads, health, LogWindow.EMPTY);
        }

        public State(long globalStep, int maxSteps, LrSchedule schedule, long seed, JsonNode rng, JsonNode dataCursor,
                     ArrayNode logHistory, int threads) {
            this(globalStep, maxSteps, schedule, seed, rng, dataCursor, logHistory, threads, null);
        }
    }

    /**
     * The steps since the last logged one: their summed training loss and their number. A logged {@code loss} is the
     * mean over the steps since the previous log (as HF Trainer's), so a checkpoint between two logging steps carries
     * the partial sum, and the first log after a resume is the uninterrupted run's, bit for bit. (HF Trainer restarts
     * the window at a resume, so its first log after one averages fewer steps.) The sum is stored as the hex form of
     * the double ({@link Double#toHexString}): exact by construction, not only by round-trip.
     */
    public record LogWindow(double lossSum, long steps) {
        public static final LogWindow EMPTY = new LogWindow(0, 0);
    }

    /** The first non-finite value among the trainable weights and moments (null: none) and the weights' RMS. */
    public record Scan(String nonFinite, double weightsRms) {}

    /** Scans every trainable weight and both AdamW moments of it. */
    public static Scan scan(ParamLayout layout, float[] params, AdamW opt) {
        double sumSq = 0;
        long n = 0;
        String bad = null;
        for (ParamLayout.View v : layout.views()) {
            if (!opt.isTrainable(v)) continue;
            int off = v.offset(), so = opt.stateOffset(v), len = v.size();
            double s = 0;
            for (int i = 0; i < len; i++) {
                double x = params[off + i];
                s += x * x;
            }
            if (bad == null) bad = firstNonFinite(params, off, len, "weight " + v.name());
            // the moments this optimizer keeps of the view (all of them unless sharded)
            int a0 = Math.max(so, opt.shardStart()), a1 = Math.min(so + len, opt.shardStart() + opt.shardLength());
            if (a0 < a1) {
                int i0 = a0 - opt.shardStart();
                if (bad == null) bad = firstNonFinite(opt.m(), i0, a1 - a0, a0 - so, "AdamW exp_avg of " + v.name());
                if (bad == null) bad = firstNonFinite(opt.v(), i0, a1 - a0, a0 - so, "AdamW exp_avg_sq of " + v.name());
            }
            sumSq += s;
            n += len;
        }
        return new Scan(bad, n == 0 ? 0 : Math.sqrt(sumSq / n));
    }

    private static String firstNonFinite(float[] a, int off, int len, String what) {
        return firstNonFinite(a, off, len, 0, what);
    }

    /** As above, element numbers counted from {@code base}. */
    private static String firstNonFinite(float[] a, int off, int len, int base, String what) {
        for (int i = 0; i < len; i++)
            if (!Float.isFinite(a[off + i]))
                return what + " holds " + (Float.isNaN(a[off + i]) ? "NaN" : "an infinity") + " (element " + (base + i) + ")";
        return null;
    }

    /** The folder of the checkpoint after {@code step} optimizer steps. */
    public static Path dirFor(Path outputDir, long step) {
        return outputDir.resolve(PREFIX + step);
    }

    /**
     * Writes checkpoint-{@code state.globalStep()} atomically, then deletes the oldest of our checkpoints beyond
     * {@code saveTotalLimit} (0 = keep all). Returns the checkpoint folder.
     */
    public static Path save(Path outputDir, ParamLayout layout, float[] params, AdamW opt, State state, int saveTotalLimit) {
        return save(outputDir, layout, params, opt, state, saveTotalLimit, Extra.NONE, AtomicFiles.Channels.DIRECT);
    }

    /**
     * As {@link #save(Path, ParamLayout, float[], AdamW, State, int)}, with {@code extra} writing its files into the
     * checkpoint and the checkpoint's own tensor files passing through {@code via}. Refuses (nothing written) when a
     * trainable weight or moment is not finite. On a failed write every temporary file is removed and the error
     * names the file, the OS's reason and the previous checkpoint, which stays as it was.
     */
    public static Path save(Path outputDir, ParamLayout layout, float[] params, AdamW opt, State state, int saveTotalLimit,
                            Extra extra, AtomicFiles.Channels via) {
        return save(outputDir, layout, params, opt, state, saveTotalLimit, extra, via, Collective.SINGLE);
    }

    /**
     * As {@link #save(Path, ParamLayout, float[], AdamW, State, int, Extra, AtomicFiles.Channels)} called by every
     * rank of {@code comm} with its (sharded) optimizer: each rank writes its optimizer shard, rank 0 the rest. With
     * an unsharded optimizer only rank 0 may call the one-rank form. Returns the checkpoint folder on every rank.
     */
    public static Path save(Path outputDir, ParamLayout layout, float[] params, AdamW opt, State state, int saveTotalLimit,
                            Extra extra, AtomicFiles.Channels via, Collective comm) {
        boolean sharded = comm.size() > 1;
        Path dst = dirFor(outputDir, state.globalStep());
        Scan scan = scan(layout, params, opt);
        if (sharded) {
            long[] bad = {scan.nonFinite() != null ? 1 : 0};
            comm.allReduceMax(bad);
            if (bad[0] != 0 && scan.nonFinite() == null)
                throw new UserError("not writing " + dst + ": an AdamW moment of another rank is not finite after step "
                        + state.globalStep() + " (see rank 0's message)");
        }
        if (scan.nonFinite() != null)
            throw new UserError("not writing " + dst + ": the " + scan.nonFinite() + " after step " + state.globalStep()
                    + "; lower --learning_rate or --max_grad_norm and resume from an earlier checkpoint");
        Path tmp = null;
        try {
            if (comm.isRoot()) {
                UserError refused = null;
                try {
                    Files.createDirectories(outputDir);
                    if (Files.exists(dst) && !isOurs(dst))
                        refused = new UserError(dst + " exists and is not a cpt4j checkpoint; move it away or choose "
                                + "another --output_dir");
                    else tmp = Files.createTempDirectory(outputDir, TMP_PREFIX + state.globalStep() + "-");
                } catch (IOException e) {
                    refused = failed(outputDir, dst, null, AtomicFiles.reason(e), e);
                }
                if (refused != null) {
                    if (sharded) shareFolder(comm, null, dst);          // the others learn of it, and stop too
                    throw new ShardFailed(refused.getMessage(), refused);
                }
            }
            if (sharded) {
                tmp = shareFolder(comm, tmp, dst);
                if (tmp == null) throw new ShardFailed("rank 0 could not start checkpoint " + dst + " (see its message)", null);
                writeShard(comm, tmp, dst, opt, via);
                if (!comm.isRoot()) {
                    long[] done = {0};
                    comm.allReduceMax(done);   // rank 0's result: 0 when the checkpoint is in place
                    if (done[0] != 0) throw new UserError("rank 0 could not finish checkpoint " + dst + " (see its message)");
                    return dst;
                }
            }
            List<Safetensors.FloatTensor> weights = new ArrayList<>(), moments = new ArrayList<>();
            ArrayNode names = JSON.createArrayNode();
            for (ParamLayout.View v : layout.views()) {
                if (!opt.isTrainable(v)) continue;
                names.add(v.name());
                weights.add(Safetensors.FloatTensor.of(v.name(), v.shape(), params, v.offset()));
                int so = opt.stateOffset(v);
                if (sharded) continue;
                moments.add(Safetensors.FloatTensor.of("exp_avg." + v.name(), v.shape(), opt.m(), so));
                moments.add(Safetensors.FloatTensor.of("exp_avg_sq." + v.name(), v.shape(), opt.v(), so));
            }
            Safetensors.write(tmp.resolve(WEIGHTS), weights, Map.of("format", "pt"), DType.F32, via);
            if (!sharded)
                Safetensors.write(tmp.resolve(OPTIMIZER), moments, Map.of("step", Long.toString(opt.stepCount())), DType.F32, via);

            ObjectNode hf = JSON.createObjectNode();
            hf.put("global_step", state.globalStep());
            hf.put("max_steps", state.maxSteps());
            hf.putNull("epoch");
            hf.set("log_history", state.logHistory() == null ? JSON.createArrayNode() : state.logHistory());
            hf.putNull("best_model_checkpoint");
            AtomicFiles.write(tmp.resolve(TRAINER_STATE), JSON.writeValueAsBytes(hf), via);
            extra.writeInto(tmp);

            ObjectNode st = JSON.createObjectNode();     // written last: its presence means "complete"
            st.put("format", "cpt4j-checkpoint");
            st.put("version", FORMAT_VERSION);
            st.put("global_step", state.globalStep());
            st.put("max_steps", state.maxSteps());
            st.put("optimizer_step", opt.stepCount());
            if (sharded) st.put("ranks", comm.size());
            ObjectNode sch = st.putObject("scheduler");
            sch.put("type", state.schedule().type().hfName());
            sch.put("warmup_steps", state.schedule().warmupSteps());
            sch.put("total_steps", state.schedule().totalSteps());
            sch.put("last_step", state.globalStep());
            st.put("seed", state.seed());
            st.set("rng", state.rng() == null ? JSON.nullNode() : state.rng());
            st.set("data_cursor", state.dataCursor() == null ? JSON.nullNode() : state.dataCursor());
            st.put("threads", state.threads());
            ObjectNode window = st.putObject("log_window");
            window.put("loss_sum", Double.toHexString(state.logWindow().lossSum()));
            window.put("steps", state.logWindow().steps());
            st.put("elapsed_s", state.elapsedS());
            st.set("tensors", names);
            Health given = state.health() != null ? state.health() : new Health(Double.NaN, Double.NaN, 0, 0);
            Health h = new Health(given.loss(), given.firstLoss(), scan.weightsRms(), given.startRms());
            ObjectNode health = st.putObject("health");
            putNumber(health, "loss", h.loss());
            putNumber(health, "first_loss", h.firstLoss());
            putNumber(health, "weights_rms", scan.weightsRms());
            putNumber(health, "start_weights_rms", h.startRms());
            health.put("sound", h.sound());
            if (!h.sound()) health.put("exploded", h.explosion());
            ObjectNode files = st.putObject("files");   // every other file: size and CRC32C, checked on resume
            try (var list = Files.list(tmp)) {
                for (Path f : list.sorted().toList()) {
                    if (!Files.isRegularFile(f)) continue;
                    ObjectNode e = files.putObject(f.getFileName().toString());
                    e.put("bytes", Files.size(f));
                    e.put("crc32c", String.format("%08x", AtomicFiles.crc32c(f)));
                }
            }
            AtomicFiles.write(tmp.resolve(STATE), JSON.writeValueAsBytes(st), via);
            AtomicFiles.syncDir(tmp);

            if (Files.exists(dst)) {
                // our own older checkpoint with the same step (a restarted run): move it aside, then replace
                Path old = Files.createTempDirectory(outputDir, TMP_PREFIX + "old-");
                Files.delete(old);
                Files.move(dst, old, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
                AtomicFiles.moveDir(tmp, dst);
                deleteOwn(old);
            } else {
                AtomicFiles.moveDir(tmp, dst);
            }
            tmp = null;
            AtomicFiles.syncDir(outputDir);
        } catch (AtomicFiles.WriteFailed e) {
            Path file = tmp != null && e.file().startsWith(tmp) ? dst.resolve(tmp.relativize(e.file())) : e.file();
            throw finishFailed(comm, failed(outputDir, dst, comm.isRoot() ? tmp : null, "cannot write " + file + " ("
                    + e.reason() + ")", e));
        } catch (IOException e) {
            throw finishFailed(comm, failed(outputDir, dst, comm.isRoot() ? tmp : null, AtomicFiles.reason(e), e));
        } catch (UserError e) {
            throw finishFailed(comm, tmp == null || !comm.isRoot() ? e : failed(outputDir, dst, tmp, e.getMessage(), e));
        }
        rotate(outputDir, saveTotalLimit);
        if (sharded) comm.allReduceMax(new long[]{0});    // tell the others it is in place
        return dst;
    }

    /** Rank 0 of a sharded save tells the others that the checkpoint failed (they wait for its result). */
    private static UserError finishFailed(Collective comm, UserError e) {
        if (comm.size() > 1 && comm.isRoot() && !(e instanceof ShardFailed)) comm.allReduceMax(new long[]{1});
        return e;
    }

    /** A failure every rank already knows of (no result to send). */
    private static final class ShardFailed extends UserError {
        ShardFailed(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** Rank 0's temporary folder, known to every rank afterwards (broadcast as its path). */
    private static Path shareFolder(Collective comm, Path tmp, Path dst) {
        byte[] name = new byte[8192];
        if (comm.isRoot() && tmp != null) {
            byte[] b = tmp.toAbsolutePath().toString().getBytes(java.nio.charset.StandardCharsets.UTF_8);
            if (b.length >= name.length) throw new UserError("--output_dir path too long for a sharded checkpoint: " + tmp);
            System.arraycopy(b, 0, name, 0, b.length);
        }
        comm.broadcast(name, 0);
        int n = 0;
        while (n < name.length && name[n] != 0) n++;
        return n == 0 ? null : Path.of(new String(name, 0, n, java.nio.charset.StandardCharsets.UTF_8));
    }

    /** Every rank writes its optimizer shard into {@code tmp}; all fail together when any one fails. */
    private static void writeShard(Collective comm, Path tmp, Path dst, AdamW opt, AtomicFiles.Channels via) {
        String error = null;
        Throwable cause = null;
        try {
            int len = opt.shardLength();
            Safetensors.write(tmp.resolve(shardFile(comm.rank(), comm.size())), List.of(
                    new Safetensors.FloatTensor("exp_avg", new long[]{len}, opt.m(), 0),
                    new Safetensors.FloatTensor("exp_avg_sq", new long[]{len}, opt.v(), 0)),
                    new java.util.TreeMap<>(Map.of("step", Long.toString(opt.stepCount()),   // sorted: same bytes every run
                            "shard_start", Integer.toString(opt.shardStart()), "shard_length", Integer.toString(len),
                            "trainable", Integer.toString(opt.trainableCount()), "rank", Integer.toString(comm.rank()),
                            "ranks", Integer.toString(comm.size()))),
                    DType.F32, via);
        } catch (AtomicFiles.WriteFailed e) {
            error = "cannot write " + dst.resolve(shardFile(comm.rank(), comm.size())) + " (" + e.reason() + ")";
            cause = e;
        } catch (RuntimeException e) {
            error = "cannot write " + dst.resolve(shardFile(comm.rank(), comm.size())) + " (" + e.getMessage() + ")";
            cause = e;
        }
        long[] failed = {error != null ? 1 : 0};
        comm.allReduceMax(failed);
        if (failed[0] == 0) return;
        if (comm.isRoot()) {
            try {
                AtomicFiles.deleteTree(tmp);
            } catch (IOException ignored) {
                // the next run removes it (prepareOutputDir)
            }
        }
        throw new ShardFailed("could not write checkpoint " + dst + ": " + (error != null ? error
                : "another rank could not write its optimizer shard (see its message)") + "; the previous checkpoint is "
                + "intact; check free space and permissions of --output_dir", cause);
    }

    /** Removes the temporary folder of a failed save and says what failed and which checkpoint is still there. */
    private static UserError failed(Path outputDir, Path dst, Path tmp, String what, Exception cause) {
        String cleaned = "";
        if (tmp != null) {
            try {
                AtomicFiles.deleteTree(tmp);         // ours alone: made by createTempDirectory above
                cleaned = "; its partial files were removed";
            } catch (IOException e) {
                cleaned = "; could not remove the partial " + tmp + " (" + AtomicFiles.reason(e) + "), the next run will";
            }
        }
        Path previous = null;
        for (Path p : list(outputDir)) if (!p.equals(dst)) previous = p;
        return new UserError("could not write checkpoint " + dst + ": " + what + cleaned + "; "
                + (previous != null ? "the previous checkpoint " + previous + " is intact (free space, then resume "
                        + "with --resume_from_checkpoint true)" : "no earlier checkpoint exists")
                + "; check free space and permissions of --output_dir", cause);
    }

    private static void putNumber(ObjectNode o, String k, double v) {
        if (Double.isFinite(v)) o.put(k, v);
        else o.putNull(k);
    }

    /**
     * Restores the trainable tensors into {@code params} and the optimizer moments into {@code opt} from
     * {@code dir}; returns the saved progress. Frozen tensors are not touched (they come from the base model).
     * Refuses, naming the file and the newest intact earlier checkpoint, a checkpoint whose files do not match their
     * manifest (size, CRC32C), whose safetensors headers are invalid, or whose values are not finite.
     */
    public static State load(Path dir, ParamLayout layout, float[] params, AdamW opt) {
        return load(dir, layout, params, opt, 0, 1);
    }

    /**
     * As {@link #load(Path, ParamLayout, float[], AdamW)} for rank {@code rank} of {@code ranks} whose optimizer
     * keeps a shard: the moments of its range, from its own shard file (a checkpoint of as many ranks) or from a
     * single-process checkpoint's {@code optimizer.safetensors}.
     */
    public static State load(Path dir, ParamLayout layout, float[] params, AdamW opt, int rank, int ranks) {
        if (!isOurs(dir))
            throw new UserError(dir + " is not a complete cpt4j checkpoint (no " + STATE + "); give a checkpoint-N "
                    + "folder written by cpt4j to --resume_from_checkpoint, or 'true' for the latest");
        JsonNode st = manifest(dir);
        if (st == null) throw damaged(dir, dir.resolve(STATE) + " is not valid JSON");
        int version = st.path("version").asInt();
        if (version < 1 || version > FORMAT_VERSION)
            throw new UserError(dir + ": checkpoint format version " + st.path("version") + " is not supported by "
                    + "this cpt4j (expects " + FORMAT_VERSION + " or older)");
        List<String> expected = new ArrayList<>();
        for (ParamLayout.View v : layout.views()) if (opt.isTrainable(v)) expected.add(v.name());
        List<String> saved = new ArrayList<>();
        st.path("tensors").forEach(n -> saved.add(n.asText()));
        if (!saved.equals(expected))
            throw new UserError(dir + ": the checkpoint trains " + saved.size() + " tensors " + summary(saved)
                    + " but this run trains " + expected.size() + " " + summary(expected)
                    + "; resume with the same --lora_rank/--trainable/--modules_to_save");
        String problem = verify(dir, st);
        if (problem != null) throw damaged(dir, problem);
        int savedRanks = st.path("ranks").asInt(1);
        if (savedRanks > 1) {
            if (savedRanks != ranks)
                throw new UserError("checkpoint " + dir + " holds the optimizer state of " + savedRanks + " ranks (ZeRO-1 "
                        + "shards); resume it with mpirun -np " + savedRanks + " (this run has " + ranks + ")");
            try (Safetensors w = open(dir, WEIGHTS)) {
                for (ParamLayout.View view : layout.views()) {
                    if (!opt.isTrainable(view)) continue;
                    readInto(w, view.name(), view.shape(), params, view.offset());
                    String bad = firstNonFinite(params, view.offset(), view.size(), "tensor " + view.name());
                    if (bad != null) throw damaged(dir, dir.resolve(WEIGHTS) + ": " + bad);
                }
            }
            String file = shardFile(rank, ranks);
            int len = opt.shardLength();
            float[] m = new float[len], v = new float[len];
            try (Safetensors o = open(dir, file)) {
                Map<String, String> meta = o.metadata();
                if (!Integer.toString(opt.shardStart()).equals(meta.get("shard_start"))
                        || !Integer.toString(len).equals(meta.get("shard_length")))
                    throw new UserError(dir.resolve(file) + " holds trainable elements from " + meta.get("shard_start")
                            + " (" + meta.get("shard_length") + "), this rank keeps " + len + " from " + opt.shardStart()
                            + "; resume with the same model, LoRA settings and number of ranks");
                readInto(o, "exp_avg", new int[]{len}, m, 0);
                readInto(o, "exp_avg_sq", new int[]{len}, v, 0);
            }
            String bad = firstNonFinite(m, 0, len, "tensor exp_avg");
            if (bad == null) bad = firstNonFinite(v, 0, len, "tensor exp_avg_sq");
            if (bad != null) throw damaged(dir, dir.resolve(file) + ": " + bad);
            opt.restore(m, v, st.path("optimizer_step").asLong());
            return state(dir, st);
        }
        boolean part = opt.shardLength() != opt.trainableCount();
        float[] m = new float[opt.trainableCount()], v = new float[opt.trainableCount()];
        try (Safetensors w = open(dir, WEIGHTS); Safetensors o = open(dir, OPTIMIZER)) {
            for (ParamLayout.View view : layout.views()) {
                if (!opt.isTrainable(view)) continue;
                readInto(w, view.name(), view.shape(), params, view.offset());
                readInto(o, "exp_avg." + view.name(), view.shape(), m, opt.stateOffset(view));
                readInto(o, "exp_avg_sq." + view.name(), view.shape(), v, opt.stateOffset(view));
                String bad = firstNonFinite(params, view.offset(), view.size(), "tensor " + view.name());
                if (bad != null) throw damaged(dir, dir.resolve(WEIGHTS) + ": " + bad);
                bad = firstNonFinite(m, opt.stateOffset(view), view.size(), "tensor exp_avg." + view.name());
                if (bad == null) bad = firstNonFinite(v, opt.stateOffset(view), view.size(), "tensor exp_avg_sq." + view.name());
                if (bad != null) throw damaged(dir, dir.resolve(OPTIMIZER) + ": " + bad);
            }
        }
        if (part) {   // a single-process checkpoint resumed by one rank of several: keep this rank's range
            int a = opt.shardStart(), b = a + opt.shardLength();
            opt.restore(Arrays.copyOfRange(m, a, b), Arrays.copyOfRange(v, a, b), st.path("optimizer_step").asLong());
        } else {
            opt.restore(m, v, st.path("optimizer_step").asLong());
        }
        return state(dir, st);
    }

    /** The progress a manifest records, with the log history of trainer_state.json. */
    private static State state(Path dir, JsonNode st) {
        JsonNode sch = st.path("scheduler");
        LrSchedule schedule = new LrSchedule(LrSchedule.Type.parse(sch.path("type").asText()),
                sch.path("warmup_steps").asInt(), sch.path("total_steps").asInt());
        JsonNode hf = null;
        try {
            hf = Files.isRegularFile(dir.resolve(TRAINER_STATE)) ? JSON.readTree(dir.resolve(TRAINER_STATE).toFile()) : null;
        } catch (IOException e) {
            throw damaged(dir, dir.resolve(TRAINER_STATE) + " cannot be read (" + AtomicFiles.reason(e) + ")");
        }
        ArrayNode history = hf != null && hf.get("log_history") instanceof ArrayNode a ? a : JSON.createArrayNode();
        return new State(st.path("global_step").asLong(), st.path("max_steps").asInt(), schedule,
                st.path("seed").asLong(), st.get("rng"), st.get("data_cursor"), history, st.path("threads").asInt(),
                health(st), logWindow(dir, st), st.path("elapsed_s").asDouble(0));
    }

    /** The manifest's log window; empty for a checkpoint written before it was recorded. */
    private static LogWindow logWindow(Path dir, JsonNode st) {
        JsonNode w = st.get("log_window");
        if (w == null || !w.isObject()) return LogWindow.EMPTY;
        try {
            return new LogWindow(Double.parseDouble(w.path("loss_sum").asText()), w.path("steps").asLong());
        } catch (NumberFormatException e) {
            throw damaged(dir, dir.resolve(STATE) + ": log_window.loss_sum " + w.path("loss_sum") + " is not a number");
        }
    }

    /** Opens a checkpoint file through the one safetensors reader; an invalid header is damage. */
    private static Safetensors open(Path dir, String file) {
        try {
            return Safetensors.open(dir.resolve(file));
        } catch (UserError e) {
            throw damaged(dir, e.getMessage());
        }
    }

    private static void readInto(Safetensors f, String name, int[] shape, float[] dst, int offset) {
        TensorInfo t = f.info(name);
        if (t == null) throw new UserError(f.path() + ": tensor " + name + " is missing; the checkpoint does not "
                + "match this model (resume with the same --trainable/--modules_to_save/--lora_rank)");
        if (t.dtype() != DType.F32) throw new UserError(f.path() + ": tensor " + name + " is " + t.dtype() + ", not F32");
        long[] want = new long[shape.length];
        for (int i = 0; i < shape.length; i++) want[i] = shape[i];
        if (!Arrays.equals(t.shape(), want))
            throw new UserError(f.path() + ": tensor " + name + " has shape " + Arrays.toString(t.shape())
                    + ", the model expects " + Arrays.toString(shape) + "; resume with the same model and LoRA settings");
        f.readFloats(name, dst, offset);
    }

    /** The health a manifest records, or null (format 1). */
    private static Health health(JsonNode st) {
        JsonNode h = st.get("health");
        if (h == null || !h.isObject()) return null;
        return new Health(num(h, "loss"), num(h, "first_loss"), num(h, "weights_rms"), num(h, "start_weights_rms"));
    }

    private static double num(JsonNode o, String k) {
        JsonNode v = o.get(k);
        return v != null && v.isNumber() ? v.asDouble() : Double.NaN;
    }

    /** The recorded health of checkpoint {@code dir} without loading it, or null when unknown. */
    public static Health healthOf(Path dir) {
        JsonNode st = manifest(dir);
        return st == null ? null : health(st);
    }

    /** The newest checkpoint in {@code outputDir} before step {@code beforeStep} whose recorded health is sound. */
    public static Path newestSound(Path outputDir, long beforeStep) {
        List<Path> all = list(outputDir);
        for (int i = all.size() - 1; i >= 0; i--) {
            if (step(all.get(i)) >= beforeStep) continue;
            Health h = healthOf(all.get(i));
            if (h == null || h.sound()) return all.get(i);
        }
        return null;
    }

    /** The parsed manifest of {@code dir}, or null when missing or not JSON. */
    private static JsonNode manifest(Path dir) {
        try {
            JsonNode n = JSON.readTree(dir.resolve(STATE).toFile());
            return n != null && n.isObject() ? n : null;
        } catch (IOException e) {
            return null;
        }
    }

    /** Null when every file the manifest lists has its recorded size and CRC32C, else the first difference. */
    private static String verify(Path dir, JsonNode st) {
        JsonNode files = st.get("files");
        if (files == null || !files.isObject()) {
            if (st.path("version").asInt() >= 2) return dir.resolve(STATE) + " lists no files";
            return null;                               // format 1: no checksums to check
        }
        int ranks = st.path("ranks").asInt(1);
        List<String> required = new ArrayList<>(List.of(WEIGHTS));
        if (ranks > 1) for (int r = 0; r < ranks; r++) required.add(shardFile(r, ranks));
        else required.add(OPTIMIZER);
        for (String own : required)
            if (!files.has(own)) return dir.resolve(STATE) + " does not list " + own;
        for (var e : files.properties()) {
            Path f = dir.resolve(e.getKey());
            if (e.getKey().contains("/") || e.getKey().contains("\\") || e.getKey().startsWith("."))
                return dir.resolve(STATE) + " lists a file outside the folder";
            try {
                if (!Files.isRegularFile(f)) return f + " is missing";
                long size = Files.size(f), want = e.getValue().path("bytes").asLong(-1);
                if (size != want)
                    return f + " has " + size + " bytes, " + want + " were written"
                            + (size < want ? " (truncated)" : "");
                String crc = String.format("%08x", AtomicFiles.crc32c(f)), wantCrc = e.getValue().path("crc32c").asText();
                if (!crc.equals(wantCrc))
                    return f + " has CRC32C " + crc + ", " + wantCrc + " was written (its bytes changed since)";
            } catch (IOException ex) {
                return f + " cannot be read (" + AtomicFiles.reason(ex) + ")";
            }
        }
        return null;
    }

    /** A damaged checkpoint: what is wrong, and where to resume instead. */
    private static UserError damaged(Path dir, String what) {
        Path intact = newestIntact(dir.toAbsolutePath().getParent(), step(dir));
        return new UserError("checkpoint " + dir + " is damaged: " + what + "; "
                + (intact != null ? "the newest intact checkpoint is " + intact + " (resume with --resume_from_checkpoint "
                        + intact + ", or delete " + dir + " and use --resume_from_checkpoint true)"
                        : "no intact earlier checkpoint exists; start the run again"));
    }

    /** The newest checkpoint in {@code outputDir} before {@code beforeStep} whose files match their manifest. */
    public static Path newestIntact(Path outputDir, long beforeStep) {
        if (outputDir == null) return null;
        List<Path> all = list(outputDir);
        for (int i = all.size() - 1; i >= 0; i--) {
            Path p = all.get(i);
            if (beforeStep >= 0 && step(p) >= beforeStep) continue;
            JsonNode st = manifest(p);
            if (st != null && verify(p, st) == null) return p;
        }
        return null;
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
        rotate(outputDir, limit, null);
    }

    /**
     * As {@link #rotate(Path, int)}, never deleting {@code keep} (the best checkpoint; may be null): it counts towards
     * the limit and the newest others fill the rest, at least one (transformers' {@code _sorted_checkpoints} with a
     * {@code best_model_checkpoint}).
     */
    public static void rotate(Path outputDir, int limit, Path keep) {
        if (limit <= 0) return;
        List<Path> all = new ArrayList<>(list(outputDir));
        int room = limit;
        if (keep != null && all.removeIf(p -> p.toAbsolutePath().normalize().equals(keep.toAbsolutePath().normalize())))
            room = Math.max(1, limit - 1);
        for (int i = 0; i < all.size() - room; i++) deleteOwn(all.get(i));
    }

    /** Files of {@code --output_dir} that are cpt4j's own bookkeeping, not output (they do not make it "non-empty"). */
    public static final Set<String> BOOKKEEPING = Set.of(".cpt4j-train.lock");

    /**
     * Checks {@code --output_dir} before a run and clears what a previous run left that is ours to clear.
     * Refuses a non-empty folder unless resuming or {@code --overwrite_output_dir}; with overwrite (and no resume)
     * deletes our own old checkpoints so that a later {@code --resume_from_checkpoint true} cannot pick up the
     * previous run. Always removes our stale temporary folders (from a killed save): call it holding the output
     * folder's lock, so no running save is taken for a stale one. User files are never touched.
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
            for (Path p : ds) if (!BOOKKEEPING.contains(p.getFileName().toString())) entries.add(p);
        } catch (IOException e) {
            throw new UserError("cannot list --output_dir " + dir + ": " + e.getMessage());
        }
        for (Path p : entries)
            if (p.getFileName().toString().startsWith(TMP_PREFIX) && Files.isDirectory(p)) {
                try {
                    AtomicFiles.deleteTree(p);       // only ever made by save(): all of it is ours
                } catch (IOException e) {
                    throw new UserError("could not remove the unfinished checkpoint " + p + ": " + AtomicFiles.reason(e));
                }
                done.add("removed an unfinished checkpoint " + p.getFileName() + " (interrupted save)");
            }
        entries.removeIf(p -> !Files.exists(p));
        if (entries.isEmpty() || o.resumeFromCheckpoint() != null) return done;
        List<Path> ours = list(dir);
        if (!o.overwriteOutputDir()) {
            if (!ours.isEmpty())
                throw new UserError("--output_dir " + dir + " holds checkpoints of an earlier run (latest "
                        + ours.get(ours.size() - 1).getFileName() + "); add --resume_from_checkpoint true to continue "
                        + "it (or to finish it when it is complete), or --overwrite_output_dir to start over");
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

    /** Deletes only our own files in {@code dir} (those its manifest lists), then {@code dir} if that left it empty. */
    private static void deleteOwn(Path dir) {
        Set<String> own = new LinkedHashSet<>(List.of(STATE));
        JsonNode st = manifest(dir);
        if (st != null && st.get("files") instanceof ObjectNode files)
            files.fieldNames().forEachRemaining(f -> { if (!f.contains("/") && !f.contains("\\")) own.add(f); });
        own.addAll(OWN_FILES);          // STATE first: a half-deleted folder no longer reads as a checkpoint
        try {
            for (String f : own) Files.deleteIfExists(dir.resolve(f));
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
                if (ds.iterator().hasNext()) return; // something else in there: leave it
            }
            Files.deleteIfExists(dir);
        } catch (IOException e) {
            throw new UserError("could not delete old checkpoint " + dir + ": " + e.getMessage());
        }
    }

    private static String summary(List<String> names) {
        Map<String, Integer> shown = new LinkedHashMap<>();
        for (String n : names) if (shown.size() < 3) shown.put(n, 1);
        return "(" + String.join(", ", shown.keySet()) + (names.size() > 3 ? ", …" : "") + ")";
    }
}
