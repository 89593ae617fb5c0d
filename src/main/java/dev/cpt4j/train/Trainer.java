package dev.cpt4j.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.UserError;
import dev.cpt4j.dist.Collective;
import dev.cpt4j.hf.HfCheckpoints;
import dev.cpt4j.hf.HfConfigs;
import dev.cpt4j.hf.PeftExport;
import dev.cpt4j.io.AtomicFiles;
import dev.cpt4j.io.DType;
import dev.cpt4j.io.DirLock;
import dev.cpt4j.io.HubIds;
import dev.cpt4j.model.ModelConfig;
import dev.cpt4j.model.VocabResize;
import dev.cpt4j.tensor.cpu.Gemm;
import dev.cpt4j.tokenizer.Tokenizer;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;

/**
 * The training loop: gradient accumulation, global-norm clipping, AdamW with the HF schedule, logging
 * ({@code metrics.jsonl}, progress bar, loss PNG), evaluation, checkpoints every {@code --save_steps} and resume.
 * Model-agnostic: it drives a {@link TrainableModel} over a {@link BatchSource}.
 *
 * <p>Step numbering follows HF Trainer: {@code global_step} counts completed optimizer steps; step {@code s}
 * (1-based) uses the schedule factor {@code factor(s − 1)}, and {@code checkpoint-s} holds the state after it.
 * Randomness (dropout) is a pure function of (seed, step, micro-batch), so a resumed run draws the same masks.
 */
public final class Trainer {
    public static final String PLOT = "loss.png";
    private static final ObjectMapper JSON = new ObjectMapper();

    /** What a finished run produced. */
    public record Result(long steps, double lastLoss, Double lastEvalLoss, Path lastCheckpoint, Path metrics, Path plot) {}

    private Trainer() {}

    /**
     * The whole recipe of {@code run_clm_pt_with_peft.py}: tokenizer, prepared data (cached in
     * {@code --data_cache_dir}, reused while valid), the base model prepared per {@link FamilyTrainable} (resized
     * embeddings, LoRA, frozen base), {@link #run}, then the final adapter (peft files) or full model (HF folder)
     * with the tokenizer files in {@code o.outputDir()}. Messages go to {@code log}.
     */
    public static Result train(TrainOptions o, PrintStream log) {
        return train(o, Progress.forTerminal(log), log);
    }

    /** As {@link #train(TrainOptions, PrintStream)} with an explicit progress sink. */
    public static Result train(TrainOptions o, Progress progress, PrintStream log) {
        return train(o, progress, log, null);
    }

    /**
     * As {@link #train(TrainOptions, Progress, PrintStream)}, stopping at a step boundary when {@code stop} (may be
     * null) is requested. Holds the output folder's lock from before anything is touched there until the final files
     * are written. A run resumed from a checkpoint of its last step only writes what is left (the final files).
     */
    public static Result train(TrainOptions o, Progress progress, PrintStream log, Interruption stop) {
        return train(o, progress, log, stop, Collective.SINGLE);
    }

    /**
     * As {@link #train(TrainOptions, Progress, PrintStream, Interruption)} as one rank of {@code comm} (data
     * parallelism, {@link DataParallel}): every rank calls it with the same options; rank 0 alone takes the lock,
     * prepares the data, writes logs, metrics, the plot, checkpoints and the final files, the others train their
     * rows of each global batch. {@code progress} and {@code log} of the other ranks should be silent.
     */
    public static Result train(TrainOptions o, Progress progress, PrintStream log, Interruption stop, Collective comm) {
        if (o.resumeFromCheckpoint() != null) Checkpoints.resolveResume(o); // fails early on a bad path
        if (!comm.isRoot()) return trainLocked(o, progress, log, stop, comm);
        boolean fresh = !Files.exists(o.outputDir());
        try (DirLock lock = lockOutputDir(o.outputDir())) {
            try {
                return trainLocked(o, progress, log, stop, comm);
            } catch (RuntimeException e) {
                if (fresh) removeIfOnlyLock(o.outputDir());   // a run that failed to start leaves no folder behind
                throw e;
            }
        }
    }

    private static void removeIfOnlyLock(Path dir) {
        try (var list = Files.list(dir)) {
            if (!list.allMatch(p -> p.getFileName().toString().equals(LOCK))) return;
            Files.deleteIfExists(dir.resolve(LOCK));
            Files.deleteIfExists(dir);
        } catch (java.io.IOException ignored) {
            // only tidiness
        }
    }

