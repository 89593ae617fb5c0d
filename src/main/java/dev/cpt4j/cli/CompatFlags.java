package dev.cpt4j.cli;

import dev.cpt4j.UserError;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine.Option;

/**
 * The flags of {@code run_clm_pt_with_peft.py} (HF {@code TrainingArguments}, {@code ModelArguments},
 * {@code DataTrainingArguments}, Chinese-LLaMA-Alpaca's own) that mean nothing for cpt4j's one-process CPU trainer.
 * Each is accepted, so a pasted command runs, and answered with one line saying what cpt4j does instead
 * ({@link #notes}). The flags that do mean something are {@link TrainCommand}'s own options.
 */
final class CompatFlags {
    // ---- distributed training and GPU precision
    @Option(names = {"--deepspeed"}, paramLabel = "CONFIG", hidden = true)
    String deepspeed;
    @Option(names = {"--ddp_timeout", "--ddp-timeout"}, paramLabel = "S", hidden = true)
    String ddpTimeout;
    @Option(names = {"--ddp_find_unused_parameters", "--ddp-find-unused-parameters"}, arity = "0..1", fallbackValue = "true", hidden = true)
    String ddpFindUnused;
    @Option(names = {"--local_rank", "--local-rank"}, paramLabel = "N", hidden = true)
    String localRank;
    @Option(names = {"--fp16"}, arity = "0..1", fallbackValue = "true", hidden = true)
    String fp16;
    @Option(names = {"--bf16"}, arity = "0..1", fallbackValue = "true", hidden = true)
    String bf16;
    @Option(names = {"--tf32"}, arity = "0..1", fallbackValue = "true", hidden = true)
    String tf32;
    @Option(names = {"--torch_dtype", "--torch-dtype"}, paramLabel = "DTYPE", hidden = true)
    String torchDtype;
    @Option(names = {"--load_in_kbits", "--load-in-kbits"}, paramLabel = "K", hidden = true)
    String loadInKbits;
    @Option(names = {"--double_quant", "--double-quant"}, arity = "0..1", fallbackValue = "true", hidden = true)
    String doubleQuant;
    @Option(names = {"--quant_type", "--quant-type"}, paramLabel = "TYPE", hidden = true)
    String quantType;
    @Option(names = {"--flash_attn", "--flash-attn"}, arity = "0..1", fallbackValue = "true", hidden = true)
    String flashAttn;
    @Option(names = {"--use_cpu", "--use-cpu", "--no_cuda", "--no-cuda"}, arity = "0..1", fallbackValue = "true", hidden = true)
    String useCpu;
    @Option(names = {"--torch_compile", "--torch-compile"}, arity = "0..1", fallbackValue = "true", hidden = true)
    String torchCompile;
    @Option(names = {"--gradient_checkpointing_kwargs", "--gradient-checkpointing-kwargs"}, paramLabel = "JSON", hidden = true)
    String gradientCheckpointingKwargs;
    @Option(names = {"--optim"}, paramLabel = "NAME", hidden = true)
    String optim;

