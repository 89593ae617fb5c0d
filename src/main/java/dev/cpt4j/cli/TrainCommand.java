package dev.cpt4j.cli;

import dev.cpt4j.UserError;
import dev.cpt4j.train.Interruption;
import dev.cpt4j.train.LrSchedule;
import dev.cpt4j.train.Progress;
import dev.cpt4j.train.TrainOptions;
import dev.cpt4j.train.Trainer;
import java.nio.file.Path;
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
        description = "Continued pretraining of a GPT-2 or LLaMA-family model (LoRA or full fine-tuning). Accepts run_clm_pt_with_peft.py's flags.",
        footer = "%nAlso accepted for compatibility, each answered with one line and ignored: --deepspeed, --ddp_timeout, "
                + "--ddp_find_unused_parameters, --fp16, --torch_dtype, --logging_strategy steps, "
                + "--save_strategy steps|no, --report_to.")
final class TrainCommand implements Callable<Integer> {
    @Mixin
    BackendOption backendOption;


    // ---- model, tokenizer, data
    @Option(names = {"--model_name_or_path", "--model-name-or-path"}, paramLabel = "DIR",
            description = "Hugging Face model folder to continue from (gpt2, llama, qwen2, qwen3, mistral).")
    Path modelNameOrPath;
    @Option(names = {"--config_name", "--config-name"}, paramLabel = "FILE",
            description = "config.json to train from scratch (random weights).")
    Path configName;
    @Option(names = {"--tokenizer_name_or_path", "--tokenizer-name-or-path"}, paramLabel = "PATH",
            description = "Tokenizer folder or tokenizer.json (default: the model folder).")
    Path tokenizerNameOrPath;
    @Option(names = {"--dataset_dir", "--dataset-dir"}, paramLabel = "DIR", description = "Folder of *.txt files, one example per line.")
    Path datasetDir;
    @Option(names = {"--data_cache_dir", "--data-cache-dir"}, paramLabel = "DIR", description = "Cache of prepared token blocks.")
    Path dataCacheDir;
    @Option(names = {"--validation_split_percentage", "--validation-split-percentage"}, paramLabel = "FRACTION",
            description = "Fraction of blocks held out for evaluation (0.001 = 0.1 %%, as in the recipe). Default ${DEFAULT-VALUE}.")
    double validationSplit = 0.05;
    @Option(names = {"--block_size", "--block-size"}, paramLabel = "N", description = "Tokens per block (default: model context, at most 1024).")
    int blockSize = 0;
    @Option(names = {"--preprocessing_num_workers", "--preprocessing-num-workers"}, paramLabel = "N",
            description = "Threads for tokenizing the corpus (default: --threads).")
    Integer preprocessingNumWorkers;
    @Option(names = {"--pad_to_multiple_of", "--pad-to-multiple-of"}, paramLabel = "N",
            description = "Resize the vocabulary to a multiple of N (default: the tokenizer's size).")
    int padToMultipleOf = 0;

    // ---- batches and length
    @Option(names = {"--per_device_train_batch_size", "--per-device-train-batch-size"}, paramLabel = "N",
            description = "Blocks per micro-batch. Default ${DEFAULT-VALUE}.")
    int trainBatch = 8;
    @Option(names = {"--per_device_eval_batch_size", "--per-device-eval-batch-size"}, paramLabel = "N",
            description = "Blocks per evaluation batch. Default ${DEFAULT-VALUE}.")
    int evalBatch = 8;
    @Option(names = {"--gradient_accumulation_steps", "--gradient-accumulation-steps"}, paramLabel = "N",
            description = "Micro-batches per optimizer step. Default ${DEFAULT-VALUE}.")
    int gradAccum = 1;
    @Option(names = {"--max_steps", "--max-steps"}, paramLabel = "N", description = "Optimizer steps (-1: use --num_train_epochs).")
    int maxSteps = -1;
    @Option(names = {"--num_train_epochs", "--num-train-epochs"}, paramLabel = "X",
            description = "Epochs when --max_steps is not given. Default ${DEFAULT-VALUE}.")
    double numTrainEpochs = 3.0;
    @Option(names = {"--seed"}, paramLabel = "N",
            description = "Seed of initialisation, shuffling and dropout. Default ${DEFAULT-VALUE}.")
    long seed = 42;
    @Option(names = {"--do_train", "--do-train"}, arity = "0..1", fallbackValue = "true", paramLabel = "BOOL",
            description = "Train (always on; accepted for compatibility).")
    boolean doTrain = true;

