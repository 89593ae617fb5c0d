package dev.cpt4j.train;

import dev.cpt4j.UserError;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Everything a training run is configured with, named after the flags of the original recipe
 * ({@code run_clm_pt_with_peft.py} = HF {@code TrainingArguments} + LoRA arguments). Validated on construction;
 * messages name the flag to change. Defaults (applied by the CLI) are transformers' {@code TrainingArguments}
 * defaults and peft's {@code LoraConfig} defaults.
 *
 * @param modelNameOrPath       HF model folder to continue from; null with {@code configName} = from scratch
 * @param configName            config.json to start from random weights; null when continuing a model
 * @param tokenizerNameOrPath   tokenizer folder/file; defaults to {@code modelNameOrPath}
 * @param datasetDir            folder of {@code *.txt} files (one example per line); may be null when
 *                              {@code dataCacheDir} already holds prepared blocks
 * @param dataCacheDir          where prepared token blocks are cached; null = the preparer's default
 * @param validationSplit       FRACTION of blocks held out for evaluation (the recipe's
 *                              {@code --validation_split_percentage 0.001} means 0.1 %)
 * @param blockSize             tokens per training block; 0 = the model's context, capped at 1024 (run_clm's rule)
 * @param preprocessingNumWorkers threads for tokenizing the corpus
 * @param padToMultipleOf       resize embeddings to a multiple of this (0 = exact tokenizer size)
 * @param maxSteps              optimizer steps; −1 = derive from {@code numTrainEpochs}
 * @param embeddingLearningRate learning rate of trained embeddings (wte, wpe, lm_head), unsloth's recipe
 * @param warmupSteps           linear warm-up steps; 0 = {@code ceil(warmupRatio × max_steps)}
 * @param maxGradNorm           global-norm clipping threshold; 0 = off
 * @param loraRank              LoRA rank r; 0 = full fine-tuning (no adapter)
 * @param trainable             LoRA target modules as given (peft's {@code target_modules} names: {@code c_attn},
 *                              {@code q_proj}, {@code all-linear}, …); the model's family resolves them
 *                              ({@code ModelFamily#resolveLoraSites}); empty = the family's peft default
 * @param modulesToSave         modules trained in full beside LoRA, as given ({@code wte}, {@code embed_tokens},
 *                              {@code lm_head}, …); resolved by the family
 * @param ensureWeightTying     keep the embedding and lm_head one tensor when both are trained (peft's
 *                              {@code ensure_weight_tying}); default unties them as peft does
 * @param baseDtype             storage of frozen base weights
 * @param evalSteps             evaluate every this many steps when {@code doEval}; 0 = only at the end
 * @param saveSteps             checkpoint every this many steps; 0 = no intermediate checkpoints
 * @param saveTotalLimit        keep at most this many checkpoints; 0 = keep all
 * @param resumeFromCheckpoint  null, {@code "true"} (latest in outputDir) or a checkpoint folder
 * @param threads               compute threads
 * @param trainableTokenIndices peft's {@code trainable_token_indices}: null (none), {@code new} (every row the
 *                              vocabulary resize adds) or a comma list of token ids; only those rows of the
 *                              embedding (and of an untied head) train, the adapter stores just them
 * @param peftPath              an adapter folder (peft files) whose LoRA tensors and modules_to_save copies are the
 *                              starting point (Chinese-LLaMA-Alpaca's {@code --peft_path}); its adapter_config.json
 *                              sets the LoRA configuration; the optimizer and the step count start fresh; null = none
 * @param maxTrainSamples       train on the first N training blocks only (run_clm's {@code --max_train_samples});
 *                              −1 = all
 * @param maxEvalSamples        evaluate on the first N validation blocks only; −1 = all
 * @param tensorboard           also write TensorBoard event files ({@code --report_to tensorboard})
 * @param loggingDir            the TensorBoard folder; null = {@code outputDir/runs/<runName or date_host>}
 * @param runName               the TensorBoard run's folder name under {@code outputDir/runs}; null = date and host,
 *                              as transformers' default
 * @param evalOnStart           evaluate once before the first step (transformers' {@code eval_on_start}), logged as
 *                              step {@code global_step} (0 for a new run)
 * @param loadBestModelAtEnd    the final adapter or model is the checkpoint with the lowest eval loss
 *                              (transformers' {@code load_best_model_at_end} with {@code metric_for_best_model loss});
 *                              that checkpoint survives {@code saveTotalLimit}; needs evaluation at every save
 * @param neatPacking           {@code --neat_packing}: inside a packed block a token attends only to its own document
 *                              (input line or JSONL record), positions restart per document and no position is
 *                              trained on the next document's first token
 * @param datasetDirs           every source of {@code --dataset_dir A,B,…} as given when there is more than one
 *                              ({@code datasetDir} is then the first); empty for one source. Without
 *                              {@code interleaveProbs} the sources are concatenated into one corpus
 * @param interleaveProbs       {@code --interleave_probs}: the probability of each of {@code datasetDirs} per training
 *                              block (each source its own store and epochs); empty = no mixing
 * @param generalEvalFile       {@code --general_eval_file}: general-domain held-out text evaluated beside the domain's
 *                              validation split at every evaluation (forgetting), or null
 */
public record TrainOptions(
        Path modelNameOrPath,
        Path configName,
        Path tokenizerNameOrPath,
        Path datasetDir,
        Path dataCacheDir,
        double validationSplit,
        int blockSize,
        int preprocessingNumWorkers,
        int padToMultipleOf,
        int perDeviceTrainBatchSize,
        int perDeviceEvalBatchSize,
        int gradientAccumulationSteps,
        int maxSteps,
        double numTrainEpochs,
        long seed,
        double learningRate,
        double embeddingLearningRate,
        double weightDecay,
        double adamBeta1,
        double adamBeta2,
        double adamEpsilon,
        double maxGradNorm,
        LrSchedule.Type lrSchedulerType,
        int warmupSteps,
        double warmupRatio,
        int loraRank,
        double loraAlpha,
        double loraDropout,
        List<String> trainable,
        List<String> modulesToSave,
        boolean useRslora,
        boolean ensureWeightTying,
        boolean gradientCheckpointing,
        BaseDtype baseDtype,
        int loggingSteps,
        boolean loggingFirstStep,
        boolean doEval,
        int evalSteps,
        int saveSteps,
        int saveTotalLimit,
        Path outputDir,
        boolean overwriteOutputDir,
        String resumeFromCheckpoint,
        int threads,
        String trainableTokenIndices,
        Path peftPath,
        int maxTrainSamples,
        int maxEvalSamples,
        boolean tensorboard,
        Path loggingDir,
        String runName,
        boolean evalOnStart,
        boolean loadBestModelAtEnd,
        boolean neatPacking,
        List<Path> datasetDirs,
        List<Double> interleaveProbs,
        Path generalEvalFile) {

    /** Storage of the frozen base weights. */
    public enum BaseDtype { FP32, BF16 }

    public TrainOptions {
        if (modelNameOrPath == null && configName == null)
            throw new UserError("no model: give --model_name_or_path DIR (a Hugging Face model folder) or "
                    + "--config_name config.json to train from scratch");
        if (modelNameOrPath != null && configName != null)
            throw new UserError("--config_name starts from random weights and --model_name_or_path continues a model; "
                    + "give only one of them");
        if (tokenizerNameOrPath == null) {
            if (modelNameOrPath == null)
                throw new UserError("training from --config_name needs --tokenizer_name_or_path (a tokenizer.json or "
                        + "folder)");
            tokenizerNameOrPath = modelNameOrPath;
        }
        if (datasetDir == null && dataCacheDir == null)
            throw new UserError("no data: give --dataset_dir DIR (folder of *.txt files, one example per line)");
        if (outputDir == null) throw new UserError("--output_dir DIR is required (checkpoints and the final model go there)");
        if (!(validationSplit >= 0 && validationSplit < 1))
            throw new UserError("--validation_split_percentage is a fraction in [0, 1) as in run_clm_pt_with_peft.py "
                    + "(0.001 = 0.1 %), got " + validationSplit);
        if (blockSize < 0) throw new UserError("--block_size must be positive (or omitted for the model's context), got " + blockSize);
        if (blockSize == 1)
            throw new UserError("--block_size 1 leaves nothing to learn: a block needs at least 2 tokens (each token is "
                    + "trained to predict the next one inside its block); use --block_size 2 or more, or omit it for the "
                    + "model's context");
        positive(threads, "--threads");                       // first: --preprocessing_num_workers defaults to it
        positive(preprocessingNumWorkers, "--preprocessing_num_workers");
        if (padToMultipleOf < 0) throw new UserError("--pad_to_multiple_of must be >= 0, got " + padToMultipleOf);
        positive(perDeviceTrainBatchSize, "--per_device_train_batch_size");
        positive(perDeviceEvalBatchSize, "--per_device_eval_batch_size");
        positive(gradientAccumulationSteps, "--gradient_accumulation_steps");
        if (maxSteps == 0 || maxSteps < -1)
            throw new UserError("--max_steps must be positive (or -1 to use --num_train_epochs), got " + maxSteps);
        if (maxSteps < 0 && !(numTrainEpochs > 0 && Double.isFinite(numTrainEpochs)))
            throw new UserError("--num_train_epochs must be positive when --max_steps is not given, got " + numTrainEpochs);
        if (!(learningRate > 0 && Double.isFinite(learningRate)))
            throw new UserError("--learning_rate must be a positive number, got " + learningRate);
        if (!(embeddingLearningRate > 0 && Double.isFinite(embeddingLearningRate)))
            throw new UserError("--embedding_learning_rate must be a positive number, got " + embeddingLearningRate);
        if (!(weightDecay >= 0 && Double.isFinite(weightDecay)))
            throw new UserError("--weight_decay must be >= 0, got " + weightDecay);
        if (!(adamBeta1 >= 0 && adamBeta1 < 1)) throw new UserError("--adam_beta1 must be in [0, 1), got " + adamBeta1);
        if (!(adamBeta2 >= 0 && adamBeta2 < 1)) throw new UserError("--adam_beta2 must be in [0, 1), got " + adamBeta2);
        if (!(adamEpsilon >= 0 && Double.isFinite(adamEpsilon)))
            throw new UserError("--adam_epsilon must be >= 0, got " + adamEpsilon);
        if (!(maxGradNorm >= 0 && Double.isFinite(maxGradNorm)))
            throw new UserError("--max_grad_norm must be >= 0 (0 turns clipping off), got " + maxGradNorm);
        if (lrSchedulerType == null) throw new UserError("--lr_scheduler_type must be one of linear, cosine, constant, constant_with_warmup");
        if (warmupSteps < 0) throw new UserError("--warmup_steps must be >= 0, got " + warmupSteps);
        if (!(warmupRatio >= 0 && warmupRatio <= 1)) throw new UserError("--warmup_ratio must be in [0, 1], got " + warmupRatio);

        trainable = names(trainable);
        modulesToSave = names(modulesToSave);
        if (loraRank < 0) throw new UserError("--lora_rank must be >= 0 (0 = full fine-tuning), got " + loraRank);
        if (loraRank > 0) {
            if (!(loraAlpha > 0 && Double.isFinite(loraAlpha))) throw new UserError("--lora_alpha must be positive, got " + loraAlpha);
            if (!(loraDropout >= 0 && loraDropout < 1)) throw new UserError("--lora_dropout must be in [0, 1), got " + loraDropout);
        } else {
            if (!trainable.isEmpty())
                throw new UserError("--trainable selects LoRA targets; add --lora_rank R (e.g. 8) or drop --trainable for full fine-tuning");
            if (!modulesToSave.isEmpty())
                throw new UserError("--modules_to_save only applies with LoRA; add --lora_rank R or drop --modules_to_save "
                        + "(full fine-tuning trains every tensor)");
            if (useRslora) throw new UserError("--use_rslora only applies with LoRA; add --lora_rank R");
        }
        if (trainableTokenIndices != null) {
            String t = trainableTokenIndices.strip();
            trainableTokenIndices = t.isEmpty() ? null : t;
        }
        if (trainableTokenIndices != null) {
            if (loraRank == 0)
                throw new UserError("--trainable_token_indices trains rows of the embedding beside LoRA; add --lora_rank R "
                        + "(full fine-tuning trains every row)");
            if (!trainableTokenIndices.equals("new")) tokenIds(trainableTokenIndices);   // validates the list
        }
        if (baseDtype == null) baseDtype = BaseDtype.FP32;
        positive(loggingSteps, "--logging_steps");
        if (evalSteps < 0) throw new UserError("--eval_steps must be >= 0, got " + evalSteps);
        if (saveSteps < 0) throw new UserError("--save_steps must be >= 0 (0 = only the final model), got " + saveSteps);
        if (saveTotalLimit < 0) throw new UserError("--save_total_limit must be >= 0 (0 = keep all), got " + saveTotalLimit);
        if (maxTrainSamples == 0 || maxTrainSamples < -1)
            throw new UserError("--max_train_samples must be >= 1 (or omitted for every block), got " + maxTrainSamples);
        if (maxEvalSamples == 0 || maxEvalSamples < -1)
            throw new UserError("--max_eval_samples must be >= 1 (or omitted for every block), got " + maxEvalSamples);
        if (runName != null) {
            runName = runName.strip();
            if (runName.isEmpty()) runName = null;
            else if (runName.contains("/") || runName.contains("\\") || runName.equals("..") || runName.equals("."))
                throw new UserError("--run_name '" + runName + "' names a folder under " + "runs/; give a plain name "
                        + "without '/' (or --logging_dir DIR for another place)");
        }
        if (loadBestModelAtEnd) {
            if (!doEval) throw new UserError("--load_best_model_at_end picks the checkpoint with the lowest eval loss; "
                    + "add --do_eval (or --eval_strategy steps)");
            if (saveSteps <= 0 || evalSteps <= 0 || saveSteps % evalSteps != 0)
                throw new UserError("--load_best_model_at_end needs an evaluation at every checkpoint: --save_steps ("
                        + saveSteps + ") must be a multiple of --eval_steps (" + evalSteps + "), both positive, as "
                        + "transformers requires");
        }
        datasetDirs = datasetDirs == null ? List.of() : List.copyOf(datasetDirs);
        interleaveProbs = interleaveProbs == null ? List.of() : List.copyOf(interleaveProbs);
        if (datasetDirs.size() == 1) datasetDirs = List.of();
        if (!datasetDirs.isEmpty() && !datasetDirs.getFirst().equals(datasetDir))
            throw new IllegalArgumentException("datasetDir must be the first of datasetDirs");
        if (!interleaveProbs.isEmpty()) {
            int n = Math.max(1, datasetDirs.size());
            if (interleaveProbs.size() != n)
                throw new UserError("--interleave_probs gives " + interleaveProbs.size() + " probabilities for " + n
                        + " source" + (n == 1 ? "" : "s") + " of --dataset_dir; give one per source, in the same order");
            if (n < 2)
                throw new UserError("--interleave_probs mixes several sources: give them as --dataset_dir A,B");
            double sum = 0;
            for (int i = 0; i < n; i++) {
                double p = interleaveProbs.get(i);
                if (!(p >= 0 && Double.isFinite(p)))
                    throw new UserError("--interleave_probs: probability " + p + " of " + datasetDirs.get(i)
                            + " is negative or not a number; give values in [0, 1] that sum to 1");
                sum += p;
            }
            if (Math.abs(sum - 1) > 1e-6)
                throw new UserError("--interleave_probs sum to " + Math.round(sum * 1e9) / 1e9 + ", not 1; cpt4j does not renormalise them: give "
                        + "probabilities that sum to 1 (e.g. 0.75,0.25)");
            if (dataCacheDir != null && datasetDir == null)
                throw new UserError("--interleave_probs needs the sources: give them as --dataset_dir A,B");
            if (maxTrainSamples > 0 || maxEvalSamples > 0)
                throw new UserError("--max_train_samples / --max_eval_samples select blocks of one store; with "
                        + "--interleave_probs each source has its own: drop them, or mix smaller sources");
        }
        if (resumeFromCheckpoint != null) {
            String r = resumeFromCheckpoint.strip();
            if (r.isEmpty() || r.equalsIgnoreCase("false")) resumeFromCheckpoint = null;
            else if (r.equalsIgnoreCase("true")) resumeFromCheckpoint = "true";
        }
    }

    /** True when blocks are sampled from several sources ({@code --interleave_probs}). */
    public boolean mixing() {
        return !interleaveProbs.isEmpty();
    }

    /** Every source as given: {@link #datasetDirs()}, or the one {@link #datasetDir()} (empty when none). */
    public List<Path> sources() {
        if (!datasetDirs.isEmpty()) return datasetDirs;
        return datasetDir == null ? List.of() : List.of(datasetDir);
    }

    /** True when training a LoRA adapter (else full fine-tuning). */
    public boolean lora() {
        return loraRank > 0;
    }

    /** LoRA scaling s: {@code alpha / r}, or {@code alpha / √r} with rsLoRA (peft {@code LoraLayer.update_layer}). */
    public double loraScaling() {
        if (loraRank == 0) return 0;
        return useRslora ? loraAlpha / Math.sqrt(loraRank) : loraAlpha / loraRank;
    }

    /** True for {@code --resume_from_checkpoint true}: the latest complete checkpoint in {@link #outputDir()}. */
    public boolean resumeLatest() {
        return "true".equals(resumeFromCheckpoint);
    }

    /** The explicit checkpoint folder to resume from, or null. */
    public Path resumePath() {
        return resumeFromCheckpoint == null || resumeLatest() ? null : Path.of(resumeFromCheckpoint);
    }

    /** Sequences per optimizer step: batch size × accumulation steps. */
    public int effectiveBatchSize() {
        return perDeviceTrainBatchSize * gradientAccumulationSteps;
    }

    /**
     * Optimizer steps of the run: {@code max_steps} if given, else HF Trainer's
     * ({@code set_initial_training_values}) {@code ceil(num_train_epochs × max(ceil(batches / accumulation), 1))}
     * with {@code batches = ceil(trainBlocks / batch)} (its dataloader keeps the last partial batch).
     */
    public int totalSteps(long trainBlocks) {
        if (maxSteps > 0) return maxSteps;
        if (trainBlocks < 1)
            throw new UserError("the training split is empty; add data to --dataset_dir or lower --block_size");
        long batches = (trainBlocks + perDeviceTrainBatchSize - 1) / perDeviceTrainBatchSize;
        long perEpoch = Math.max((batches + gradientAccumulationSteps - 1) / gradientAccumulationSteps, 1);
        double steps = Math.ceil(numTrainEpochs * perEpoch);
        if (steps > Integer.MAX_VALUE) throw new UserError("--num_train_epochs " + numTrainEpochs + " gives too many steps");
        return (int) steps;
    }

    /** The learning-rate schedule for a run of {@code totalSteps}. */
    public LrSchedule schedule(int totalSteps) {
        return new LrSchedule(lrSchedulerType, LrSchedule.resolveWarmup(warmupSteps, warmupRatio, totalSteps), totalSteps);
    }

    private static void positive(int v, String flag) {
        if (v < 1) throw new UserError(flag + " must be >= 1, got " + v);
    }

    /** A comma list's names, stripped, without empties and repeats, in the order given. */
    private static List<String> names(List<String> raw) {
        Set<String> out = new LinkedHashSet<>();
        if (raw != null) for (String n : raw) if (!n.strip().isEmpty()) out.add(n.strip());
        return List.copyOf(out);
    }

    /** The ids of a {@code --trainable_token_indices} list ("3,7,150"), in the order given; one line on bad input. */
    public static List<Integer> tokenIds(String list) {
        Set<Integer> out = new LinkedHashSet<>();
        for (String raw : list.split(",")) {
            String n = raw.strip();
            if (n.isEmpty()) continue;
            int id;
            try {
                id = Integer.parseInt(n);
            } catch (NumberFormatException e) {
                throw new UserError("--trainable_token_indices takes 'new' or a comma list of token ids, got '" + n + "'");
            }
            if (id < 0) throw new UserError("--trainable_token_indices: token id " + id + " is negative");
            if (!out.add(id)) throw new UserError("--trainable_token_indices: token id " + id + " is listed twice");
        }
        if (out.isEmpty()) throw new UserError("--trainable_token_indices: no token id given; use 'new' or a comma list of ids");
        return List.copyOf(out);
    }

    /** A builder with transformers' {@code TrainingArguments} and peft's {@code LoraConfig} defaults. */
    public static Builder builder() {
        return new Builder();
    }

    /** A builder holding these options, to change a few. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.modelNameOrPath = modelNameOrPath;
        b.configName = configName;
        b.tokenizerNameOrPath = tokenizerNameOrPath;
        b.datasetDir = datasetDir;
        b.dataCacheDir = dataCacheDir;
        b.validationSplit = validationSplit;
        b.blockSize = blockSize;
        b.preprocessingNumWorkers = preprocessingNumWorkers;
        b.padToMultipleOf = padToMultipleOf;
        b.perDeviceTrainBatchSize = perDeviceTrainBatchSize;
        b.perDeviceEvalBatchSize = perDeviceEvalBatchSize;
        b.gradientAccumulationSteps = gradientAccumulationSteps;
        b.maxSteps = maxSteps;
        b.numTrainEpochs = numTrainEpochs;
        b.seed = seed;
        b.learningRate = learningRate;
        b.embeddingLearningRate = embeddingLearningRate;
        b.weightDecay = weightDecay;
        b.adamBeta1 = adamBeta1;
        b.adamBeta2 = adamBeta2;
        b.adamEpsilon = adamEpsilon;
        b.maxGradNorm = maxGradNorm;
        b.lrSchedulerType = lrSchedulerType;
        b.warmupSteps = warmupSteps;
        b.warmupRatio = warmupRatio;
        b.loraRank = loraRank;
        b.loraAlpha = loraAlpha;
        b.loraDropout = loraDropout;
        b.trainable = trainable;
        b.modulesToSave = modulesToSave;
        b.useRslora = useRslora;
        b.ensureWeightTying = ensureWeightTying;
        b.gradientCheckpointing = gradientCheckpointing;
        b.baseDtype = baseDtype;
        b.loggingSteps = loggingSteps;
        b.loggingFirstStep = loggingFirstStep;
        b.doEval = doEval;
        b.evalSteps = evalSteps;
        b.saveSteps = saveSteps;
        b.saveTotalLimit = saveTotalLimit;
        b.outputDir = outputDir;
        b.overwriteOutputDir = overwriteOutputDir;
        b.resumeFromCheckpoint = resumeFromCheckpoint;
        b.threads = threads;
        b.trainableTokenIndices = trainableTokenIndices;
        b.peftPath = peftPath;
        b.maxTrainSamples = maxTrainSamples;
        b.maxEvalSamples = maxEvalSamples;
        b.tensorboard = tensorboard;
        b.loggingDir = loggingDir;
        b.runName = runName;
        b.evalOnStart = evalOnStart;
        b.loadBestModelAtEnd = loadBestModelAtEnd;
        b.neatPacking = neatPacking;
        b.datasetDirs = datasetDirs;
        b.interleaveProbs = interleaveProbs;
        b.generalEvalFile = generalEvalFile;
        return b;
    }

    /**
     * Builds {@link TrainOptions} one named setting at a time; unset settings keep transformers'
     * {@code TrainingArguments} / peft {@code LoraConfig} defaults (batch 8, learning rate 5e-5, 3 epochs, linear
     * schedule, seed 42, logging and saving every 500 steps, full fine-tuning unless {@link #loraRank} is set). Three
     * defaults follow others: {@code preprocessingNumWorkers} follows {@code threads} (all cores),
     * {@code embeddingLearningRate} follows {@code learningRate} and {@code evalSteps} follows
     * {@code loggingSteps}. {@link #build()} validates and throws {@link UserError} naming the flag to change.
     *
     * <pre>{@code
     * TrainOptions o = TrainOptions.builder()
     *         .modelNameOrPath(Path.of("models/gpt2-chinese"))
     *         .datasetDir(Path.of("corpus"))
     *         .outputDir(Path.of("out"))
     *         .loraRank(8).loraAlpha(32).trainable(List.of("c_attn"))
     *         .maxSteps(100)
     *         .build();
     * }</pre>
     */
    public static final class Builder {
        private Path modelNameOrPath;
        private Path configName;
        private Path tokenizerNameOrPath;
        private Path datasetDir;
        private Path dataCacheDir;
        private double validationSplit = dev.cpt4j.data.PrepareOptions.DEFAULT_VALIDATION_FRACTION;
        private int blockSize = 0;
        private Integer preprocessingNumWorkers;   // null: follows threads
        private int padToMultipleOf = 0;
        private int perDeviceTrainBatchSize = 8;
        private int perDeviceEvalBatchSize = 8;
        private int gradientAccumulationSteps = 1;
        private int maxSteps = -1;
        private double numTrainEpochs = 3.0;
        private long seed = 42;
        private double learningRate = 5e-5;
        private double embeddingLearningRate = Double.NaN;
        private double weightDecay = 0.0;
        private double adamBeta1 = 0.9;
        private double adamBeta2 = 0.999;
        private double adamEpsilon = 1e-8;
        private double maxGradNorm = 1.0;
        private LrSchedule.Type lrSchedulerType = LrSchedule.Type.LINEAR;
        private int warmupSteps = 0;
        private double warmupRatio = 0.0;
        private int loraRank = 0;
        private double loraAlpha = 8;
        private double loraDropout = 0.0;
        private List<String> trainable = List.of();
        private List<String> modulesToSave = List.of();
        private boolean useRslora;
        private boolean ensureWeightTying;
        private boolean gradientCheckpointing;
        private BaseDtype baseDtype = BaseDtype.FP32;
        private int loggingSteps = 500;
        private boolean loggingFirstStep;
        private boolean doEval;
        private int evalSteps = -1;
        private int saveSteps = 500;
        private int saveTotalLimit = 0;
        private Path outputDir;
        private boolean overwriteOutputDir;
        private String resumeFromCheckpoint;
        private int threads = Runtime.getRuntime().availableProcessors();
        private String trainableTokenIndices;
        private Path peftPath;
        private int maxTrainSamples = -1;
        private int maxEvalSamples = -1;
        private boolean tensorboard;
        private Path loggingDir;
        private String runName;
        private boolean evalOnStart;
        private boolean loadBestModelAtEnd;
        private boolean neatPacking;
        private List<Path> datasetDirs = List.of();
        private List<Double> interleaveProbs = List.of();
        private Path generalEvalFile;

        private Builder() {}

        public Builder modelNameOrPath(Path v) {
            this.modelNameOrPath = v;
            return this;
        }

        public Builder configName(Path v) {
            this.configName = v;
            return this;
        }

        public Builder tokenizerNameOrPath(Path v) {
            this.tokenizerNameOrPath = v;
            return this;
        }

        public Builder datasetDir(Path v) {
            this.datasetDir = v;
            this.datasetDirs = List.of();
            return this;
        }

        public Builder dataCacheDir(Path v) {
            this.dataCacheDir = v;
            return this;
        }

        public Builder validationSplit(double v) {
            this.validationSplit = v;
            return this;
        }

        public Builder blockSize(int v) {
            this.blockSize = v;
            return this;
        }

        public Builder preprocessingNumWorkers(int v) {
            this.preprocessingNumWorkers = v;
            return this;
        }

        public Builder padToMultipleOf(int v) {
            this.padToMultipleOf = v;
            return this;
        }

        public Builder perDeviceTrainBatchSize(int v) {
            this.perDeviceTrainBatchSize = v;
            return this;
        }

        public Builder perDeviceEvalBatchSize(int v) {
            this.perDeviceEvalBatchSize = v;
            return this;
        }

        public Builder gradientAccumulationSteps(int v) {
            this.gradientAccumulationSteps = v;
            return this;
        }

        public Builder maxSteps(int v) {
            this.maxSteps = v;
            return this;
        }

        public Builder numTrainEpochs(double v) {
            this.numTrainEpochs = v;
            return this;
        }

        public Builder seed(long v) {
            this.seed = v;
            return this;
        }

        public Builder learningRate(double v) {
            this.learningRate = v;
            return this;
        }

        public Builder embeddingLearningRate(double v) {
            this.embeddingLearningRate = v;
            return this;
        }

        public Builder weightDecay(double v) {
            this.weightDecay = v;
            return this;
        }

        public Builder adamBeta1(double v) {
            this.adamBeta1 = v;
            return this;
        }

        public Builder adamBeta2(double v) {
            this.adamBeta2 = v;
            return this;
        }

        public Builder adamEpsilon(double v) {
            this.adamEpsilon = v;
            return this;
        }

        public Builder maxGradNorm(double v) {
            this.maxGradNorm = v;
            return this;
        }

        public Builder lrSchedulerType(LrSchedule.Type v) {
            this.lrSchedulerType = v;
            return this;
        }

        public Builder warmupSteps(int v) {
            this.warmupSteps = v;
            return this;
        }

        public Builder warmupRatio(double v) {
            this.warmupRatio = v;
            return this;
        }

        public Builder loraRank(int v) {
            this.loraRank = v;
            return this;
        }

        public Builder loraAlpha(double v) {
            this.loraAlpha = v;
            return this;
        }

        public Builder loraDropout(double v) {
            this.loraDropout = v;
            return this;
        }

        public Builder trainable(List<String> v) {
            this.trainable = v;
            return this;
        }

        public Builder modulesToSave(List<String> v) {
            this.modulesToSave = v;
            return this;
        }

        public Builder useRslora(boolean v) {
            this.useRslora = v;
            return this;
        }

        public Builder ensureWeightTying(boolean v) {
            this.ensureWeightTying = v;
            return this;
        }

        public Builder gradientCheckpointing(boolean v) {
            this.gradientCheckpointing = v;
            return this;
        }

        public Builder baseDtype(BaseDtype v) {
            this.baseDtype = v;
            return this;
        }

        public Builder loggingSteps(int v) {
            this.loggingSteps = v;
            return this;
        }

        public Builder loggingFirstStep(boolean v) {
            this.loggingFirstStep = v;
            return this;
        }

        public Builder doEval(boolean v) {
            this.doEval = v;
            return this;
        }

        public Builder evalSteps(int v) {
            this.evalSteps = v;
            return this;
        }

        public Builder saveSteps(int v) {
            this.saveSteps = v;
            return this;
        }

        public Builder saveTotalLimit(int v) {
            this.saveTotalLimit = v;
            return this;
        }

        public Builder outputDir(Path v) {
            this.outputDir = v;
            return this;
        }

        public Builder overwriteOutputDir(boolean v) {
            this.overwriteOutputDir = v;
            return this;
        }

        public Builder resumeFromCheckpoint(String v) {
            this.resumeFromCheckpoint = v;
            return this;
        }

        public Builder threads(int v) {
            this.threads = v;
            return this;
        }

        public Builder trainableTokenIndices(String v) {
            this.trainableTokenIndices = v;
            return this;
        }

        public Builder peftPath(Path v) {
            this.peftPath = v;
            return this;
        }

        public Builder maxTrainSamples(int v) {
            this.maxTrainSamples = v;
            return this;
        }

        public Builder maxEvalSamples(int v) {
            this.maxEvalSamples = v;
            return this;
        }

        public Builder tensorboard(boolean v) {
            this.tensorboard = v;
            return this;
        }

        public Builder loggingDir(Path v) {
            this.loggingDir = v;
            return this;
        }

        public Builder runName(String v) {
            this.runName = v;
            return this;
        }

        public Builder evalOnStart(boolean v) {
            this.evalOnStart = v;
            return this;
        }

        public Builder loadBestModelAtEnd(boolean v) {
            this.loadBestModelAtEnd = v;
            return this;
        }

        public Builder neatPacking(boolean v) {
            this.neatPacking = v;
            return this;
        }

        /** Every source as given ({@code --dataset_dir A,B}); also sets {@link #datasetDir} to the first. */
        public Builder datasetDirs(List<Path> v) {
            this.datasetDirs = v == null ? List.of() : v;
            if (!this.datasetDirs.isEmpty()) this.datasetDir = this.datasetDirs.getFirst();
            return this;
        }

        public Builder interleaveProbs(List<Double> v) {
            this.interleaveProbs = v == null ? List.of() : v;
            return this;
        }

        public Builder generalEvalFile(Path v) {
            this.generalEvalFile = v;
            return this;
        }

        private int workers() {
            return preprocessingNumWorkers != null ? preprocessingNumWorkers : threads;
        }

        /** The validated options. */
        public TrainOptions build() {
            return new TrainOptions(modelNameOrPath, configName, tokenizerNameOrPath, datasetDir, dataCacheDir, validationSplit, blockSize, workers(), padToMultipleOf, perDeviceTrainBatchSize, perDeviceEvalBatchSize, gradientAccumulationSteps, maxSteps, numTrainEpochs, seed, learningRate, Double.isNaN(embeddingLearningRate) ? learningRate : embeddingLearningRate, weightDecay, adamBeta1, adamBeta2, adamEpsilon, maxGradNorm, lrSchedulerType, warmupSteps, warmupRatio, loraRank, loraAlpha, loraDropout, trainable, modulesToSave, useRslora, ensureWeightTying, gradientCheckpointing, baseDtype, loggingSteps, loggingFirstStep, doEval, evalSteps < 0 ? loggingSteps : evalSteps, saveSteps, saveTotalLimit, outputDir, overwriteOutputDir, resumeFromCheckpoint, threads, trainableTokenIndices, peftPath, maxTrainSamples, maxEvalSamples, tensorboard, loggingDir, runName, evalOnStart, loadBestModelAtEnd, neatPacking, datasetDirs, interleaveProbs, generalEvalFile);
        }
    }
}