    private static Result trainLocked(TrainOptions o, Progress progress, PrintStream log, Interruption stop,
                                      Collective comm) {
        {
            if (comm.size() > 1 && (o.neatPacking() || o.mixing() || o.generalEvalFile() != null))
                throw new UserError("--neat_packing, --interleave_probs and --general_eval_file run in one process; under "
                        + "mpirun (" + comm.size() + " ranks) drop them, or train them without mpirun");
            if (comm.isRoot())                                    // refuse before any work
                for (String line : Checkpoints.prepareOutputDir(o)) log.println("cpt4j: " + line);
            Consumer<String> say = m -> log.println("cpt4j: " + m);
            dev.cpt4j.hf.PeftAdapters.Adapter startAdapter = null;
            if (o.peftPath() != null) {
                startAdapter = readStartAdapter(o.peftPath());
                o = withAdapterConfig(o, startAdapter.config(), say);
            }
            if (o.modelNameOrPath() != null) configOf(o.modelNameOrPath());   // a missing model first: a hub id gets its hint
            if (o.tokenizerNameOrPath() != null && HubIds.looksLikeHubId(o.tokenizerNameOrPath()))
                throw new UserError("--tokenizer_name_or_path " + o.tokenizerNameOrPath() + " does not exist"
                        + HubIds.hint(o.tokenizerNameOrPath()));
            Tokenizer tokenizer = Tokenizer.load(o.tokenizerNameOrPath());
            ModelConfig base = o.modelNameOrPath() != null
                    ? FamilyTrainable.readConfig(configOf(o.modelNameOrPath())) : FamilyTrainable.readConfig(o.configName());
            if (o.modelNameOrPath() != null)
                SpecialTokens.check(HfCheckpoints.readConfigJson(o.modelNameOrPath()), o.modelNameOrPath(),
                        o.tokenizerNameOrPath(), tokenizer);
            int ctx = base.contextLength();
            int T = o.blockSize() > 0 ? o.blockSize() : Math.min(ctx, 1024); // run_clm's default
            if (T > ctx)
                throw new UserError("--block_size " + T + " is beyond the model's context of " + ctx
                        + " positions; use --block_size " + ctx + " or less");
            int V = VocabResize.padded(tokenizer.vocabSize(), o.padToMultipleOf());
            FamilyTrainable.Spec spec = FamilyTrainable.Spec.of(o, V, T);
            spec.validate(base);                                  // module names: before the data is prepared
            spec.requireTyingPair(base);
            HeapCheck.require(base, spec, o.perDeviceTrainBatchSize(), Runtime.getRuntime().maxMemory());

            try (Parallel par = new Parallel(o.threads());
                 TrainData store = TrainData.open(o, tokenizer, T, ctx, comm.size() * o.perDeviceTrainBatchSize(), say, comm)) {
                Gemm gemm = new Gemm(par);
                FamilyTrainable model = o.modelNameOrPath() != null
                        ? FamilyTrainable.fromPretrained(o.modelNameOrPath(), spec, gemm, par, say)
                        : FamilyTrainable.fromScratch(base, spec, gemm, par, say);
                long trainable = 0;
                for (ParamLayout.View v : model.layout().views()) if (model.isTrainable(v.name())) trainable += v.size();
                say.accept(String.format(Locale.ROOT, "%s: %,d trainable of %,d parameters; %,d training and %,d validation "
                                + "blocks of %d tokens; %d threads",
                        o.lora() ? "LoRA r=" + o.loraRank() + " on " + model.loraSites() : "full fine-tuning", trainable,
                        model.model().layout().size(), store.trainBlocks(), store.evalBlocks(), T, o.threads())
                        + (o.neatPacking() ? "; neat packing (documents do not see each other)" : ""));
                if (startAdapter != null) model.loadAdapter(o.peftPath(), startAdapter);
                if (comm.size() > 1)
                    say.accept(String.format(Locale.ROOT, "data parallel over %s: global batch %d × %d × %d (ranks × "
                                    + "per-device batch × accumulation)", comm.describe(), comm.size(),
                            o.perDeviceTrainBatchSize(), o.gradientAccumulationSteps()));
                BatchSource data = store.batches();
                if (o.maxTrainSamples() > 0 || o.maxEvalSamples() > 0)
                    say.accept(String.format(Locale.ROOT, "using %,d training and %,d validation blocks (--max_train_samples, "
                            + "--max_eval_samples)", data.trainBlocks(), data.evalBlocks()));
                // every checkpoint also holds what the final export writes, so it serves as --adapter (or --model)
                TrainOptions run = o;
                Hooks hooks = new Hooks(dir -> exportTo(dir, run, model), stop, AtomicFiles.Channels.DIRECT);
                DataParallel dp = new DataParallel(comm);
                Result r = runLocked(o, model, data, store.general(), par, progress, log, hooks, dp);
                double[] rss = dp.perRank(PeakMemory.rssMb());
                if (comm.size() > 1) {
                    StringBuilder per = new StringBuilder();
                    for (double mb : rss) per.append(per.isEmpty() ? "" : ", ").append(String.format(Locale.ROOT, "%.0f", mb));
                    long trainableFloats = 0;
                    for (ParamLayout.View v : model.layout().views()) if (model.isTrainable(v.name())) trainableFloats += v.size();
                    say.accept(String.format(Locale.ROOT, "peak memory (VmHWM) per rank: %s MiB; AdamW moments per rank "
                            + "%.1f MiB (ZeRO-1: 1/%d of %.1f MiB)", per, 8.0 * ((trainableFloats + comm.size() - 1)
                            / comm.size()) / (1 << 20), comm.size(), 8.0 * trainableFloats / (1 << 20)));
                }
                if (!comm.isRoot()) return r;
                try {
                    export(o, model);
                } catch (UserError e) {
                    throw new UserError(e.getMessage() + "; the training itself is complete"
                            + (r.lastCheckpoint() != null ? " (" + r.lastCheckpoint() + ")" : "")
                            + ": run the same command with --resume_from_checkpoint true to write the final files", e);
                }
                say.accept(String.format(Locale.ROOT, "wrote the final %s to %s; peak memory (VmHWM) %.0f MiB",
                        o.lora() ? "adapter (adapter_config.json, adapter_model.safetensors)" : "model (model.safetensors, config.json)",
                        o.outputDir(), PeakMemory.rssMb()));
                return r;
            }
        }
    }