    // ---- optimizer and schedule
    @Option(names = {"--learning_rate", "--learning-rate"}, paramLabel = "LR",
            description = "Peak learning rate. Default ${DEFAULT-VALUE}.")
    double learningRate = 5e-5;
    @Option(names = {"--embedding_learning_rate", "--embedding-learning-rate"}, paramLabel = "LR",
            description = "Learning rate of trained embeddings (wte, wpe, lm_head); default --learning_rate.")
    Double embeddingLearningRate;
    @Option(names = {"--weight_decay", "--weight-decay"}, paramLabel = "X",
            description = "Decoupled AdamW weight decay (not on biases and LayerNorm). Default ${DEFAULT-VALUE}.")
    double weightDecay = 0.0;
    @Option(names = {"--adam_beta1", "--adam-beta1"}, paramLabel = "X",
            description = "Default ${DEFAULT-VALUE}.")
    double adamBeta1 = 0.9;
    @Option(names = {"--adam_beta2", "--adam-beta2"}, paramLabel = "X",
            description = "Default ${DEFAULT-VALUE}.")
    double adamBeta2 = 0.999;
    @Option(names = {"--adam_epsilon", "--adam-epsilon"}, paramLabel = "X",
            description = "Default ${DEFAULT-VALUE}.")
    double adamEpsilon = 1e-8;
    @Option(names = {"--max_grad_norm", "--max-grad-norm"}, paramLabel = "X", description = "Global-norm clipping (0 = off).")
    double maxGradNorm = 1.0;
    @Option(names = {"--lr_scheduler_type", "--lr-scheduler-type"}, paramLabel = "TYPE",
            description = "linear, cosine, constant or constant_with_warmup.")
    String lrSchedulerType = "linear";
    @Option(names = {"--warmup_steps", "--warmup-steps"}, paramLabel = "N",
            description = "Linear warm-up steps (0: use --warmup_ratio).")
    int warmupSteps = 0;
    @Option(names = {"--warmup_ratio", "--warmup-ratio"}, paramLabel = "X",
            description = "Warm-up as a fraction of the steps: ceil(ratio x max_steps).")
    double warmupRatio = 0.0;

    // ---- LoRA
    @Option(names = {"--lora_rank", "--lora-rank"}, paramLabel = "R", description = "LoRA rank (0 or absent: full fine-tuning).")
    int loraRank = 0;
    @Option(names = {"--lora_alpha", "--lora-alpha"}, paramLabel = "X",
            description = "LoRA alpha (scaling alpha/r). Default ${DEFAULT-VALUE}.")
    double loraAlpha = 8;
    @Option(names = {"--lora_dropout", "--lora-dropout"}, paramLabel = "P",
            description = "Dropout on the LoRA input. Default ${DEFAULT-VALUE}.")
    double loraDropout = 0.0;
    @Option(names = {"--trainable"}, split = ",", paramLabel = "MODULES",
            description = "LoRA targets (comma list): GPT-2 c_attn, attn.c_proj, c_fc, mlp.c_proj; LLaMA family q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj; or all-linear.")
    List<String> trainable;
    @Option(names = {"--modules_to_save", "--modules-to-save"}, split = ",", paramLabel = "MODULES",
            description = "Modules trained in full beside LoRA, e.g. transformer.wte,lm_head or embed_tokens,lm_head.")
    List<String> modulesToSave;
    @Option(names = {"--trainable_token_indices", "--trainable-token-indices"}, paramLabel = "new|IDS",
            description = "Train only these rows of the embedding (and of an untied head) beside LoRA, as peft's trainable tokens: 'new' = every row the vocabulary resize adds, or a comma list of ids.")
    String trainableTokenIndices;
    @Option(names = {"--use_rslora", "--use-rslora"}, arity = "0..1", fallbackValue = "true", paramLabel = "BOOL",
            description = "rsLoRA scaling alpha/sqrt(r).")
    boolean useRslora;
    @Option(names = {"--ensure_weight_tying", "--ensure-weight-tying"}, arity = "0..1", fallbackValue = "true",
            paramLabel = "BOOL", description = "Keep trained wte and lm_head one tied tensor (peft unties them by default).")
    boolean ensureWeightTying;

    // ---- memory and compute
    @Option(names = {"--gradient_checkpointing", "--gradient-checkpointing"}, arity = "0..1", fallbackValue = "true", paramLabel = "BOOL",
            description = "Recompute each block in backward to save memory.")
    boolean gradientCheckpointing;
    @Option(names = {"--base_dtype", "--base-dtype"}, paramLabel = "fp32|bf16", description = "Storage of frozen base weights.")
    String baseDtype = "fp32";
    @Option(names = {"--threads"}, paramLabel = "N", description = "Compute threads (default: all cores).")
    Integer threads;