    // ---- strategies and bookkeeping
    @Option(names = {"--logging_strategy", "--logging-strategy"}, paramLabel = "steps", hidden = true)
    String loggingStrategy;
    @Option(names = {"--save_strategy", "--save-strategy"}, paramLabel = "steps|no", hidden = true)
    String saveStrategy;
    @Option(names = {"--save_safetensors", "--save-safetensors"}, arity = "0..1", fallbackValue = "true", hidden = true)
    String saveSafetensors;
    @Option(names = {"--save_only_model", "--save-only-model"}, arity = "0..1", fallbackValue = "true", hidden = true)
    String saveOnlyModel;
    @Option(names = {"--load_best_model_at_end", "--load-best-model-at-end"}, arity = "0..1", fallbackValue = "true", hidden = true)
    String loadBestModelAtEnd;
    @Option(names = {"--metric_for_best_model", "--metric-for-best-model"}, paramLabel = "NAME", hidden = true)
    String metricForBestModel;
    @Option(names = {"--greater_is_better", "--greater-is-better"}, arity = "0..1", fallbackValue = "true", hidden = true)
    String greaterIsBetter;
    @Option(names = {"--dataloader_num_workers", "--dataloader-num-workers"}, paramLabel = "N", hidden = true)
    String dataloaderNumWorkers;
    @Option(names = {"--dataloader_pin_memory", "--dataloader-pin-memory"}, arity = "0..1", fallbackValue = "true", hidden = true)
    String dataloaderPinMemory;
    @Option(names = {"--remove_unused_columns", "--remove-unused-columns"}, arity = "0..1", fallbackValue = "true", hidden = true)
    String removeUnusedColumns;
    @Option(names = {"--group_by_length", "--group-by-length"}, arity = "0..1", fallbackValue = "true", hidden = true)
    String groupByLength;
    @Option(names = {"--full_determinism", "--full-determinism"}, arity = "0..1", fallbackValue = "true", hidden = true)
    String fullDeterminism;
    @Option(names = {"--data_seed", "--data-seed"}, paramLabel = "N", hidden = true)
    String dataSeed;
    @Option(names = {"--log_level", "--log-level"}, paramLabel = "LEVEL", hidden = true)
    String logLevel;
    @Option(names = {"--include_tokens_per_second", "--include-tokens-per-second"}, arity = "0..1", fallbackValue = "true", hidden = true)
    String includeTokensPerSecond;
    @Option(names = {"--push_to_hub", "--push-to-hub"}, arity = "0..1", fallbackValue = "true", hidden = true)
    String pushToHub;
    @Option(names = {"--hub_model_id", "--hub-model-id"}, paramLabel = "ID", hidden = true)
    String hubModelId;
    @Option(names = {"--do_predict", "--do-predict"}, arity = "0..1", fallbackValue = "true", hidden = true)
    String doPredict;
    @Option(names = {"--debug_mode", "--debug-mode"}, arity = "0..1", fallbackValue = "true", hidden = true)
    String debugMode;

    // ---- model and data loading
    @Option(names = {"--cache_dir", "--cache-dir"}, paramLabel = "DIR", hidden = true)
    String cacheDir;
    @Option(names = {"--model_revision", "--model-revision"}, paramLabel = "REV", hidden = true)
    String modelRevision;
    @Option(names = {"--use_fast_tokenizer", "--use-fast-tokenizer"}, arity = "0..1", fallbackValue = "true", hidden = true)
    String useFastTokenizer;
    @Option(names = {"--use_auth_token", "--use-auth-token", "--token"}, arity = "0..1", fallbackValue = "true", hidden = true)
    String token;
    @Option(names = {"--low_cpu_mem_usage", "--low-cpu-mem-usage"}, arity = "0..1", fallbackValue = "true", hidden = true)
    String lowCpuMemUsage;
    @Option(names = {"--trust_remote_code", "--trust-remote-code"}, arity = "0..1", fallbackValue = "true", hidden = true)
    String trustRemoteCode;
    @Option(names = {"--model_type", "--model-type"}, paramLabel = "TYPE", hidden = true)
    String modelType;
    @Option(names = {"--streaming"}, arity = "0..1", fallbackValue = "true", hidden = true)
    String streaming;
    @Option(names = {"--keep_linebreaks", "--keep-linebreaks"}, arity = "0..1", fallbackValue = "true", hidden = true)
    String keepLinebreaks;
    @Option(names = {"--overwrite_cache", "--overwrite-cache"}, arity = "0..1", fallbackValue = "true", hidden = true)
    String overwriteCache;

    /** HF's boolean spelling (True, true, 1, yes); anything else is one line naming the flag. */
    static boolean bool(String flag, String v) {
        return switch (v.strip().toLowerCase(Locale.ROOT)) {
            case "true", "1", "yes", "y", "t" -> true;
            case "false", "0", "no", "n", "f" -> false;
            default -> throw new UserError(flag + " takes True or False, got '" + v + "'");
        };
    }