    private static dev.cpt4j.hf.PeftAdapters.Adapter readStartAdapter(Path dir) {
        if (!Files.isDirectory(dir))
            throw new UserError("--peft_path " + dir + " is not a folder; give the folder holding the adapter's "
                    + "adapter_config.json and adapter_model.safetensors (a train --output_dir or one of its checkpoints)");
        if (!Files.isRegularFile(dir.resolve(dev.cpt4j.hf.PeftAdapters.CONFIG)))
            throw new UserError("--peft_path " + dir + " has no " + dev.cpt4j.hf.PeftAdapters.CONFIG + "; it is not a peft "
                    + "adapter folder (to continue a full fine-tune, give it as --model_name_or_path)");
        return dev.cpt4j.hf.PeftAdapters.read(dir);
    }

    /**
     * The options of a run continuing an adapter: its adapter_config.json sets the LoRA configuration (as
     * {@code PeftModel.from_pretrained(model, peft_path, is_trainable=True)} does in Chinese-LLaMA-Alpaca's script).
     */
    static TrainOptions withAdapterConfig(TrainOptions o, dev.cpt4j.hf.PeftAdapters.LoraConfig c, Consumer<String> say) {
        if (c.targetModulesIsRegex())
            throw new UserError("--peft_path " + o.peftPath() + ": target_modules is a regular expression ("
                    + c.targetModules().get(0) + "); cpt4j continues adapters whose target_modules is a list of names");
        if (c.extra().has("trainable_token_indices") && !c.extra().get("trainable_token_indices").isNull())
            throw new UserError("--peft_path " + o.peftPath() + ": the adapter trains token rows (trainable_token_indices); "
                    + "cpt4j continues adapters with LoRA and modules_to_save only");
        if (o.trainableTokenIndices() != null)
            throw new UserError("--trainable_token_indices cannot be added to an adapter continued with --peft_path");
        boolean differs = o.lora() && (o.loraRank() != c.r() || o.loraAlpha() != c.loraAlpha()
                || !o.trainable().isEmpty() && !o.trainable().equals(c.targetModules())
                || !o.modulesToSave().isEmpty() && !o.modulesToSave().equals(c.modulesToSave()));
        say.accept(String.format(Locale.ROOT, "continuing the adapter in %s: LoRA r=%d, alpha %s, dropout %s on %s%s, from "
                        + "its adapter_config.json%s; the optimizer and the step count start fresh", o.peftPath(), c.r(),
                num(c.loraAlpha()), num(c.loraDropout()), String.join(",", c.targetModules()),
                c.modulesToSave().isEmpty() ? "" : ", modules_to_save " + String.join(",", c.modulesToSave()),
                differs ? " (not the --lora_rank/--lora_alpha/--trainable/--modules_to_save given)" : ""));
        return o.toBuilder().loraRank(c.r()).loraAlpha(c.loraAlpha()).loraDropout(c.loraDropout())
                .trainable(c.targetModules()).modulesToSave(c.modulesToSave()).useRslora(c.useRslora())
                .ensureWeightTying(o.ensureWeightTying() || c.extra().path("ensure_weight_tying").asBoolean(false)).build();
    }

    private static String num(double v) {
        return v == Math.rint(v) ? Long.toString((long) v) : Double.toString(v);
    }

    /** Writes the final adapter (LoRA) or HF model (full) of {@code model} and the tokenizer files into the output dir. */
    public static void export(TrainOptions o, FamilyTrainable model) {
        exportTo(o.outputDir(), o, model);
    }

    /** Writes the adapter (LoRA) or HF model (full) of {@code model} and the tokenizer files into {@code out}. */
    static void exportTo(Path out, TrainOptions o, FamilyTrainable model) {
        if (o.lora()) {
            String baseName = o.modelNameOrPath() != null ? o.modelNameOrPath().toString() : null;
            PeftExport.writeAdapter(out, model.config(), model.layout(), model.params(), o.loraRank(), o.loraAlpha(),
                    o.loraDropout(), o.useRslora(), model.loraSites(), model.savedModules(), baseName, model.trainableTokens(),
                    o.ensureWeightTying() && model.config().tieWordEmbeddings());
        } else {
            com.fasterxml.jackson.databind.node.ObjectNode baseJson = o.modelNameOrPath() != null
                    ? HfCheckpoints.readConfigJson(o.modelNameOrPath()) : null;
            ModelConfig c = model.config();
            HfCheckpoints.save(out, c, c.family().layout(c), model.params(), DType.F32, baseJson);
        }
        PeftExport.copyTokenizerFiles(o.tokenizerNameOrPath(), out);
    }