    // ---- logging, evaluation, checkpoints
    @Option(names = {"--logging_steps", "--logging-steps"}, paramLabel = "N",
            description = "Log every N steps. Default ${DEFAULT-VALUE}.")
    int loggingSteps = 500;
    @Option(names = {"--logging_first_step", "--logging-first-step"}, arity = "0..1", fallbackValue = "true", paramLabel = "BOOL",
            description = "Also log step 1.")
    boolean loggingFirstStep;
    @Option(names = {"--do_eval", "--do-eval"}, arity = "0..1", fallbackValue = "true", paramLabel = "BOOL",
            description = "Evaluate (loss, perplexity) on the held-out split.")
    boolean doEval;
    @Option(names = {"--eval_steps", "--eval-steps"}, paramLabel = "N", description = "Evaluate every N steps (default: --logging_steps).")
    Integer evalSteps;
    @Option(names = {"--save_steps", "--save-steps"}, paramLabel = "N",
            description = "Checkpoint every N steps (0: only at the end). Default ${DEFAULT-VALUE}.")
    int saveSteps = 500;
    @Option(names = {"--save_total_limit", "--save-total-limit"}, paramLabel = "N", description = "Keep at most N checkpoints.")
    int saveTotalLimit = 0;
    @Option(names = {"--output_dir", "--output-dir"}, paramLabel = "DIR",
            description = "Checkpoints, metrics.jsonl, loss.png and the final model.")
    Path outputDir;
    @Option(names = {"--overwrite_output_dir", "--overwrite-output-dir"}, arity = "0..1", fallbackValue = "true", paramLabel = "BOOL",
            description = "Allow a non-empty output folder (only cpt4j's own files are replaced).")
    boolean overwriteOutputDir;
    @Option(names = {"--resume_from_checkpoint", "--resume-from-checkpoint"}, paramLabel = "PATH|true",
            description = "Continue from a checkpoint-N folder, or true for the latest in --output_dir.")
    String resumeFromCheckpoint;

    // ---- accepted for compatibility; each prints one line
    @Option(names = {"--deepspeed"}, paramLabel = "CONFIG", hidden = true)
    String deepspeed;
    @Option(names = {"--ddp_timeout", "--ddp-timeout"}, paramLabel = "S", hidden = true)
    String ddpTimeout;
    @Option(names = {"--ddp_find_unused_parameters", "--ddp-find-unused-parameters"}, arity = "0..1", fallbackValue = "true", hidden = true)
    Boolean ddpFindUnused;
    @Option(names = {"--fp16"}, arity = "0..1", fallbackValue = "true", hidden = true)
    Boolean fp16;
    @Option(names = {"--torch_dtype", "--torch-dtype"}, paramLabel = "DTYPE", hidden = true)
    String torchDtype;
    @Option(names = {"--logging_strategy", "--logging-strategy"}, paramLabel = "steps", hidden = true)
    String loggingStrategy;
    @Option(names = {"--save_strategy", "--save-strategy"}, paramLabel = "steps|no", hidden = true)
    String saveStrategy;
    @Option(names = {"--report_to", "--report-to"}, paramLabel = "X", hidden = true)
    String reportTo;

