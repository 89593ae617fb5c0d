package dev.cpt4j.cli;

import dev.cpt4j.UserError;
import dev.cpt4j.generate.Evaluation;
import dev.cpt4j.generate.LoadedModel;
import dev.cpt4j.tensor.Parallel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code cpt4j eval}: held-out loss and perplexity of a model (optionally with an adapter) on a text file. */
@Command(name = "eval", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Mean next-token loss and perplexity on held-out text, as transformers computes with labels=input_ids.",
                "Each non-blank line is tokenized with special tokens; ids are concatenated and cut into --block-size blocks (remainder dropped)."})
final class EvalCommand implements Callable<Integer> {
    @Mixin
    BackendOption backendOption;

    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Model directory (config.json, weights, tokenizer).")
    Path model;

    @Option(names = "--adapter", paramLabel = "DIR", description = "PEFT LoRA adapter directory to apply.")
    Path adapter;

    @Option(names = {"--text-file", "--text_file"}, required = true, paramLabel = "FILE", description = "UTF-8 text, one example per line.")
    Path textFile;

    @Option(names = {"--block-size", "--block_size"}, required = true, paramLabel = "N", description = "Tokens per block.")
    int blockSize;

    @Option(names = {"--batch-size", "--batch_size"}, defaultValue = "8", paramLabel = "B",
            description = "Blocks per forward pass (default ${DEFAULT-VALUE}); does not change the result.")
    int batchSize;

    @Option(names = "--threads", paramLabel = "N", description = "Worker threads (default: all cores).")
    Integer threads;

    @Option(names = {"--neat_packing", "--neat-packing"}, arity = "0..1", fallbackValue = "true", paramLabel = "BOOL",
            description = "Score each document (line) of a block alone, as training with --neat_packing sees it.")
    boolean neatPacking;

    @Option(names = "--json", description = "Last stdout line: {\"loss\":…,\"perplexity\":…,\"tokens\":…,\"blocks\":…}.")
    boolean json;

    @Override
    public Integer call() {
        backendOption.apply();
        if (blockSize < 2) throw new UserError("--block-size must be at least 2, got " + blockSize);
        if (batchSize < 1) throw new UserError("--batch-size must be at least 1, got " + batchSize);
        if (threads != null && threads < 1) throw new UserError("--threads must be at least 1, got " + threads);
        if (!java.nio.file.Files.isRegularFile(textFile))
            throw new UserError("--text-file " + textFile + " does not exist or is not a file");
        LoadedModel m = LoadedModel.load(model, adapter);
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        try (Parallel par = threads == null ? Parallel.allCores() : new Parallel(threads)) {
            Evaluation.Result r = Evaluation.evaluateText(m, textFile, blockSize, batchSize, neatPacking, par);
            if (json) {
                out.println(r.toJson());
            } else {
                out.printf(Locale.ROOT, "loss %.6f  perplexity %.4f  (%d blocks of %d tokens; %d text tokens, %d dropped)%n",
                        r.loss(), r.perplexity(), r.blocks(), blockSize, r.textTokens(), r.textTokens() - r.tokens());
            }
        }
        return 0;
    }
}