    /** The lock file inside {@code --output_dir} that one run at a time holds (an OS lock: gone when the process is). */
    public static final String LOCK = ".cpt4j-train.lock";

    /**
     * Takes the output folder's lock (creating the folder), or refuses at once when another run holds it. The OS
     * releases it when this process ends in any way, so a run killed with {@code kill -9} never blocks its resume.
     */
    public static DirLock lockOutputDir(Path outputDir) {
        if (Files.exists(outputDir) && !Files.isDirectory(outputDir))
            throw new UserError("--output_dir " + outputDir + " is a file; give a folder");
        Path file = outputDir.resolve(LOCK);
        DirLock lock;
        try {
            Files.createDirectories(outputDir);
            lock = DirLock.tryAcquire(file, "pid " + ProcessHandle.current().pid() + ", started "
                    + java.time.Instant.now().truncatedTo(java.time.temporal.ChronoUnit.SECONDS));
        } catch (java.io.IOException e) {
            throw new UserError("--output_dir " + outputDir + ": cannot create the lock file " + LOCK + " ("
                    + AtomicFiles.reason(e) + "); check that the folder is writable");
        }
        if (lock == null) {
            String owner = DirLock.owner(file);
            throw new UserError("--output_dir " + outputDir + " is in use by another 'cpt4j train'"
                    + (owner.isEmpty() ? "" : " (" + owner + ")") + "; wait for it to finish or stop it, or choose "
                    + "another --output_dir");
        }
        return lock;
    }

    private static Path configOf(Path modelDir) {
        Path f = modelDir.resolve(HfCheckpoints.CONFIG);
        if (!Files.isDirectory(modelDir))
            throw new UserError("--model_name_or_path " + modelDir + ": model directory does not exist" + (HubIds.looksLikeHubId(modelDir)
                    ? HubIds.hint(modelDir) : "; give a Hugging Face model folder (config.json + model.safetensors)"));
        if (!Files.isRegularFile(f))
            throw new UserError("--model_name_or_path " + modelDir + ": no config.json; a Hugging Face model directory "
                    + "needs config.json beside its weights");
        return f;
    }

    /**
     * What a run does besides training: {@code extra} writes files into every checkpoint (the adapter), {@code stop}
     * (may be null) asks it to stop at a step boundary, {@code channels} sees the bytes of the checkpoint files
     * (tests inject a full disk).
     */
    public record Hooks(Checkpoints.Extra extra, Interruption stop, AtomicFiles.Channels channels) {
        public static final Hooks NONE = new Hooks(Checkpoints.Extra.NONE, null, AtomicFiles.Channels.DIRECT);
    }

    /** A run stopped on request at a step boundary; the message is the line to print. */
    public static final class Interrupted extends UserError {
        private final long step;
        private final Path lastCheckpoint;

        Interrupted(long step, Path lastCheckpoint) {
            super(Interruption.message(step, lastCheckpoint));
            this.step = step;
            this.lastCheckpoint = lastCheckpoint;
        }

        public long step() {
            return step;
        }

        public Path lastCheckpoint() {
            return lastCheckpoint;
        }
    }

    /**
     * Runs (or resumes) training of {@code model} on {@code data} as configured by {@code o}. Writes checkpoints,
     * {@code metrics.jsonl} and {@code loss.png} into {@code o.outputDir()}. Exporting the final model/adapter is the
     * caller's job (the model knows its file format).
     */
    public static Result run(TrainOptions o, TrainableModel model, BatchSource data, Parallel par, Progress progress,
                             PrintStream log) {
        return run(o, model, data, par, progress, log, Hooks.NONE);
    }

    /** As {@link #run(TrainOptions, TrainableModel, BatchSource, Parallel, Progress, PrintStream)} with {@code hooks}. */
    public static Result run(TrainOptions o, TrainableModel model, BatchSource data, Parallel par, Progress progress,
                             PrintStream log, Hooks hooks) {
        return run(o, model, data, null, par, progress, log, hooks);
    }

    /**
     * As {@link #run(TrainOptions, TrainableModel, BatchSource, Parallel, Progress, PrintStream, Hooks)}, also
     * evaluating {@code general} (general-domain held-out blocks, may be null) at every evaluation.
     */
    public static Result run(TrainOptions o, TrainableModel model, BatchSource data, TrainData.GeneralEval general,
                             Parallel par, Progress progress, PrintStream log, Hooks hooks) {
        try (DirLock lock = lockOutputDir(o.outputDir())) {
            return runLocked(o, model, data, general, par, progress, log, hooks, new DataParallel(Collective.SINGLE));
        }
    }

