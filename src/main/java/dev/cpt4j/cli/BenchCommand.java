package dev.cpt4j.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cpt4j.UserError;
import dev.cpt4j.generate.GenerateBench;
import dev.cpt4j.bench.TrainBench;
import dev.cpt4j.model.ModelConfig;
import dev.cpt4j.model.ModelFamily;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.cpu.Gemm;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code cpt4j bench <what>}: performance measurements (training and generation throughput). */
@Command(name = "bench", mixinStandardHelpOptions = true, description = "Measure performance on this machine.",
        subcommands = {BenchCommand.Train.class, BenchCommand.Generate.class, BenchCommand.Load.class, BenchCommand.Serve.class})
final class BenchCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        throw new UserError("bench needs a subcommand, e.g. 'cpt4j bench train --config config.json --batch 4 --block 128'");
    }

    /** {@code cpt4j bench train}: whole training steps on random weights of a config. */
    @Command(name = "train", mixinStandardHelpOptions = true,
            description = "Train random weights of a model config (gpt2, llama, qwen2, qwen3, mistral) on random ids; report tokens/s, peak RSS, GFLOP/s, MFU.")
    static final class Train implements Callable<Integer> {
        @Mixin
        BackendOption backendOption;
        @Option(names = "--config", required = true, paramLabel = "FILE", description = "A Hugging Face config.json of any supported family (gpt2, llama, qwen2, qwen3, mistral). Required.")
        Path config;
        @Option(names = "--batch", required = true, paramLabel = "N", description = "Sequences per step. Required.")
        int batch;
        @Option(names = "--block", required = true, paramLabel = "N", description = "Tokens per sequence. Required.")
        int block;
        @Option(names = "--steps", defaultValue = "10", paramLabel = "N", description = "Timed steps (default: ${DEFAULT-VALUE}).")
        int steps;
        @Option(names = "--warmup", defaultValue = "2", paramLabel = "N", description = "Untimed steps first (default: ${DEFAULT-VALUE}).")
        int warmup;
        @Option(names = {"--gradient_checkpointing", "--gradient-checkpointing"}, description = "Recompute block activations in backward (default: off).")
        boolean checkpointing;
        @Option(names = "--threads", defaultValue = "0", paramLabel = "N", description = "Worker threads; 0 is all cores (default: ${DEFAULT-VALUE}).")
        int threads;
        @Option(names = "--json", description = "Print the result as one JSON object on the last line (default: off).")
        boolean json;
        @Option(names = {"--lora_rank", "--lora-rank"}, defaultValue = "0", paramLabel = "R", description = "LoRA rank; 0 is full fine-tuning (default: ${DEFAULT-VALUE}).")
        int loraRank;
        @Option(names = {"--lora_alpha", "--lora-alpha"}, defaultValue = "8", paramLabel = "X", description = "LoRA alpha (scaling alpha/r) (default: ${DEFAULT-VALUE}).")
        double loraAlpha;
        @Option(names = {"--lora_dropout", "--lora-dropout"}, defaultValue = "0", paramLabel = "P", description = "Dropout on the LoRA input (default: ${DEFAULT-VALUE}).")
        double loraDropout;
        @Option(names = "--trainable", split = ",", paramLabel = "MODULES", description = "LoRA targets, comma-separated (c_attn, q_proj, all-linear, ...) (default: the family's peft default (GPT-2 c_attn; LLaMA q_proj,v_proj)).")
        java.util.List<String> trainable;
        @Option(names = {"--modules_to_save", "--modules-to-save"}, split = ",", paramLabel = "MODULES", description = "Modules trained in full beside LoRA, comma-separated, e.g. transformer.wte,lm_head (default: none).")
        java.util.List<String> modulesToSave;
        @Option(names = {"--base_dtype", "--base-dtype"}, defaultValue = "fp32", paramLabel = "fp32|bf16",
                description = "Storage of the frozen base weights with LoRA (default: ${DEFAULT-VALUE}).")
        String baseDtype;

        @Option(names = {"--neat_packing", "--neat-packing"}, paramLabel = "D", defaultValue = "0",
                description = "Train with neat packing on random documents of D tokens on average; 0 is plain packing (default: ${DEFAULT-VALUE}).")
        int neatPacking;
        @Option(names = {"--use_rslora", "--use-rslora"}, description = "rsLoRA scaling alpha/sqrt(r) (default: off).")
        boolean useRslora;

        @Override
        public Integer call() {
            backendOption.apply();
            if (batch < 1) throw new UserError("--batch must be at least 1, got " + batch);
            if (block < 1) throw new UserError("--block must be at least 1, got " + block);
            if (steps < 1) throw new UserError("--steps must be at least 1, got " + steps);
            if (warmup < 0) throw new UserError("--warmup must not be negative, got " + warmup);
            if (threads < 0) throw new UserError("--threads must not be negative, got " + threads);
            if (neatPacking < 0) throw new UserError("--neat_packing takes the mean document length in tokens (0 = off), got " + neatPacking);
            TrainBench.LoraSpec lora = loraSpecOf(loraRank, loraAlpha, loraDropout, trainable, modulesToSave, baseDtype, useRslora);
            ModelConfig cfg = readAnyConfig(config);
            ModelFamily fam = cfg.family();
            if (lora != null)   // the family's names, as train resolves them (one line for a module it lacks)
                lora = new TrainBench.LoraSpec(lora.rank(), lora.alpha(), lora.dropout(),
                        fam.resolveLoraSites(lora.targets().isEmpty() ? fam.defaultLoraSites() : lora.targets()),
                        fam.resolveSavedModules(lora.modulesToSave()), lora.baseBf16(), lora.rslora());
            if (block > cfg.contextLength())
                throw new UserError("--block " + block + " exceeds the context of " + cfg.contextLength() + " positions of "
                        + config + "; use a smaller --block");
            try (Parallel par = threads == 0 ? Parallel.allCores() : new Parallel(threads)) {
                if (!json) {
                    String loraText = lora == null ? "" : ", LoRA r=" + lora.rank() + " alpha " + lora.alpha() + " on " + lora.targets()
                            + (lora.modulesToSave().isEmpty() ? "" : " + " + lora.modulesToSave())
                            + (lora.baseBf16() ? ", base in bf16" : "");
                    System.out.printf(Locale.ROOT, "bench train: %d layers, %d wide, %d heads, vocab %d, batch %d × block %d, %d threads%s%s%n",
                            cfg.numLayers(), cfg.hiddenSize(), cfg.numAttentionHeads(), cfg.vocabSize(), batch, block, par.threads(),
                            checkpointing ? ", gradient checkpointing" : "", loraText
                                    + (neatPacking > 0 ? ", neat packing (documents of " + neatPacking + " tokens on average)" : ""));
                }
                Gemm gemm = new Gemm(par);   // built as TrainBench builds its own: the same backend and tile
                if (!json) System.out.println("GEMM: " + gemm.describe());
                TrainBench.Result r = TrainBench.run(cfg, par, batch, block, steps, warmup, checkpointing, lora, neatPacking,
                        json ? null : System.out::println);
                if (json) {
                    System.out.printf(Locale.ROOT, "{\"tokens_per_s\":%.2f,\"peak_rss_mb\":%.1f,\"gflops\":%.4g,\"mfu\":%.4g,\"peak_gflops\":%.4g,"
                                    + "\"final_loss\":%.6f,\"backend\":\"%s\",\"precision\":\"%s\",\"tile\":\"%s\",\"trainable_params\":%d,"
                                    + "\"adamw_ms\":%.2f,\"adamw_bound_ms\":%.2f,\"bandwidth_gbs\":%.2f,\"ms_per_step\":%.1f}%n",
                            r.tokensPerS(), r.peakRssMb(), r.gflops(), r.mfu(), r.peakGflops(), r.lastLoss(), gemm.backend(),
                            gemm.precision(), gemm.tileShape(), r.trainableParams(), r.optimizer().ms(), r.optimizer().boundMs(),
                            r.optimizer().bandwidthGBs(), r.msPerStep());
                } else {
                    System.out.printf(Locale.ROOT, "params %,d (%,d trained); %.1f ms/step; %.1f tokens/s; %.1f GFLOP/s achieved; GEMM peak %.1f GFLOP/s (%s); MFU %.1f%%; peak RSS %.0f MiB; final loss %.4f%n",
                            r.params(), r.trainableParams(), r.msPerStep(), r.tokensPerS(), r.gflops(), r.peakGflops(), gemm.precision(),
                            100 * r.mfu(), r.peakRssMb(), r.lastLoss());
                    TrainBench.Optimizer o = r.optimizer();
                    System.out.printf(Locale.ROOT, "AdamW %.1f ms/step (%.1f%% of the step) over %,d elements: %.2f GB moved, bound %.1f ms at %.1f GB/s (in-place streaming, same threads)%n",
                            o.ms(), 100 * o.ms() / r.msPerStep(), o.elements(), o.bytes() / 1e9, o.boundMs(), o.bandwidthGBs());
                }
            }
            return 0;
        }
    }

    /** {@code cpt4j bench generate}: sampling throughput of the KV-cache decoder on random weights of a config. */
    @Command(name = "generate", mixinStandardHelpOptions = true,
            description = "Sample from random weights of a model config (KV cache, N sequences together); report new tokens/s.")
    static final class Generate implements Callable<Integer> {
        @Mixin
        BackendOption backendOption;

        @Option(names = "--config", required = true, paramLabel = "FILE", description = "A Hugging Face config.json of any supported family (gpt2, llama, qwen2, qwen3, mistral). Required.")
        Path config;
        @Option(names = {"--prompt-tokens", "--prompt_tokens"}, defaultValue = "32", paramLabel = "N", description = "Random prompt length (default: ${DEFAULT-VALUE}).")
        int promptTokens;
        @Option(names = {"--max-new-tokens", "--max_new_tokens"}, defaultValue = "128", paramLabel = "N", description = "New tokens per sequence (default: ${DEFAULT-VALUE}).")
        int maxNewTokens;
        @Option(names = {"--num-return-sequences", "--num_return_sequences"}, defaultValue = "5", paramLabel = "N", description = "Sequences decoded together (default: ${DEFAULT-VALUE}).")
        int numSeq;
        @Option(names = {"--top-p", "--top_p"}, defaultValue = "0.9", paramLabel = "P", description = "Nucleus filter, after top-k 50 as transformers (default: ${DEFAULT-VALUE}).")
        float topP;
        @Option(names = "--seed", defaultValue = "42", paramLabel = "N", description = "Seed of weights, prompt and sampling (default: ${DEFAULT-VALUE}).")
        long seed;
        @Option(names = "--threads", defaultValue = "0", paramLabel = "N", description = "Worker threads; 0 is all cores (default: ${DEFAULT-VALUE}).")
        int threads;
        @Option(names = "--json", description = "Print the result as one JSON object on the last line (default: off).")
        boolean json;

        @Override
        public Integer call() {
            backendOption.apply();
            if (promptTokens < 1) throw new UserError("--prompt-tokens must be at least 1, got " + promptTokens);
            if (maxNewTokens < 1) throw new UserError("--max-new-tokens must be at least 1, got " + maxNewTokens);
            if (numSeq < 1) throw new UserError("--num-return-sequences must be at least 1, got " + numSeq);
            if (!(topP > 0 && topP <= 1)) throw new UserError("--top-p must be in (0, 1], got " + topP);
            if (threads < 0) throw new UserError("--threads must not be negative, got " + threads);
            ModelConfig cfg = readAnyConfig(config).withoutDropout();
            if (promptTokens + maxNewTokens > cfg.contextLength())
                throw new UserError("--prompt-tokens + --max-new-tokens (" + (promptTokens + maxNewTokens) + ") exceeds the context of "
                        + cfg.contextLength() + " positions of " + config + "; lower one of them");
            try (Parallel par = threads == 0 ? Parallel.allCores() : new Parallel(threads)) {
                if (!json) System.out.println("GEMM: " + new Gemm(par).describe());
                if (!json)
                    System.out.printf(Locale.ROOT, "bench generate: %d layers, %d wide, vocab %d; prompt %d, %d new tokens × %d sequences, top-p %.2f, %d threads%n",
                            cfg.numLayers(), cfg.hiddenSize(), cfg.vocabSize(), promptTokens, maxNewTokens, numSeq, topP, par.threads());
                GenerateBench.Result r = GenerateBench.run(cfg, promptTokens, maxNewTokens, numSeq, topP, seed, par);
                if (json) {
                    System.out.printf(Locale.ROOT, "{\"tokens_per_s\":%.2f,\"new_tokens\":%d,\"seconds\":%.4f,\"threads\":%d}%n",
                            r.tokensPerSecond(), r.newTokens(), r.seconds(), r.threads());
                } else {
                    System.out.printf(Locale.ROOT, "%d new tokens in %.3f s: %.1f tokens/s (prefill included)%n",
                            r.newTokens(), r.seconds(), r.tokensPerSecond());
                }
            }
            return 0;
        }
    }

    /** {@code cpt4j bench load}: a (large) checkpoint read per tensor in bf16, one block's loss, greedy decoding. */
    @Command(name = "load", mixinStandardHelpOptions = true,
            description = "Load a model directory tensor by tensor (matrices in bf16, no 2^31 limit), evaluate one random block, decode greedily; report times and peak RSS.")
    static final class Load implements Callable<Integer> {
        @Option(names = "--model", required = true, paramLabel = "DIR", description = "Model directory (config.json + weights). Required.")
        Path model;
        @Option(names = "--block", defaultValue = "128", paramLabel = "N", description = "Tokens of the evaluated block (default: ${DEFAULT-VALUE}).")
        int block;
        @Option(names = {"--max-new-tokens", "--max_new_tokens"}, defaultValue = "16", paramLabel = "N", description = "Greedy tokens after a 32-token prompt (default: ${DEFAULT-VALUE}).")
        int newTokens;
        @Option(names = "--seed", defaultValue = "42", paramLabel = "N", description = "Seed of the random ids (default: ${DEFAULT-VALUE}).")
        long seed;
        @Option(names = "--threads", defaultValue = "0", paramLabel = "N", description = "Worker threads; 0 is all cores (default: ${DEFAULT-VALUE}).")
        int threads;
        @Option(names = "--json", description = "Print the result as one JSON object on the last line (default: off).")
        boolean json;

        @Override
        public Integer call() {
            if (block < 2) throw new UserError("--block must be at least 2 (a loss needs two tokens), got " + block);
            if (newTokens < 1) throw new UserError("--max-new-tokens must be at least 1, got " + newTokens);
            if (threads < 0) throw new UserError("--threads must not be negative, got " + threads);
            try (Parallel par = threads == 0 ? Parallel.allCores() : new Parallel(threads)) {
                dev.cpt4j.bench.LoadBench.Result r = dev.cpt4j.bench.LoadBench.run(model, block, newTokens, seed, par);
                if (json) {
                    System.out.printf(Locale.ROOT, "{\"parameters\":%d,\"weight_bytes\":%d,\"load_s\":%.2f,\"loss\":%.5f,\"eval_s\":%.2f,"
                                    + "\"decode_tokens_per_s\":%.3f,\"peak_rss_mb\":%.0f}%n", r.parameters(), r.weightBytes(),
                            r.loadSeconds(), r.loss(), r.evalSeconds(), r.decodeTokensPerSecond(), r.peakRssMb());
                } else {
                    System.out.printf(Locale.ROOT, "bench load: %s, %,d parameters (%.2f GiB as stored), %d threads%n",
                            r.config().modelType(), r.parameters(), r.weightBytes() / 1073741824.0, par.threads());
                    System.out.printf(Locale.ROOT, "load %.1f s; loss of a %d-token block %.4f in %.1f s; %d greedy tokens at %.2f tokens/s; peak RSS %.0f MiB%n",
                            r.loadSeconds(), block, r.loss(), r.evalSeconds(), r.newTokens(), r.decodeTokensPerSecond(), r.peakRssMb());
                }
            }
            return 0;
        }
    }

    /**
     * The LoRA flags of {@code bench train}, validated as {@code cpt4j train} validates them; null without --lora_rank.
     * Target and module names stay as given (the config's family resolves them).
     */
    static TrainBench.LoraSpec loraSpecOf(int rank, double alpha, double dropout, java.util.List<String> trainable,
                                          java.util.List<String> modulesToSave, String baseDtype, boolean rslora) {
        boolean bf16 = switch (baseDtype == null ? "fp32" : baseDtype.strip().toLowerCase(Locale.ROOT)) {
            case "fp32", "float32" -> false;
            case "bf16", "bfloat16" -> true;
            default -> throw new UserError("--base_dtype '" + baseDtype + "' is not supported; use fp32 or bf16");
        };
        java.util.List<String> t = names(trainable), m = names(modulesToSave);
        if (rank < 0) throw new UserError("--lora_rank must be >= 0 (0 = full fine-tuning), got " + rank);
        if (rank == 0) {
            if (!t.isEmpty() || !m.isEmpty())
                throw new UserError("--trainable/--modules_to_save need --lora_rank R (e.g. 8)");
            if (bf16) throw new UserError("--base_dtype bf16 needs --lora_rank R (a frozen base); full fine-tuning trains in fp32");
            if (rslora) throw new UserError("--use_rslora needs --lora_rank R");
            return null;
        }
        if (!(alpha > 0)) throw new UserError("--lora_alpha must be positive, got " + alpha);
        if (!(dropout >= 0 && dropout < 1)) throw new UserError("--lora_dropout must be in [0, 1), got " + dropout);
        return new TrainBench.LoraSpec(rank, alpha, dropout, t, m, bf16, rslora);
    }

    private static java.util.List<String> names(java.util.List<String> raw) {
        java.util.List<String> out = new java.util.ArrayList<>();
        if (raw != null) for (String n : raw) if (!n.strip().isEmpty() && !out.contains(n.strip())) out.add(n.strip());
        return out;
    }

    /** An HF config.json of any family, read as everywhere else (keys, aliases, defaults; one-line errors). */
    static ModelConfig readAnyConfig(Path file) {
        if (!Files.isRegularFile(file)) throw new UserError("config file " + file + " not found; pass a model's config.json with --config");
        return dev.cpt4j.hf.HfConfigs.read(file);
    }

    /** {@code cpt4j bench serve}: N concurrent clients against the same requests one at a time, over HTTP on loopback. */
    @Command(name = "serve", mixinStandardHelpOptions = true,
            description = "Serve a model in-process and send N completion requests one at a time, then all at once; report tokens/s and p50/p95 latency.")
    static final class Serve implements Callable<Integer> {
        @Mixin
        BackendOption backendOption;
        @Option(names = "--model", required = true, paramLabel = "DIR", description = "Model directory to serve. Required.")
        Path model;
        @Option(names = "--clients", defaultValue = "16", paramLabel = "N", description = "Requests, and concurrent clients (default: ${DEFAULT-VALUE}).")
        int clients;
        @Option(names = "--max-tokens", defaultValue = "128", paramLabel = "N", description = "New tokens per request (default: ${DEFAULT-VALUE}).")
        int maxTokens;
        @Option(names = "--prompt", defaultValue = "床前明月光，", paramLabel = "TEXT", description = "Prompt of every request (default: ${DEFAULT-VALUE}).")
        String prompt;
        @Option(names = "--threads", defaultValue = "0", paramLabel = "N", description = "Worker threads; 0 is all cores (default: ${DEFAULT-VALUE}).")
        int threads;

        @Override
        public Integer call() throws Exception {
            backendOption.apply();
            if (clients < 1) throw new UserError("--clients must be at least 1, got " + clients);
            if (maxTokens < 1) throw new UserError("--max-tokens must be at least 1, got " + maxTokens);
            JsonNode r = dev.cpt4j.serve.ServeBench.run(model, clients, maxTokens, threads, prompt);
            for (String phase : new String[] {"one_at_a_time", "concurrent"}) {
                JsonNode p = r.get(phase);
                System.out.printf(Locale.ROOT, "%-14s %3d requests  %6d tokens  %7.2f s  %8.1f tokens/s  p50 %6.2f s  p95 %6.2f s%n",
                        phase, p.get("requests").asInt(), p.get("tokens").asLong(), p.get("seconds").asDouble(),
                        p.get("tokensPerS").asDouble(), p.get("p50").asDouble(), p.get("p95").asDouble());
            }
            System.out.printf(Locale.ROOT, "concurrent / one at a time: %.2fx aggregate tokens/s%n", r.get("speedup").asDouble());
            System.out.println(new ObjectMapper().writeValueAsString(r));
            return 0;
        }
    }
}