    @Override
    public Integer call() {
        backendOption.apply();
        TrainOptions o = options();
        for (String note : notes()) System.err.println("cpt4j: " + note);
        // SIGTERM/SIGINT run the JVM's shutdown hooks: ask the trainer to stop at a step boundary (it writes a
        // checkpoint of that step when one fits in the time left), wait for it within the budget, say where to resume.
        Interruption stop = new Interruption();
        CountDownLatch said = new CountDownLatch(1);
        Thread hook = new Thread(() -> {
            stop.request();
            try {
                if (stop.training() && said.await(Interruption.BUDGET_NANOS, TimeUnit.NANOSECONDS)) return;
                if (said.getCount() == 0) return;
            } catch (InterruptedException ignored) {
                // the JVM is going down: fall through to the last words
            }
            System.err.println();
            System.err.println("cpt4j: " + (stop.training() ? stop.lateMessage() : Interruption.message(stop.step(), stop.lastCheckpoint())));
            System.err.flush();
        }, "cpt4j-interrupt");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            Trainer.train(o, Progress.console(System.err), System.err, stop);
            return 0;
        } catch (UserError e) {
            if (!stop.requested()) throw e;
            System.err.println("cpt4j: " + e.getMessage());   // Interrupted's message, or what failed while stopping
            System.err.flush();
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
        int nThreads = threads != null ? threads : Runtime.getRuntime().availableProcessors();
        int save = saveSteps;
        if (saveStrategy != null) {
            switch (saveStrategy.strip().toLowerCase(java.util.Locale.ROOT)) {
                case "steps" -> { }
                case "no" -> save = 0;
                default -> throw new UserError("--save_strategy '" + saveStrategy + "' is not supported; use steps "
                        + "(with --save_steps N) or no");
            }
        }
        if (loggingStrategy != null && !loggingStrategy.strip().equalsIgnoreCase("steps"))
            throw new UserError("--logging_strategy '" + loggingStrategy + "' is not supported; cpt4j logs every "
                    + "--logging_steps steps (use --logging_strategy steps or drop it)");
        TrainOptions.BaseDtype dtype = switch (baseDtype.strip().toLowerCase(java.util.Locale.ROOT)) {
            case "fp32", "float32" -> TrainOptions.BaseDtype.FP32;
            case "bf16", "bfloat16" -> TrainOptions.BaseDtype.BF16;
            default -> throw new UserError("--base_dtype '" + baseDtype + "' is not supported; use fp32 or bf16");
        };
        return TrainOptions.builder()
                .modelNameOrPath(modelNameOrPath).configName(configName).tokenizerNameOrPath(tokenizerNameOrPath)
                .datasetDir(datasetDir).dataCacheDir(dataCacheDir).validationSplit(validationSplit).blockSize(blockSize)
                .threads(nThreads).preprocessingNumWorkers(preprocessingNumWorkers != null ? preprocessingNumWorkers : nThreads)
                .padToMultipleOf(padToMultipleOf).perDeviceTrainBatchSize(trainBatch).perDeviceEvalBatchSize(evalBatch)
                .gradientAccumulationSteps(gradAccum).maxSteps(maxSteps).numTrainEpochs(numTrainEpochs).seed(seed)
                .learningRate(learningRate)
                .embeddingLearningRate(embeddingLearningRate != null ? embeddingLearningRate : learningRate)
                .weightDecay(weightDecay).adamBeta1(adamBeta1).adamBeta2(adamBeta2).adamEpsilon(adamEpsilon)
                .maxGradNorm(maxGradNorm).lrSchedulerType(LrSchedule.Type.parse(lrSchedulerType.strip()))
                .warmupSteps(warmupSteps).warmupRatio(warmupRatio)
                .loraRank(loraRank).loraAlpha(loraAlpha).loraDropout(loraDropout).trainable(trainable)
                .modulesToSave(modulesToSave).useRslora(useRslora).ensureWeightTying(ensureWeightTying)
                .trainableTokenIndices(trainableTokenIndices)
                .gradientCheckpointing(gradientCheckpointing).baseDtype(dtype)
                .loggingSteps(loggingSteps).loggingFirstStep(loggingFirstStep).doEval(doEval)
                .evalSteps(evalSteps != null ? evalSteps : loggingSteps).saveSteps(save).saveTotalLimit(saveTotalLimit)
                .outputDir(outputDir).overwriteOutputDir(overwriteOutputDir).resumeFromCheckpoint(resumeFromCheckpoint)
                .build();
    }

    /** One line per accepted-but-meaningless flag, saying what cpt4j does instead. */
    List<String> notes() {
        List<String> out = new ArrayList<>();
        if (deepspeed != null)
            out.add("--deepspeed: cpt4j trains in one process without ZeRO sharding (optimizer state covers only the "
                    + "trainable tensors); ignored");
        if (ddpTimeout != null) out.add("--ddp_timeout: cpt4j runs one process, no torch.distributed; ignored");
        if (ddpFindUnused != null) out.add("--ddp_find_unused_parameters: cpt4j runs one process, no DDP; ignored");
        if (fp16 != null)
            out.add("--fp16: cpt4j trains in fp32 (no loss scaling, no fp16 overflow); --bf16 computes the matmuls in bf16 "
                    + "as torch's autocast, --base_dtype bf16 stores the frozen base in bf16; ignored");
        if (torchDtype != null)
            out.add("--torch_dtype " + torchDtype + ": cpt4j keeps trainable weights in fp32 (frozen base in bf16 with "
                    + "--base_dtype bf16); ignored");
        if (loggingStrategy != null)
            out.add("--logging_strategy: cpt4j logs every --logging_steps (" + loggingSteps + ") steps; ignored");
        if (saveStrategy != null)
            out.add(saveStrategy.strip().equalsIgnoreCase("no")
                    ? "--save_strategy no: no intermediate checkpoints; the final model is still written"
                    : "--save_strategy: cpt4j checkpoints every --save_steps (" + saveSteps + ") steps; ignored");
        if (reportTo != null)
            out.add("--report_to: cpt4j writes metrics.jsonl and loss.png into --output_dir; ignored");
        return out;
    }
}