    private static Result runLocked(TrainOptions o, TrainableModel model, BatchSource data,
                                    TrainData.GeneralEval general, Parallel par, Progress progress, PrintStream log,
                                    Hooks hooks, DataParallel dp) {
        int B = o.perDeviceTrainBatchSize(), T = data.blockSize();
        boolean root = dp.isRoot();
        if (T > model.maxSequenceLength())
            throw new UserError("--block_size " + T + " is beyond the model's context of " + model.maxSequenceLength()
                    + " positions; use --block_size " + model.maxSequenceLength() + " or less");
        // HF: an epoch is ceil(blocks / (ranks · B)) batches; ceil(ceil(n / N) / B) = ceil(n / (N · B))
        int total = o.totalSteps((data.trainBlocks() + dp.size() - 1) / dp.size());
        Path resumeFrom = Checkpoints.resolveResume(o);
        if (root) for (String line : Checkpoints.prepareOutputDir(o)) log.println("cpt4j: " + line);

        ParamLayout layout = model.layout();
        float[] params = model.params(), grads = model.grads();
        AdamW opt = AdamW.forModel(model, o.learningRate(), o.embeddingLearningRate(), o.weightDecay(), o.adamBeta1(),
                o.adamBeta2(), o.adamEpsilon());
        if (opt.trainableCount() == 0) throw new UserError("nothing to train: no tensor is trainable; check --trainable/--modules_to_save");
        dp.shard(opt);                                      // ZeRO-1: this rank's share of the AdamW moments
        LrSchedule schedule = o.schedule(total);
        Interruption stop = hooks.stop();

        long step = 0;
        Checkpoints.LogWindow window = Checkpoints.LogWindow.EMPTY;
        ArrayNode history = JSON.createArrayNode();
        Path lastCheckpoint = null, lastSound = null;   // sound: see Checkpoints.Health
        double firstLoss = Double.NaN, startRms, elapsedBefore = 0;
        if (resumeFrom != null) {
            Checkpoints.State st = Checkpoints.load(resumeFrom, layout, params, opt, dp.rank(), dp.size());
            if (st.maxSteps() != total)
                log.println("cpt4j: note: the checkpoint's run had " + st.maxSteps() + " steps, this run has " + total
                        + "; the schedule follows this run");
            if (st.threads() != o.threads())
                log.println("cpt4j: note: the checkpoint was written with --threads " + st.threads() + "; this run uses "
                        + o.threads() + " (the numbers do not depend on the thread count, see docs/LIMITS.md)");
            step = st.globalStep();
            history = st.logHistory();
            window = st.logWindow();
            elapsedBefore = st.elapsedS();
            if (st.dataCursor() != null && !st.dataCursor().isNull()) data.restore(st.dataCursor());
            lastCheckpoint = resumeFrom;
            Checkpoints.Health h = st.health();
            firstLoss = h != null ? h.firstLoss() : Double.NaN;
            startRms = h != null ? h.startRms() : 0;
            lastSound = h == null || h.sound() ? resumeFrom : Checkpoints.newestSound(resumeFrom.toAbsolutePath().getParent(), step);
            log.println("cpt4j: resumed from " + resumeFrom + " at step " + step + " of " + total);
        } else {
            startRms = Checkpoints.scan(layout, params, opt).weightsRms();
        }
        if (step > total) throw new UserError("the checkpoint is already at step " + step + " of " + total
                + "; raise --max_steps/--num_train_epochs to train further");
        Best best = o.loadBestModelAtEnd() ? Best.of(history, o.outputDir(), step) : null;
        if (step == total) {
            // a complete run whose final files are missing (killed, or the disk filled, after its last checkpoint)
            log.println("cpt4j: " + resumeFrom + " is the last step (" + step + " of " + total + "); training is "
                    + "complete, writing what is left");
            if (best != null) loadBest(best, lastCheckpoint, layout, params, opt, log, dp.rank(), dp.size());
            return new Result(step, Double.NaN, null, lastCheckpoint, o.outputDir().resolve(MetricsLog.FILE),
                    o.outputDir().resolve(PLOT));
        }

        int[] tokens = new int[B * T];                       // (B, T)
        int[] docStarts = data.packed() ? new int[B * T] : null; // (B, T) document starts (neat packing)
        List<LossPlot.Point> trainCurve = new ArrayList<>(), evalCurve = new ArrayList<>();
        for (JsonNode h : history) {
            if (h.has("loss")) trainCurve.add(new LossPlot.Point(h.path("step").asDouble(), h.path("loss").asDouble()));
            if (h.has("eval_loss")) evalCurve.add(new LossPlot.Point(h.path("step").asDouble(), h.path("eval_loss").asDouble()));
        }
        double lastLoss = Double.NaN;
        Double lastEval = null;
        long t0 = System.nanoTime(), tLog = t0;
        double lossSinceLog = window.lossSum();          // the steps since the last log, carried by checkpoints
        long stepsSinceLog = window.steps(), tokensSinceLog = 0;
        long savedStep = step, saveNanos = -1, startStep = step;
        RuntimeException failure = null;
        try (MetricsLog metrics = root ? MetricsLog.open(o.outputDir(), resumeFrom != null ? step : -1) : null;
             TensorBoardLog tb = root && o.tensorboard() ? TensorBoardLog.open(o, step, resumeFrom != null) : null) {
            if (tb != null) log.println("cpt4j: TensorBoard events: " + tb.file().getParent() + " (tensorboard --logdir "
                    + o.outputDir().resolve(TensorBoardLog.RUNS) + ")");
            progress.start(step, total);
            if (stop != null) stop.progress(step, lastCheckpoint, true);
            if (o.evalOnStart() && o.doEval() && data.evalBlocks() > 0) {
                double ev = dp.evaluate(model, data, o.perDeviceEvalBatchSize());
                Finite.require(ev, "eval loss", step, lastSound, skipped(lastCheckpoint, lastSound));
                MetricsLog.Eval rec = new MetricsLog.Eval(step, ev);
                if (root) metrics.log(rec);
                if (tb != null) tb.log(rec);
                progress.message(String.format(Locale.ROOT, "step %d/%d: eval loss %.4f, perplexity %.2f (before training)",
                        step, total, ev, Math.exp(ev)));
            }
            while (step < total) {
                if (stop != null && dp.anyRequested(stop.requested())) {
                    // at a step boundary: the last update is complete; keep it if a checkpoint fits in the time left
                    long estimate = saveNanos >= 0 ? saveNanos : estimateSaveNanos(opt.trainableCount());
                    if (dp.rootDecides(step > savedStep && estimate < stop.nanosLeft() - 1_000_000_000L
                            && Checkpoints.scan(layout, params, opt).nonFinite() == null)) {
                        Checkpoints.State st = new Checkpoints.State(step, total, schedule, o.seed(), rngState(o.seed()),
                                data.state(), history, o.threads(), new Checkpoints.Health(lastLoss, firstLoss, 0, startRms),
                                new Checkpoints.LogWindow(lossSinceLog, stepsSinceLog),
                                elapsedBefore + (System.nanoTime() - t0) / 1e9);
                        lastCheckpoint = saveCheckpoint(o, layout, params, opt, st, o.saveTotalLimit(), hooks, dp);
                    }
                    throw new Interrupted(step, lastCheckpoint);
                }
                long s = step + 1;                            // the step being computed, 1-based
                opt.zeroGrads(grads);
                double lossSum = 0;
                for (int micro = 0; micro < o.gradientAccumulationSteps(); micro++) {
                    double l;
                    if (docStarts == null) {
                        dp.nextTrain(data, tokens, B, T);
                        l = model.forwardBackward(tokens, B, T, 1f / (o.gradientAccumulationSteps() * dp.size()),
                                dropoutSeed(o.seed(), s, micro), dp.firstToken(B, T));
                    } else {                                   // one process: refused under mpirun
                        data.nextTrain(tokens, docStarts, B);
                        l = model.forwardBackward(tokens, docStarts, B, T, 1f / o.gradientAccumulationSteps(),
                                dropoutSeed(o.seed(), s, micro));
                    }
                    if (dp.single()) Finite.require(l, "loss", s, lastSound, skipped(lastCheckpoint, lastSound));
                    lossSum += l;
                }
                double loss = dp.mean(lossSum / o.gradientAccumulationSteps());
                if (!dp.single()) Finite.require(loss, "loss", s, lastSound, skipped(lastCheckpoint, lastSound));
                dp.allReduceGrads(grads, opt.segments());
                double gradNorm = GradClip.clip(grads, opt.segments(), o.maxGradNorm(), par);
                Finite.require(gradNorm, "gradient norm", s, lastSound, skipped(lastCheckpoint, lastSound));
                double factor = schedule.factor(step);
                double lr = o.learningRate() * factor;
                opt.step(params, grads, factor, par);
                dp.gatherParams(params, opt);                 // ZeRO-1: every rank's updated share to all
                step = s;
                lastLoss = loss;
                if (Double.isNaN(firstLoss)) firstLoss = loss;
                lossSinceLog += loss;
                stepsSinceLog++;
                tokensSinceLog += (long) dp.size() * B * T * o.gradientAccumulationSteps();

                long now = System.nanoTime();
                double tokPerS = tokensSinceLog / Math.max(1e-9, (now - tLog) / 1e9);
                progress.step(step, loss, lr, gradNorm, tokPerS);
                if ((step == 1 && o.loggingFirstStep()) || step % o.loggingSteps() == 0 || step == total) {
                    double avg = lossSinceLog / stepsSinceLog;   // HF logs the mean loss since the last log
                    double session = (now - t0) / 1e9, elapsed = elapsedBefore + session;
                    MetricsLog.Train rec = new MetricsLog.Train(step, avg, lr, gradNorm, tokPerS, elapsed);
                    java.util.Map<String, Long> bySource = data.tokensBySource();
                    if (root) metrics.log(rec, bySource);
                    if (tb != null) tb.log(rec);
                    progress.logged(new Progress.Log(step, total, avg, lr, gradNorm, tokPerS, elapsed,
                            session / (step - startStep) * (total - step)));
                    if (!bySource.isEmpty()) progress.message("step " + step + ": " + MetricsLog.shares(bySource));
                    ObjectNode h = history.addObject();
                    h.put("loss", avg);
                    h.put("grad_norm", gradNorm);
                    h.put("learning_rate", lr);
                    h.put("step", step);
                    trainCurve.add(new LossPlot.Point(step, avg));
                    lossSinceLog = 0;
                    stepsSinceLog = 0;
                    tokensSinceLog = 0;
                    tLog = now;
                }
                boolean evalNow = o.doEval() && data.evalBlocks() > 0
                        && ((o.evalSteps() > 0 && step % o.evalSteps() == 0) || step == total);
                if (evalNow) {
                    double ev = dp.evaluate(model, data, o.perDeviceEvalBatchSize());
                    Finite.require(ev, "eval loss", step, lastSound, skipped(lastCheckpoint, lastSound));
                    lastEval = ev;
                    Double gen = general == null ? null
                            : evaluate(model, T, general.count(), data.packed(), general::read, o.perDeviceEvalBatchSize());
                    MetricsLog.Eval rec = new MetricsLog.Eval(step, ev);
                    if (root) metrics.log(rec, gen);
                    if (tb != null) tb.log(rec);
                    ObjectNode h = history.addObject();
                    h.put("eval_loss", ev);
                    h.put("eval_perplexity", Math.exp(ev));
                    if (gen != null) {
                        h.put("general_eval_loss", gen);
                        h.put("general_eval_perplexity", Math.exp(gen));
                    }
                    h.put("step", step);
                    evalCurve.add(new LossPlot.Point(step, ev));
                    progress.message(String.format(Locale.ROOT, "step %d/%d: eval loss %.4f, perplexity %.2f", step, total, ev, Math.exp(ev))
                            + (gen == null ? "" : String.format(Locale.ROOT, "; general text (%s) loss %.4f, perplexity %.2f",
                            general.source(), gen, Math.exp(gen))));
                }
                if ((o.saveSteps() > 0 && step % o.saveSteps() == 0) || step == total) {
                    Checkpoints.Scan scan = Checkpoints.scan(layout, params, opt);
                    if (scan.nonFinite() != null)
                        throw new UserError("the " + scan.nonFinite() + " after step " + step + "; checkpoint-" + step
                                + " was not written; " + (lastSound != null ? "the last good checkpoint is " + lastSound
                                + " (resume with --resume_from_checkpoint " + lastSound + ")" : "no good checkpoint exists")
                                + "; lower --learning_rate or --max_grad_norm");
                    Checkpoints.State st = new Checkpoints.State(step, total, schedule, o.seed(), rngState(o.seed()),
                            data.state(), history, o.threads(), new Checkpoints.Health(loss, firstLoss, 0, startRms),
                            new Checkpoints.LogWindow(lossSinceLog, stepsSinceLog),
                            elapsedBefore + (System.nanoTime() - t0) / 1e9);
                    long ts = System.nanoTime();
                    lastCheckpoint = saveCheckpoint(o, layout, params, opt, st, best != null ? 0 : o.saveTotalLimit(),
                            hooks, dp);
                    if (best != null) {
                        if (evalNow && best.better(lastEval)) best = new Best(lastCheckpoint, lastEval);
                        if (root) Checkpoints.rotate(o.outputDir(), o.saveTotalLimit(), best.checkpoint());
                    }
                    saveNanos = System.nanoTime() - ts;
                    savedStep = step;
                    Checkpoints.Health saved = Checkpoints.healthOf(lastCheckpoint);
                    if (saved == null || saved.sound()) lastSound = lastCheckpoint;
                    else progress.message("step " + step + "/" + total + ": warning: the weights of " + lastCheckpoint
                            + " have exploded (" + saved.explosion() + "); lower --learning_rate");
                    progress.message("step " + step + "/" + total + ": saved " + lastCheckpoint);
                }
                if (stop != null) stop.progress(step, lastCheckpoint, true);
            }
        } catch (RuntimeException e) {
            failure = e;
            throw e;
        } finally {
            if (stop != null) stop.progress(step, lastCheckpoint, false);
            progress.close();
            if (root && (!trainCurve.isEmpty() || !evalCurve.isEmpty())) {
                try {
                    LossPlot.write(o.outputDir().resolve(PLOT), trainCurve, evalCurve, 900, 540);
                } catch (RuntimeException e) {
                    if (failure == null) throw e;
                    failure.addSuppressed(e);          // never hide the error that stopped the run
                }
            }
        }
        if (best != null) loadBest(best, lastCheckpoint, layout, params, opt, log, dp.rank(), dp.size());
        return new Result(step, lastLoss, lastEval, lastCheckpoint, o.outputDir().resolve(MetricsLog.FILE),
                o.outputDir().resolve(PLOT));
    }

