package dev.cpt4j.cli;

import dev.cpt4j.UserError;
import dev.cpt4j.dist.Collective;
import dev.cpt4j.dist.Collectives;
import dev.cpt4j.train.Interruption;
import dev.cpt4j.train.LrSchedule;
import dev.cpt4j.train.Progress;
import dev.cpt4j.train.TrainOptions;
import dev.cpt4j.train.Trainer;
import java.nio.file.Path;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code cpt4j train}: continued pretraining (LoRA or full) with the flags of the original recipe
 * ({@code run_clm_pt_with_peft.py}, HF TrainingArguments) in snake_case as written there, and kebab-case too.
 * Flags that only mean something to PyTorch/DeepSpeed are accepted and answered with one line saying what cpt4j
 * does instead. Thin: parses, builds {@link TrainOptions}, calls {@link Trainer#train}.
 */
@Command(name = "train", sortOptions = false, mixinStandardHelpOptions = true,
        description = "Continued pretraining of a GPT-2 or LLaMA-family model (LoRA or full fine-tuning). Accepts "
                + "run_clm_pt_with_peft.py's flags (HF TrainingArguments, Chinese-LLaMA-Alpaca) as written there.",
        footer = {"%nAlso accepted, each answered with one line saying what cpt4j does instead: --deepspeed, "
                + "--ddp_timeout, --ddp_find_unused_parameters, --local_rank, --fp16, --bf16, --tf32, --torch_dtype, "
                + "--load_in_kbits, --double_quant, --quant_type, --flash_attn, --use_cpu, --torch_compile, --optim "
                + "adamw_torch, --logging_strategy steps, --save_strategy steps|no, --save_safetensors, --save_only_model, "
                + "--dataloader_num_workers, "
                + "--dataloader_pin_memory, --remove_unused_columns, --group_by_length, --full_determinism, --data_seed, "
                + "--log_level, --include_tokens_per_second, --hub_model_id, --do_predict, --debug_mode, --cache_dir, "
                + "--model_revision, --use_fast_tokenizer, --token, --low_cpu_mem_usage, --trust_remote_code, "
                + "--model_type, --streaming, --keep_linebreaks, --overwrite_cache.",
                "--load_best_model_at_end (with --metric_for_best_model loss) makes the checkpoint with the lowest eval "
                + "loss the final adapter or model; it needs --do_eval and --save_steps a multiple of --eval_steps.",
                "A repeated flag takes its last value. Progress: a bar on a terminal, one plain line per logging step "
                + "and per evaluation and checkpoint otherwise (CPT4J_PROGRESS=bar|lines overrides)."})
final class TrainCommand implements Callable<Integer> {
    @Mixin
    BackendOption backendOption;
    @Mixin
    CompatFlags compat;

    // ---- model, tokenizer, data
    @Option(names = {"--model_name_or_path", "--model-name-or-path"}, paramLabel = "DIR",
            description = "Local Hugging Face model folder to continue from (gpt2, llama, qwen2, qwen3, mistral). "
                    + "Required unless --config_name.")
    Path modelNameOrPath;
    @Option(names = {"--config_name", "--config-name"}, paramLabel = "FILE",
            description = "config.json to train from scratch (random weights) instead of --model_name_or_path (default: none).")
    Path configName;
    @Option(names = {"--tokenizer_name_or_path", "--tokenizer-name-or-path", "--tokenizer_name", "--tokenizer-name"},
            paramLabel = "PATH", description = "Tokenizer folder or tokenizer.json (default: the model folder).")
    Path tokenizerNameOrPath;
    @Option(names = {"--peft_path", "--peft-path"}, paramLabel = "DIR",
            description = "Continue training this LoRA adapter (peft files, e.g. an earlier --output_dir or checkpoint): "
                    + "its LoRA tensors and modules_to_save are the starting point and its adapter_config.json sets "
                    + "r, alpha, targets and modules_to_save; the optimizer and the step count start fresh "
                    + "(--resume_from_checkpoint continues a run instead) (default: none).")
    Path peftPath;
    @Option(names = {"--dataset_dir", "--dataset-dir"}, paramLabel = "DIR", split = ",",
            description = "Folder of *.txt files (one example per line) or *.jsonl with a \"text\" field (.gz too); several (A,B) are "
                    + "concatenated, or mixed with --interleave_probs. Required unless --data_cache_dir holds prepared blocks.")
    List<Path> datasetDirs;
    @Option(names = {"--interleave_probs", "--interleave-probs"}, paramLabel = "PROBS", split = ",",
            description = "Sample each training block from the --dataset_dir sources with these probabilities (e.g. 0.75,0.25; must sum to 1) (default: none).")
    List<Double> interleaveProbs;
    @Option(names = {"--neat_packing", "--neat-packing"}, arity = "0..1", fallbackValue = "true", paramLabel = "BOOL",
            description = "Packed documents (lines, JSONL records) do not attend to each other; positions restart per document (default: off).")
    boolean neatPacking;
    @Option(names = {"--general_eval_file", "--general-eval-file"}, paramLabel = "FILE",
            description = "General-domain held-out text evaluated beside the validation split at every evaluation, to measure forgetting (default: none).")
    Path generalEvalFile;
    @Option(names = {"--data_cache_dir", "--data-cache-dir"}, paramLabel = "DIR",
            description = "Cache of prepared token blocks, reused while valid (default: DATASET_DIR/.cpt4j-cache).")
    Path dataCacheDir;
    @Option(names = {"--validation_split_percentage", "--validation-split-percentage"}, paramLabel = "FRACTION",
            description = "Fraction of blocks held out for evaluation (a fraction, as in run_clm_pt_with_peft.py: "
                    + "0.001 = 0.1 %%) (default: ${DEFAULT-VALUE}, as cpt4j prepare).")
    double validationSplit = dev.cpt4j.data.PrepareOptions.DEFAULT_VALIDATION_FRACTION;
    @Option(names = {"--max_train_samples", "--max-train-samples"}, paramLabel = "N",
            description = "Train on the first N training blocks only (default: all).")
    Integer maxTrainSamples;
    @Option(names = {"--max_eval_samples", "--max-eval-samples"}, paramLabel = "N",
            description = "Evaluate on the first N validation blocks only (default: all).")
    Integer maxEvalSamples;
    @Option(names = {"--block_size", "--block-size"}, paramLabel = "N",
            description = "Tokens per block (default: the model's context, at most 1024).")
    int blockSize = 0;
    @Option(names = {"--preprocessing_num_workers", "--preprocessing-num-workers"}, paramLabel = "N",
            description = "Threads for tokenizing the corpus (default: --threads).")
    Integer preprocessingNumWorkers;
    @Option(names = {"--pad_to_multiple_of", "--pad-to-multiple-of"}, paramLabel = "N",
            description = "Resize the vocabulary to a multiple of N (default: the tokenizer's size).")
    int padToMultipleOf = 0;

    // ---- batches and length
    @Option(names = {"--per_device_train_batch_size", "--per-device-train-batch-size"}, paramLabel = "N",
            description = "Blocks per micro-batch (default: ${DEFAULT-VALUE}).")
    int trainBatch = 8;
    @Option(names = {"--per_device_eval_batch_size", "--per-device-eval-batch-size"}, paramLabel = "N",
            description = "Blocks per evaluation batch (default: ${DEFAULT-VALUE}).")
    int evalBatch = 8;
    @Option(names = {"--gradient_accumulation_steps", "--gradient-accumulation-steps"}, paramLabel = "N",
            description = "Micro-batches per optimizer step (default: ${DEFAULT-VALUE}).")
    int gradAccum = 1;
    @Option(names = {"--max_steps", "--max-steps"}, paramLabel = "N",
            description = "Optimizer steps; -1 uses --num_train_epochs (default: ${DEFAULT-VALUE}).")
    int maxSteps = -1;
    @Option(names = {"--num_train_epochs", "--num-train-epochs"}, paramLabel = "X",
            description = "Epochs when --max_steps is not given (default: ${DEFAULT-VALUE}).")
    double numTrainEpochs = 3.0;
    @Option(names = {"--seed"}, paramLabel = "N",
            description = "Seed of initialisation, shuffling and dropout (default: ${DEFAULT-VALUE}).")
    long seed = 42;
    @Option(names = {"--do_train", "--do-train"}, arity = "0..1", fallbackValue = "true", paramLabel = "BOOL",
            description = "Train (always on; accepted for compatibility) (default: ${DEFAULT-VALUE}).")
    boolean doTrain = true;

    // ---- optimizer and schedule
    @Option(names = {"--learning_rate", "--learning-rate"}, paramLabel = "LR",
            description = "Peak learning rate (default: ${DEFAULT-VALUE}).")
    double learningRate = 5e-5;
    @Option(names = {"--embedding_learning_rate", "--embedding-learning-rate"}, paramLabel = "LR",
            description = "Learning rate of trained embeddings (wte, wpe, lm_head) (default: --learning_rate).")
    Double embeddingLearningRate;
    @Option(names = {"--weight_decay", "--weight-decay"}, paramLabel = "X",
            description = "Decoupled AdamW weight decay (not on biases and norms) (default: ${DEFAULT-VALUE}).")
    double weightDecay = 0.0;
    @Option(names = {"--adam_beta1", "--adam-beta1"}, paramLabel = "X", description = "AdamW beta1 (default: ${DEFAULT-VALUE}).")
    double adamBeta1 = 0.9;
    @Option(names = {"--adam_beta2", "--adam-beta2"}, paramLabel = "X", description = "AdamW beta2 (default: ${DEFAULT-VALUE}).")
    double adamBeta2 = 0.999;
    @Option(names = {"--adam_epsilon", "--adam-epsilon"}, paramLabel = "X", description = "AdamW epsilon (default: ${DEFAULT-VALUE}).")
    double adamEpsilon = 1e-8;
    @Option(names = {"--max_grad_norm", "--max-grad-norm"}, paramLabel = "X",
            description = "Global-norm gradient clipping; 0 turns it off (default: ${DEFAULT-VALUE}).")
    double maxGradNorm = 1.0;
    @Option(names = {"--lr_scheduler_type", "--lr-scheduler-type"}, paramLabel = "TYPE",
            description = "Learning-rate schedule: linear, cosine, constant or constant_with_warmup (default: ${DEFAULT-VALUE}).")
    String lrSchedulerType = "linear";
    @Option(names = {"--warmup_steps", "--warmup-steps"}, paramLabel = "N",
            description = "Linear warm-up steps; 0 uses --warmup_ratio (default: ${DEFAULT-VALUE}).")
    int warmupSteps = 0;
    @Option(names = {"--warmup_ratio", "--warmup-ratio"}, paramLabel = "X",
            description = "Warm-up as a fraction of the steps: ceil(X * max_steps) (default: ${DEFAULT-VALUE}).")
    double warmupRatio = 0.0;

    // ---- LoRA
    @Option(names = {"--lora_rank", "--lora-rank"}, paramLabel = "R",
            description = "LoRA rank; 0 is full fine-tuning (default: ${DEFAULT-VALUE}).")
    int loraRank = 0;
    @Option(names = {"--lora_alpha", "--lora-alpha"}, paramLabel = "X",
            description = "LoRA alpha (scaling alpha/r) (default: ${DEFAULT-VALUE}).")
    double loraAlpha = 8;
    @Option(names = {"--lora_dropout", "--lora-dropout"}, paramLabel = "P",
            description = "Dropout on the LoRA input (default: ${DEFAULT-VALUE}).")
    double loraDropout = 0.0;
    @Option(names = {"--trainable"}, paramLabel = "MODULES",
            description = "LoRA targets, comma-separated: GPT-2 c_attn, attn.c_proj, c_fc, mlp.c_proj; LLaMA family "
                    + "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj; or all-linear (default: peft's "
                    + "default for the model, GPT-2 c_attn, LLaMA q_proj,v_proj).")
    String trainable;
    @Option(names = {"--modules_to_save", "--modules-to-save"}, paramLabel = "MODULES",
            description = "Modules trained in full beside LoRA, comma-separated, e.g. transformer.wte,lm_head or "
                    + "embed_tokens,lm_head (default: none).")
    String modulesToSave;
    @Option(names = {"--trainable_token_indices", "--trainable-token-indices"}, paramLabel = "IDS",
            description = "Train only these rows of the embedding (and of an untied head) beside LoRA, as peft's "
                    + "trainable tokens: the word new (every row the vocabulary resize adds) or comma-separated token ids "
                    + "(default: none).")
    String trainableTokenIndices;
    @Option(names = {"--use_rslora", "--use-rslora"}, arity = "0..1", fallbackValue = "true", paramLabel = "BOOL",
            description = "rsLoRA scaling alpha/sqrt(r) (default: ${DEFAULT-VALUE}).")
    boolean useRslora;
    @Option(names = {"--ensure_weight_tying", "--ensure-weight-tying"}, arity = "0..1", fallbackValue = "true",
            paramLabel = "BOOL", description = "Keep trained wte and lm_head one tied tensor (peft unties them) "
                    + "(default: ${DEFAULT-VALUE}).")
    boolean ensureWeightTying;
    @Option(names = {"--full_finetuning", "--full-finetuning"}, arity = "0..1", fallbackValue = "true", paramLabel = "BOOL",
            description = "Train every weight (no LoRA), as without --lora_rank (default: ${DEFAULT-VALUE}).")
    boolean fullFinetuning;

    // ---- memory and compute
    @Option(names = {"--gradient_checkpointing", "--gradient-checkpointing"}, arity = "0..1", fallbackValue = "true",
            paramLabel = "BOOL", description = "Recompute each block in backward to save memory (default: ${DEFAULT-VALUE}).")
    boolean gradientCheckpointing;
    @Option(names = {"--base_dtype", "--base-dtype"}, paramLabel = "fp32|bf16",
            description = "Storage of the frozen base weights (default: ${DEFAULT-VALUE}).")
    String baseDtype = "fp32";
    @Option(names = {"--threads"}, paramLabel = "N", description = "Compute threads (default: all cores).")
    Integer threads;

    // ---- logging, evaluation, checkpoints
    @Option(names = {"--logging_steps", "--logging-steps"}, paramLabel = "N",
            description = "Log every N steps (metrics.jsonl, one line on stderr) (default: ${DEFAULT-VALUE}).")
    int loggingSteps = 500;
    @Option(names = {"--logging_first_step", "--logging-first-step"}, arity = "0..1", fallbackValue = "true", paramLabel = "BOOL",
            description = "Also log step 1 (default: ${DEFAULT-VALUE}).")
    boolean loggingFirstStep;
    @Option(names = {"--disable_tqdm", "--disable-tqdm"}, arity = "0..1", fallbackValue = "true", paramLabel = "BOOL",
            description = "No progress bar: plain lines even on a terminal (default: ${DEFAULT-VALUE}).")
    boolean disableTqdm;
    @Option(names = {"--report_to", "--report-to"}, arity = "1..*", split = ",", paramLabel = "tensorboard|none",
            description = "Where metrics go besides metrics.jsonl: tensorboard (event files under "
                    + "OUTPUT_DIR/runs/) or none (all = tensorboard) (default: none, as transformers 5).")
    List<String> reportTo;
    @Option(names = {"--run_name", "--run-name"}, paramLabel = "NAME",
            description = "Name of the TensorBoard run folder, OUTPUT_DIR/runs/NAME (default: date and host name).")
    String runName;
    @Option(names = {"--logging_dir", "--logging-dir"}, paramLabel = "DIR",
            description = "TensorBoard folder instead of OUTPUT_DIR/runs/NAME (default: none).")
    Path loggingDir;
    @Option(names = {"--do_eval", "--do-eval"}, arity = "0..1", fallbackValue = "true", paramLabel = "BOOL",
            description = "Evaluate (loss, perplexity) on the held-out split every --eval_steps and at the end "
                    + "(default: ${DEFAULT-VALUE}).")
    boolean doEval;
    @Option(names = {"--eval_strategy", "--eval-strategy", "--evaluation_strategy", "--evaluation-strategy"},
            paramLabel = "steps|no", description = "steps: evaluate every --eval_steps (turns on --do_eval); no: only "
                    + "at the end with --do_eval, else never (default: steps with --do_eval).")
    String evalStrategy;
    @Option(names = {"--eval_steps", "--eval-steps"}, paramLabel = "N",
            description = "Evaluate every N steps (default: --logging_steps).")
    Integer evalSteps;
    @Option(names = {"--eval_on_start", "--eval-on-start"}, arity = "0..1", fallbackValue = "true", paramLabel = "BOOL",
            description = "Also evaluate once before the first step (default: ${DEFAULT-VALUE}).")
    boolean evalOnStart;
    @Option(names = {"--save_steps", "--save-steps"}, paramLabel = "N",
            description = "Checkpoint every N steps; 0 only at the end (default: ${DEFAULT-VALUE}).")
    int saveSteps = 500;
    @Option(names = {"--save_total_limit", "--save-total-limit"}, paramLabel = "N",
            description = "Keep at most N checkpoints; 0 keeps all (default: ${DEFAULT-VALUE}).")
    int saveTotalLimit = 0;
    @Option(names = {"--output_dir", "--output-dir"}, paramLabel = "DIR",
            description = "Checkpoints, metrics.jsonl, loss.png and the final adapter or model. Required.")
    Path outputDir;
    @Option(names = {"--overwrite_output_dir", "--overwrite-output-dir"}, arity = "0..1", fallbackValue = "true", paramLabel = "BOOL",
            description = "Allow a non-empty output folder (only cpt4j's own files are replaced) (default: ${DEFAULT-VALUE}).")
    boolean overwriteOutputDir;
    @Option(names = {"--resume_from_checkpoint", "--resume-from-checkpoint"}, paramLabel = "DIR",
            description = "Continue a run from a checkpoint-N folder, or true for the latest in --output_dir "
                    + "(optimizer, schedule and data order included) (default: none).")
    String resumeFromCheckpoint;

    @Override
    public Integer call() {
        backendOption.apply();
        TrainOptions o = options();
        // under mpirun: one rank of a data-parallel run (rank 0 writes and speaks); otherwise the group of one
        Collective comm = Collectives.fromEnvironment();
        if (comm.size() == 1) {
            try (comm) {
                return run(o, System.err, consoleProgress(), comm);
            }
        }
        PrintStream quiet = new PrintStream(java.io.OutputStream.nullOutputStream());
        try {
            int code = run(o, comm.isRoot() ? System.err : quiet, comm.isRoot() ? consoleProgress() : Progress.NONE, comm);
            comm.close();
            return code;
        } catch (RuntimeException | Error e) {
            // a failure on one rank would leave the others waiting in a collective: say why, then end the whole job
            boolean user = e instanceof UserError;
            String msg = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
            if (e instanceof OutOfMemoryError) msg = "out of memory: give the JVM more with CPT4J_JAVA_OPTS=-Xmx<size>";
            System.err.println("cpt4j: rank " + comm.rank() + " of " + comm.size() + ": " + (user ? "" : "error: ")
                    + msg + "; stopping every rank");
            comm.abort(user ? 2 : 1);
            throw e;   // not reached
        }
    }

    /** A progress bar on a terminal, plain log lines otherwise. */
    private Progress consoleProgress() {
        return plainLines() ? Progress.lines(System.err) : Progress.forTerminal(System.err);
    }

    private int run(TrainOptions o, PrintStream log, Progress progress, Collective comm) {
        for (String note : notes()) log.println("cpt4j: " + note);
        // SIGTERM/SIGINT run the JVM's shutdown hooks: ask the trainer to stop at a step boundary (it writes a
        // checkpoint of that step when one fits in the time left), wait for it within the budget, say where to resume.
        // Under mpirun the ranks agree on the stop at the step boundary (any rank's request stops all).
        Interruption stop = new Interruption();
        CountDownLatch said = new CountDownLatch(1);
        Thread hook = new Thread(() -> {
            stop.request();
            if (comm.size() > 1) {
                // mpirun sends SIGTERM to every rank when one ends abnormally, and SIGKILL soon after: say it now
                System.err.println();
                System.err.println("cpt4j: rank " + comm.rank() + " of " + comm.size() + ": stopping on a signal (from "
                        + "mpirun when another rank ended, or an interrupted job); " + Interruption.message(stop.step(),
                        stop.lastCheckpoint()).replaceFirst("^interrupted at", "the last complete step is"));
                System.err.flush();
            }
            try {
                if (stop.training() && said.await(Interruption.BUDGET_NANOS, TimeUnit.NANOSECONDS)) return;
                if (said.getCount() == 0) return;
            } catch (InterruptedException ignored) {
                // the JVM is going down: fall through to the last words
            }
            log.println();
            log.println("cpt4j: " + (stop.training() ? stop.lateMessage() : Interruption.message(stop.step(), stop.lastCheckpoint())));
            log.flush();
        }, "cpt4j-interrupt");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            Trainer.train(o, progress, log, stop, comm);
            return 0;
        } catch (UserError e) {
            if (!stop.requested()) throw e;
            log.println("cpt4j: " + e.getMessage());   // Interrupted's message, or what failed while stopping
            log.flush();
            return 130;
        } finally {
            said.countDown();
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException shuttingDown) {
                // the hook is running: it returns now that the line is said, and the JVM exits (143 on SIGTERM)
            }
        }
    }

    /** The validated options; throws {@link UserError} naming the flag to change. */
    TrainOptions options() {
        if (!doTrain) throw new UserError("--do_train False leaves nothing to do; use 'cpt4j eval' to only evaluate");
        compat.validate();
        if (generalEvalFile != null && !java.nio.file.Files.isRegularFile(generalEvalFile))
            throw new UserError("--general_eval_file " + generalEvalFile + " does not exist or is not a file; give a "
                    + "general-domain held-out text file (one example per line)");
        int nThreads = threads != null ? threads : Runtime.getRuntime().availableProcessors();
        int save = compat.noIntermediateSaves() ? 0 : saveSteps;
        if (fullFinetuning && loraRank > 0)
            throw new UserError("--full_finetuning trains every weight and --lora_rank " + loraRank + " trains an adapter; "
                    + "give only one of them");
        if (fullFinetuning && peftPath != null)
            throw new UserError("--full_finetuning cannot continue the adapter of --peft_path; drop one of them");
        boolean eval = doEval;
        Integer everyEval = evalSteps;
        if (evalStrategy != null) {
            switch (evalStrategy.strip().toLowerCase(java.util.Locale.ROOT)) {
                case "steps" -> eval = true;
                case "no" -> everyEval = 0;           // --do_eval still evaluates once at the end, as run_clm does
                default -> throw new UserError("--eval_strategy '" + evalStrategy + "' is not supported; use steps "
                        + "(with --eval_steps N) or no");
            }
        }
        TrainOptions.BaseDtype dtype = switch (baseDtype.strip().toLowerCase(java.util.Locale.ROOT)) {
            case "fp32", "float32" -> TrainOptions.BaseDtype.FP32;
            case "bf16", "bfloat16" -> TrainOptions.BaseDtype.BF16;
            default -> throw new UserError("--base_dtype '" + baseDtype + "' is not supported; use fp32 or bf16");
        };
        return TrainOptions.builder()
                .modelNameOrPath(modelNameOrPath).configName(configName).tokenizerNameOrPath(tokenizerNameOrPath)
                .datasetDirs(datasetDirs).interleaveProbs(interleaveProbs).neatPacking(neatPacking)
                .generalEvalFile(generalEvalFile).dataCacheDir(dataCacheDir).validationSplit(validationSplit).blockSize(blockSize)
                .threads(nThreads).preprocessingNumWorkers(preprocessingNumWorkers != null ? preprocessingNumWorkers : nThreads)
                .padToMultipleOf(padToMultipleOf).perDeviceTrainBatchSize(trainBatch).perDeviceEvalBatchSize(evalBatch)
                .gradientAccumulationSteps(gradAccum).maxSteps(maxSteps).numTrainEpochs(numTrainEpochs).seed(seed)
                .learningRate(learningRate)
                .embeddingLearningRate(embeddingLearningRate != null ? embeddingLearningRate : learningRate)
                .weightDecay(weightDecay).adamBeta1(adamBeta1).adamBeta2(adamBeta2).adamEpsilon(adamEpsilon)
                .maxGradNorm(maxGradNorm).lrSchedulerType(LrSchedule.Type.parse(lrSchedulerType.strip()))
                .warmupSteps(warmupSteps).warmupRatio(warmupRatio)
                .loraRank(loraRank).loraAlpha(loraAlpha).loraDropout(loraDropout).trainable(commaList(trainable))
                .modulesToSave(commaList(modulesToSave)).useRslora(useRslora).ensureWeightTying(ensureWeightTying)
                .trainableTokenIndices(trainableTokenIndices)
                .gradientCheckpointing(gradientCheckpointing).baseDtype(dtype)
                .loggingSteps(loggingSteps).loggingFirstStep(loggingFirstStep).doEval(eval)
                .evalSteps(everyEval != null ? everyEval : loggingSteps).saveSteps(save).saveTotalLimit(saveTotalLimit)
                .outputDir(outputDir).overwriteOutputDir(overwriteOutputDir).resumeFromCheckpoint(resumeFromCheckpoint)
                .peftPath(peftPath).maxTrainSamples(maxTrainSamples != null ? maxTrainSamples : -1)
                .maxEvalSamples(maxEvalSamples != null ? maxEvalSamples : -1).tensorboard(tensorboard())
                .loggingDir(loggingDir).runName(runName).evalOnStart(evalOnStart)
                .loadBestModelAtEnd(compat.loadBestModelAtEnd())
                .build();
    }

    /** True when --report_to names tensorboard (or all); other integrations get a line in {@link #notes()}. */
    boolean tensorboard() {
        if (reportTo == null) return false;
        boolean tb = false;
        for (String r : reportTo) {
            String v = r.strip().toLowerCase(java.util.Locale.ROOT);
            if (v.equals("tensorboard") || v.equals("all")) tb = true;
        }
        return tb && reportTo.stream().noneMatch(r -> r.strip().equalsIgnoreCase("none"));
    }

    /** A comma list as given (picocli keeps the last of a repeated flag; the list is split here). */
    private static List<String> commaList(String s) {
        if (s == null) return List.of();
        List<String> out = new ArrayList<>();
        for (String p : s.split(",")) if (!p.isBlank()) out.add(p.strip());
        return out;
    }

    /** Whether the progress goes out as plain lines whatever stderr is (--disable_tqdm). */
    boolean plainLines() {
        return disableTqdm;
    }

    /** One line per accepted-but-meaningless flag, saying what cpt4j does instead. */
    List<String> notes() {
        List<String> out = new ArrayList<>(compat.notes(loggingSteps, saveSteps));
        if (reportTo != null)
            for (String r : reportTo) {
                String v = r.strip().toLowerCase(java.util.Locale.ROOT);
                if (!List.of("tensorboard", "all", "none").contains(v))
                    out.add("--report_to " + r.strip() + ": cpt4j writes metrics.jsonl and loss.png, and TensorBoard "
                            + "event files with --report_to tensorboard; " + r.strip() + " is not available");
            }
        return out;
    }
}