    /** Checks the values that would make a different run than cpt4j's (e.g. another optimizer), before anything runs. */
    void validate() {
        if (optim != null && !List.of("adamw_torch", "adamw_torch_fused", "adamw_hf", "adamw")
                .contains(optim.strip().toLowerCase(Locale.ROOT)))
            throw new UserError("--optim " + optim + " is not available; cpt4j trains with AdamW (torch's, decoupled "
                    + "weight decay): use --optim adamw_torch or drop the flag");
        if (loadInKbits != null && !List.of("4", "8", "16").contains(loadInKbits.strip()))
            throw new UserError("--load_in_kbits takes 4, 8 or 16, got '" + loadInKbits + "'");
        if (loggingStrategy != null && !loggingStrategy.strip().equalsIgnoreCase("steps"))
            throw new UserError("--logging_strategy '" + loggingStrategy + "' is not supported; cpt4j logs every "
                    + "--logging_steps steps (use --logging_strategy steps or drop it)");
        if (saveStrategy != null && !List.of("steps", "no").contains(saveStrategy.strip().toLowerCase(Locale.ROOT)))
            throw new UserError("--save_strategy '" + saveStrategy + "' is not supported; use steps (with --save_steps N) "
                    + "or no");
        if (metricForBestModel != null && !List.of("loss", "eval_loss").contains(metricForBestModel.strip()))
            throw new UserError("--metric_for_best_model " + metricForBestModel + " is not available; cpt4j evaluates the "
                    + "loss: use --metric_for_best_model loss or drop the flag");
        if (greaterIsBetter != null && bool("--greater_is_better", greaterIsBetter))
            throw new UserError("--greater_is_better True would keep the checkpoint with the highest loss; drop the flag "
                    + "(a lower loss is better)");
        if (pushToHub != null && bool("--push_to_hub", pushToHub))
            throw new UserError("--push_to_hub: cpt4j does not upload; drop the flag and upload --output_dir yourself "
                    + "(huggingface-cli upload ID DIR)");
    }

    /** {@code --load_best_model_at_end}: the checkpoint with the lowest eval loss becomes the final model. */
    boolean loadBestModelAtEnd() {
        return loadBestModelAtEnd != null && bool("--load_best_model_at_end", loadBestModelAtEnd);
    }

    /** True for {@code --save_strategy no}. */
    boolean noIntermediateSaves() {
        return saveStrategy != null && saveStrategy.strip().equalsIgnoreCase("no");
    }