    /**
     * Writes {@code checkpoint-<step>} and returns its path; under data parallelism every rank writes its optimizer
     * shard and rank 0 the rest ({@link Checkpoints#save(Path, ParamLayout, float[], AdamW, Checkpoints.State, int,
     * Checkpoints.Extra, AtomicFiles.Channels, Collective)}).
     */
    private static Path saveCheckpoint(TrainOptions o, ParamLayout layout, float[] params, AdamW opt,
                                       Checkpoints.State st, int saveTotalLimit, Hooks hooks, DataParallel dp) {
        return Checkpoints.save(o.outputDir(), layout, params, opt, st, saveTotalLimit, hooks.extra(),
                hooks.channels(), dp.comm());
    }

    /** The checkpoint with the lowest eval loss so far ({@code --load_best_model_at_end}); checkpoint null: none yet. */
    record Best(Path checkpoint, double evalLoss) {
        boolean better(Double ev) {
            return ev != null && (checkpoint == null || ev < evalLoss);   // strictly lower, as transformers' np.less
        }

        /** From a resumed run's log history: the evaluated steps whose checkpoint is still in {@code outputDir}. */
        static Best of(ArrayNode history, Path outputDir, long upTo) {
            Best b = new Best(null, Double.NaN);
            java.util.Set<Path> kept = new java.util.HashSet<>();
            for (Path p : Checkpoints.list(outputDir)) kept.add(p.toAbsolutePath().normalize());
            for (JsonNode h : history) {
                if (!h.has("eval_loss") || h.path("step").asLong() > upTo) continue;
                Path dir = Checkpoints.dirFor(outputDir, h.path("step").asLong());
                if (kept.contains(dir.toAbsolutePath().normalize()) && b.better(h.path("eval_loss").asDouble()))
                    b = new Best(dir, h.path("eval_loss").asDouble());
            }
            return b;
        }
    }

