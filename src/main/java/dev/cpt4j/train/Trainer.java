package dev.cpt4j.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.UserError;
import dev.cpt4j.data.Prepare;
import dev.cpt4j.data.PrepareOptions;
import dev.cpt4j.data.TokenStore;
import dev.cpt4j.hf.HfCheckpoints;
import dev.cpt4j.hf.HfConfigs;
import dev.cpt4j.hf.PeftExport;
import dev.cpt4j.io.DType;
import dev.cpt4j.model.Gpt2Config;
import dev.cpt4j.model.Gpt2Layout;
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
     * {@code --data_cache_dir}, reused while valid), the base model prepared per {@link Gpt2Trainable} (resized
     * embeddings, LoRA, frozen base), {@link #run}, then the final adapter (peft files) or full model (HF folder)
     * with the tokenizer files in {@code o.outputDir()}. Messages go to {@code log}.
     */
    public static Result train(TrainOptions o, PrintStream log) {
        return train(o, Progress.console(log), log);
    }

    /** As {@link #train(TrainOptions, PrintStream)} with an explicit progress sink. */
    public static Result train(TrainOptions o, Progress progress, PrintStream log) {
        if (o.resumeFromCheckpoint() != null) Checkpoints.resolveResume(o); // fails early on a bad path
        for (String line : Checkpoints.prepareOutputDir(o)) log.println("cpt4j: " + line); // refuse before any work
        Consumer<String> say = m -> log.println("cpt4j: " + m);
        Tokenizer tokenizer = Tokenizer.load(o.tokenizerNameOrPath());
        Gpt2Config base = o.modelNameOrPath() != null
                ? HfConfigs.read(configOf(o.modelNameOrPath())) : Gpt2Trainable.readConfig(o.configName());
        int T = o.blockSize() > 0 ? o.blockSize() : Math.min(base.nPositions(), 1024); // run_clm's default
        if (T > base.nPositions())
            throw new UserError("--block_size " + T + " is beyond the model's context of " + base.nPositions()
                    + " positions; use --block_size " + base.nPositions() + " or less");
        int V = VocabResize.padded(tokenizer.vocabSize(), o.padToMultipleOf());
        HeapCheck.require(base, Gpt2Trainable.Spec.of(o, V, T), o.perDeviceTrainBatchSize(), Runtime.getRuntime().maxMemory());

        try (Parallel par = new Parallel(o.threads());
             TokenStore store = openData(o, tokenizer, T, base.nPositions(), say)) {
            Gemm gemm = new Gemm(par);
            Gpt2Trainable.Spec spec = Gpt2Trainable.Spec.of(o, V, T);
            Gpt2Trainable model = o.modelNameOrPath() != null
                    ? Gpt2Trainable.fromPretrained(o.modelNameOrPath(), spec, gemm, par, say)
                    : Gpt2Trainable.fromScratch(base, spec, gemm, par, say);
            long trainable = 0;
            for (ParamLayout.View v : model.layout().views()) if (model.isTrainable(v.name())) trainable += v.size();
            say.accept(String.format(Locale.ROOT, "%s: %,d trainable of %,d parameters; %,d training and %,d validation "
                            + "blocks of %d tokens; %d threads",
                    o.lora() ? "LoRA r=" + o.loraRank() + " on " + o.trainable() : "full fine-tuning", trainable,
                    model.model().layout().size(), store.train().blockCount(), store.validation().blockCount(), T, o.threads()));
            StoreBatches data = new StoreBatches(store, o.perDeviceTrainBatchSize(), o.seed());
            Result r = run(o, model, data, par, progress, log);
            export(o, model);
            say.accept(String.format(Locale.ROOT, "wrote the final %s to %s; peak memory (VmHWM) %.0f MiB",
                    o.lora() ? "adapter (adapter_config.json, adapter_model.safetensors)" : "model (model.safetensors, config.json)",
                    o.outputDir(), PeakMemory.rssMb()));
            return r;
        }
    }

    /** Writes the final adapter (LoRA) or HF model (full) of {@code model} and the tokenizer files into the output dir. */
    public static void export(TrainOptions o, Gpt2Trainable model) {
        Path out = o.outputDir();
        if (o.lora()) {
            String baseName = o.modelNameOrPath() != null ? o.modelNameOrPath().toString() : null;
            PeftExport.writeAdapter(out, model.config(), model.layout(), model.params(), o.loraRank(), o.loraAlpha(),
                    o.loraDropout(), o.useRslora(), o.trainable(), o.modulesToSave(), baseName);
        } else {
            com.fasterxml.jackson.databind.node.ObjectNode baseJson = o.modelNameOrPath() != null
                    ? HfCheckpoints.readConfigJson(o.modelNameOrPath()) : null;
            HfCheckpoints.save(out, model.config(), Gpt2Layout.of(model.config()), model.params(), DType.F32, baseJson);
        }
        PeftExport.copyTokenizerFiles(o.tokenizerNameOrPath(), out);
    }

    private static Path configOf(Path modelDir) {
        Path f = modelDir.resolve(HfCheckpoints.CONFIG);
        if (!Files.isDirectory(modelDir))
            throw new UserError("--model_name_or_path " + modelDir + ": model directory does not exist; give a Hugging "
                    + "Face GPT-2 folder (config.json + model.safetensors)");
        if (!Files.isRegularFile(f))
            throw new UserError("--model_name_or_path " + modelDir + ": no config.json; a Hugging Face model directory "
                    + "needs config.json beside its weights");
        return f;
    }

    /** Prepares (or reuses) the token store: {@code --data_cache_dir}, default {@code <dataset_dir>/.cpt4j-cache}. */
    private static TokenStore openData(TrainOptions o, Tokenizer tokenizer, int T, int nPositions, Consumer<String> say) {
        Path cache = o.dataCacheDir() != null ? o.dataCacheDir() : o.datasetDir().resolve(".cpt4j-cache");
        TokenStore store;
        if (o.datasetDir() == null) {
            store = TokenStore.open(cache);
            if (store.blockSize() != T) {
                store.close();
                throw new UserError("--data_cache_dir " + cache + " holds blocks of " + store.blockSize() + " tokens, not "
                        + "--block_size " + T + "; give --dataset_dir to rebuild it or use --block_size " + store.blockSize());
            }
            String why = store.tokenizerMismatch(tokenizer);
            if (why != null) {
                store.close();
                throw new UserError("--data_cache_dir " + cache + " was prepared with another tokenizer than "
                        + o.tokenizerNameOrPath() + " (its manifest has " + why + "); give --dataset_dir to rebuild it "
                        + "with this tokenizer, or train with the tokenizer it was prepared with");
            }
        } else {
            PrepareOptions po = new PrepareOptions(List.of(o.datasetDir()), cache, T, o.validationSplit(),
                    o.preprocessingNumWorkers(), PrepareOptions.DEFAULT_SEED, false, nPositions);
            store = Prepare.run(po, tokenizer, say);
        }
        return store;
    }

    /**
     * Runs (or resumes) training of {@code model} on {@code data} as configured by {@code o}. Writes checkpoints,
     * {@code metrics.jsonl} and {@code loss.png} into {@code o.outputDir()}. Exporting the final model/adapter is the
     * caller's job (the model knows its file format).
     */
    public static Result run(TrainOptions o, TrainableModel model, BatchSource data, Parallel par, Progress progress,
                             PrintStream log) {
        int B = o.perDeviceTrainBatchSize(), T = data.blockSize();
        if (T > model.maxSequenceLength())
            throw new UserError("--block_size " + T + " is beyond the model's context of " + model.maxSequenceLength()
                    + " positions; use --block_size " + model.maxSequenceLength() + " or less");
        int total = o.totalSteps(data.trainBlocks());
        Path resumeFrom = Checkpoints.resolveResume(o);
        for (String line : Checkpoints.prepareOutputDir(o)) log.println("cpt4j: " + line);

        ParamLayout layout = model.layout();
        float[] params = model.params(), grads = model.grads();
        AdamW opt = AdamW.forModel(model, o.learningRate(), o.embeddingLearningRate(), o.weightDecay(), o.adamBeta1(),
                o.adamBeta2(), o.adamEpsilon());
        if (opt.trainableCount() == 0) throw new UserError("nothing to train: no tensor is trainable; check --trainable/--modules_to_save");
        LrSchedule schedule = o.schedule(total);

        long step = 0;
        ArrayNode history = JSON.createArrayNode();
        Path lastCheckpoint = null;
        if (resumeFrom != null) {
            Checkpoints.State st = Checkpoints.load(resumeFrom, layout, params, opt);
            if (st.maxSteps() != total)
                log.println("cpt4j: note: the checkpoint's run had " + st.maxSteps() + " steps, this run has " + total
                        + "; the schedule follows this run");
            if (st.threads() != o.threads())
                log.println("cpt4j: note: the checkpoint was written with --threads " + st.threads() + "; resuming with "
                        + o.threads() + " gives slightly different numbers than an uninterrupted run");
            step = st.globalStep();
            history = st.logHistory();
            if (st.dataCursor() != null && !st.dataCursor().isNull()) data.restore(st.dataCursor());
            lastCheckpoint = resumeFrom;
            log.println("cpt4j: resumed from " + resumeFrom + " at step " + step + " of " + total);
        }
        if (step >= total) throw new UserError("the checkpoint is already at step " + step + " of " + total
                + "; raise --max_steps/--num_train_epochs to train further");

        int[] tokens = new int[B * T];                       // (B, T)
        List<LossPlot.Point> trainCurve = new ArrayList<>(), evalCurve = new ArrayList<>();
        for (JsonNode h : history) {
            if (h.has("loss")) trainCurve.add(new LossPlot.Point(h.path("step").asDouble(), h.path("loss").asDouble()));
            if (h.has("eval_loss")) evalCurve.add(new LossPlot.Point(h.path("step").asDouble(), h.path("eval_loss").asDouble()));
        }
        double lastLoss = Double.NaN;
        Double lastEval = null;
        long t0 = System.nanoTime(), tLog = t0;
        double lossSinceLog = 0;
        long stepsSinceLog = 0, tokensSinceLog = 0;
        try (MetricsLog metrics = MetricsLog.open(o.outputDir(), resumeFrom != null ? step : -1)) {
            progress.start(step, total);
            while (step < total) {
                long s = step + 1;                            // the step being computed, 1-based
                opt.zeroGrads(grads);
                double lossSum = 0;
                for (int micro = 0; micro < o.gradientAccumulationSteps(); micro++) {
                    data.nextTrain(tokens, B);
                    double l = model.forwardBackward(tokens, B, T, 1f / o.gradientAccumulationSteps(),
                            dropoutSeed(o.seed(), s, micro));
                    Finite.require(l, "loss", s, lastCheckpoint);
                    lossSum += l;
                }
                double loss = lossSum / o.gradientAccumulationSteps();
                double gradNorm = GradClip.clip(grads, opt.segments(), o.maxGradNorm(), par);
                Finite.require(gradNorm, "gradient norm", s, lastCheckpoint);
                double factor = schedule.factor(step);
                double lr = o.learningRate() * factor;
                opt.step(params, grads, factor, par);
                step = s;
                lastLoss = loss;
                lossSinceLog += loss;
                stepsSinceLog++;
                tokensSinceLog += (long) B * T * o.gradientAccumulationSteps();

                long now = System.nanoTime();
                double tokPerS = tokensSinceLog / Math.max(1e-9, (now - tLog) / 1e9);
                progress.step(step, loss, lr, gradNorm, tokPerS);
                if ((step == 1 && o.loggingFirstStep()) || step % o.loggingSteps() == 0 || step == total) {
                    double avg = lossSinceLog / stepsSinceLog;   // HF logs the mean loss since the last log
                    metrics.log(new MetricsLog.Train(step, avg, lr, gradNorm, tokPerS, (now - t0) / 1e9));
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
                    double ev = evaluate(model, data, o.perDeviceEvalBatchSize());
                    Finite.require(ev, "eval loss", step, lastCheckpoint);
                    lastEval = ev;
                    metrics.log(new MetricsLog.Eval(step, ev));
                    ObjectNode h = history.addObject();
                    h.put("eval_loss", ev);
                    h.put("eval_perplexity", Math.exp(ev));
                    h.put("step", step);
                    evalCurve.add(new LossPlot.Point(step, ev));
                    progress.message(String.format(Locale.ROOT, "step %d: eval loss %.4f, perplexity %.2f", step, ev, Math.exp(ev)));
                }
                if ((o.saveSteps() > 0 && step % o.saveSteps() == 0) || step == total) {
                    Checkpoints.State st = new Checkpoints.State(step, total, schedule, o.seed(), rngState(o.seed()),
                            data.state(), history, o.threads());
                    lastCheckpoint = Checkpoints.save(o.outputDir(), layout, params, opt, st, o.saveTotalLimit());
                    progress.message("step " + step + ": saved " + lastCheckpoint);
                }
            }
        } finally {
            progress.close();
            if (!trainCurve.isEmpty() || !evalCurve.isEmpty()) {
                LossPlot.write(o.outputDir().resolve(PLOT), trainCurve, evalCurve, 900, 540);
            }
        }
        return new Result(step, lastLoss, lastEval, lastCheckpoint, o.outputDir().resolve(MetricsLog.FILE),
                o.outputDir().resolve(PLOT));
    }

    /** Mean loss over all evaluation blocks (each block weighs the same). */
    public static double evaluate(TrainableModel model, BatchSource data, int batch) {
        int T = data.blockSize();
        long n = data.evalBlocks();
        int[] tokens = new int[batch * T];
        double sum = 0;
        for (long first = 0; first < n; first += batch) {
            int count = (int) Math.min(batch, n - first);
            data.evalBlocks(tokens, first, count);
            sum += model.loss(tokens, count, T) * count;
        }
        return sum / n;
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