    /** One line per flag given, saying what cpt4j does instead. */
    List<String> notes(int loggingSteps, int saveSteps) {
        List<String> out = new ArrayList<>();
        if (deepspeed != null)
            out.add("--deepspeed: cpt4j reads no DeepSpeed config: its AdamW state covers only the trainable tensors, and "
                    + "under mpirun it is sharded over the ranks (ZeRO-1) by cpt4j itself; ignored");
        if (ddpTimeout != null) out.add("--ddp_timeout: no torch.distributed; under mpirun a rank that fails ends the "
                + "whole job at once, there is no timeout to wait for; ignored");
        if (ddpFindUnused != null) out.add("--ddp_find_unused_parameters: no DDP; under mpirun exactly the trained "
                + "tensors' gradients are all-reduced; ignored");
        if (localRank != null) out.add("--local_rank: cpt4j takes its rank from mpirun (data parallelism), and each "
                + "process uses --threads cores; ignored");
        if (fp16 != null)
            out.add("--fp16: cpt4j trains in fp32 (no loss scaling, no fp16 overflow); --base_dtype bf16 stores the "
                    + "frozen base in bf16; ignored");
        if (bf16 != null) out.add("--bf16: cpt4j computes in fp32; --base_dtype bf16 stores the frozen base in bf16; ignored");
        if (tf32 != null) out.add("--tf32: cpt4j computes in full fp32 on the CPU; ignored");
        if (torchDtype != null)
            out.add("--torch_dtype " + torchDtype + ": cpt4j keeps trainable weights in fp32 (frozen base in bf16 with "
                    + "--base_dtype bf16); ignored");
        if (loadInKbits != null)
            out.add("--load_in_kbits " + loadInKbits.strip() + ": cpt4j does not quantize the base to 4 or 8 bits; "
                    + "--base_dtype bf16 halves the frozen base's memory instead; ignored");
        if (doubleQuant != null) out.add("--double_quant: no 4-bit quantization in cpt4j (see --base_dtype bf16); ignored");
        if (quantType != null) out.add("--quant_type: no 4-bit quantization in cpt4j (see --base_dtype bf16); ignored");
        if (flashAttn != null)
            out.add("--flash_attn: cpt4j's attention is already a tiled, memory-saving (flash-style) kernel; ignored");
        if (useCpu != null) out.add("--use_cpu/--no_cuda: cpt4j always trains on the CPU; ignored");
        if (torchCompile != null) out.add("--torch_compile: cpt4j's kernels are compiled by the JVM's JIT; ignored");
        if (gradientCheckpointingKwargs != null)
            out.add("--gradient_checkpointing_kwargs: --gradient_checkpointing recomputes each block; ignored");
        if (optim != null) out.add("--optim " + optim.strip() + ": cpt4j's AdamW is torch's AdamW; accepted");
        if (loggingStrategy != null)
            out.add("--logging_strategy: cpt4j logs every --logging_steps (" + loggingSteps + ") steps; ignored");
        if (saveStrategy != null)
            out.add(noIntermediateSaves()
                    ? "--save_strategy no: no intermediate checkpoints; the final model is still written"
                    : "--save_strategy: cpt4j checkpoints every --save_steps (" + saveSteps + ") steps; ignored");
        if (saveSafetensors != null)
            out.add(bool("--save_safetensors", saveSafetensors)
                    ? "--save_safetensors: cpt4j always writes safetensors; accepted"
                    : "--save_safetensors False: cpt4j writes safetensors only (transformers and peft read them); ignored");
        if (saveOnlyModel != null)
            out.add("--save_only_model: cpt4j's checkpoints keep the AdamW moments so that they resume exactly; ignored");
        if (dataloaderNumWorkers != null)
            out.add("--dataloader_num_workers: batches are read from the memory-mapped block store; ignored");
        if (dataloaderPinMemory != null) out.add("--dataloader_pin_memory: no GPU to copy batches to; ignored");
        if (removeUnusedColumns != null) out.add("--remove_unused_columns: the block store holds only token ids; ignored");
        if (groupByLength != null) out.add("--group_by_length: every block has --block_size tokens; ignored");
        if (fullDeterminism != null)
            out.add("--full_determinism: cpt4j's runs are always deterministic for a seed, whatever --threads; accepted");
        if (dataSeed != null)
            out.add("--data_seed: the batch order follows --seed and the validation split prepare's seed; ignored");
        if (logLevel != null) out.add("--log_level: cpt4j prints its lines on stderr (--verbose adds stack traces); ignored");
        if (includeTokensPerSecond != null)
            out.add("--include_tokens_per_second: cpt4j always logs tokens_per_s; accepted");
        if (hubModelId != null) out.add("--hub_model_id: cpt4j does not upload; ignored");
        if (doPredict != null) out.add("--do_predict: use 'cpt4j eval' or 'cpt4j generate' after training; ignored");
        if (debugMode != null) out.add("--debug_mode: add --verbose for stack traces; ignored");
        if (cacheDir != null)
            out.add("--cache_dir: cpt4j reads local model folders only (no hub cache); prepared data goes to "
                    + "--data_cache_dir; ignored");
        if (modelRevision != null) out.add("--model_revision: cpt4j reads the local folder as it is; ignored");
        if (useFastTokenizer != null) out.add("--use_fast_tokenizer: cpt4j has one tokenizer implementation (HF-exact); ignored");
        if (token != null) out.add("--token/--use_auth_token: cpt4j reads local folders only; ignored");
        if (lowCpuMemUsage != null)
            out.add("--low_cpu_mem_usage: cpt4j always loads weights tensor by tensor into the model's own storage; accepted");
        if (trustRemoteCode != null) out.add("--trust_remote_code: cpt4j runs no model code from the hub; ignored");
        if (modelType != null) out.add("--model_type: the architecture comes from config.json's model_type; ignored");
        if (streaming != null)
            out.add("--streaming: cpt4j memory-maps the prepared blocks, so a corpus larger than memory trains as is; ignored");
        if (keepLinebreaks != null) out.add("--keep_linebreaks: each line of a *.txt file is one example; ignored");
        if (overwriteCache != null)
            out.add("--overwrite_cache: the --data_cache_dir is rebuilt whenever the tokenizer, block size, split or files "
                    + "change (delete it to force a rebuild); ignored");
        return out;
    }
}