    /** Puts the best checkpoint's trainable weights back so the final export writes them. */
    private static void loadBest(Best best, Path lastCheckpoint, ParamLayout layout, float[] params, AdamW opt,
                                 PrintStream log, int rank, int ranks) {
        if (best.checkpoint() == null) return;
        if (best.checkpoint().equals(lastCheckpoint)) {
            log.println("cpt4j: the last checkpoint " + lastCheckpoint + " has the lowest eval loss ("
                    + String.format(Locale.ROOT, "%.4f", best.evalLoss()) + "); it is the final model");
            return;
        }
        Checkpoints.load(best.checkpoint(), layout, params, opt, rank, ranks);
        log.println("cpt4j: loaded the best checkpoint " + best.checkpoint() + " (eval loss "
                + String.format(Locale.ROOT, "%.4f", best.evalLoss()) + ") as the final model (--load_best_model_at_end)");
    }

    /** Says why a newer checkpoint than the sound one is not recommended, or null. */
    private static String skipped(Path lastCheckpoint, Path lastSound) {
        if (lastCheckpoint == null || lastCheckpoint.equals(lastSound)) return null;
        Checkpoints.Health h = Checkpoints.healthOf(lastCheckpoint);
        return "not " + lastCheckpoint + ": " + (h != null && h.explosion() != null ? h.explosion() : "its weights exploded");
    }

    /** A cautious guess of a checkpoint's write time before one was measured: 4 copies of the trainable floats at 100 MB/s. */
    private static long estimateSaveNanos(long trainableFloats) {
        return trainableFloats * 4 * 4 * 10L;   // bytes × 10 ns per byte
    }

    /**
     * Mean loss over all evaluation blocks: each block weighs the same (every block has T−1 predictions), or, with
     * neat packing, each trained position does (the mean over all of them).
     */
    public static double evaluate(TrainableModel model, BatchSource data, int batch) {
        return evaluate(model, data.blockSize(), data.evalBlocks(), data.packed(), data::evalBlocks, batch);
    }

    /** Reads held-out blocks [first, first+count) and, when not null, their document starts. */
    public interface HeldOutBlocks {
        void read(int[] dst, int[] docStarts, long first, int count);
    }

    /** {@link #evaluate(TrainableModel, BatchSource, int)} over any {@code n} held-out blocks of T tokens. */
    public static double evaluate(TrainableModel model, int T, long n, boolean packed, HeldOutBlocks blocks, int batch) {
        int[] tokens = new int[batch * T];
        int[] starts = packed ? new int[batch * T] : null;
        double sum = 0, weight = 0;
        for (long first = 0; first < n; first += batch) {
            int count = (int) Math.min(batch, n - first);
            blocks.read(tokens, starts, first, count);
            if (!packed) {
                sum += model.loss(tokens, count, T) * count;
                continue;
            }
            long w = dev.cpt4j.model.CausalLm.trainedPositions(starts, count, T);
            if (w == 0) continue;                       // only one-token documents: nothing is predicted
            sum += model.loss(tokens, starts, count, T) * w;
            weight += w;
        }
        return packed ? sum / weight : sum / n;
    }

    /** The dropout seed of micro-batch {@code micro} of step {@code step}: SplitMix64 of (seed, step, micro). */
    public static long dropoutSeed(long seed, long step, int micro) {
        return mix(mix(seed ^ 0x9E3779B97F4A7C15L) + step * 0xBF58476D1CE4E5B9L + micro);
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    private static JsonNode rngState(long seed) {
        ObjectNode r = JSON.createObjectNode();
        r.put("kind", "splitmix64(seed, step, micro_batch)");   // stateless: the step restores it
        r.put("seed", seed);
        return r;
    }
}
