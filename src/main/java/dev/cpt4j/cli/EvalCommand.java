package dev.cpt4j.cli;

import dev.cpt4j.Cpt4j;
import dev.cpt4j.generate.EvalOptions;
import dev.cpt4j.generate.Evaluation;
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
        description = {"Held-out loss and perplexity of a model, optionally with an adapter, on a text file.",
                "The loss is the mean next-token cross-entropy, as transformers computes it with labels=input_ids. Each "
                        + "non-blank line is tokenized with special tokens; the ids are concatenated and cut into "
                        + "--block-size blocks (the remainder is dropped)."})
final class EvalCommand implements Callable<Integer> {
    @Mixin
    BackendOption backendOption;

    @Option(names = "--model", required = true, paramLabel = "DIR",
            description = "Model directory (config.json, weights, tokenizer), a full fine-tune's output or checkpoint-N "
                    + "folder, or a LoRA adapter folder whose base model is a local directory. Required.")
    Path model;

    @Option(names = "--adapter", paramLabel = "DIR",
            description = "LoRA adapter to apply: a LoRA run's output or one of its checkpoint-N folders (default: none).")
    Path adapter;

    @Option(names = {"--text-file", "--text_file"}, required = true, paramLabel = "FILE",
            description = "Held-out UTF-8 text, one example per line. Required.")
    Path textFile;

    @Option(names = {"--block-size", "--block_size"}, paramLabel = "N",
            description = "Tokens per block (default: the model's context, at most " + Evaluation.DEFAULT_BLOCK_SIZE
                    + ", as train and compare).")
    int blockSize;

    @Option(names = {"--batch-size", "--batch_size"}, defaultValue = "" + EvalOptions.DEFAULT_BATCH_SIZE, paramLabel = "N",
            description = "Blocks per forward pass; does not change the result (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--threads", paramLabel = "N", description = "Worker threads (default: all cores).")
    Integer threads;

    @Option(names = {"--neat_packing", "--neat-packing"}, arity = "0..1", fallbackValue = "true", paramLabel = "BOOL",
            description = "Score each document (line) of a block alone, as training with --neat_packing sees it "
                    + "(default: off).")
    boolean neatPacking;

    @Option(names = "--json", description = "End with one JSON line: {\"loss\":…,\"perplexity\":…,\"tokens\":…,\"blocks\":…} "
            + "(default: a line of text).")
    boolean json;

    @Override
    public Integer call() {
        backendOption.apply();
        EvalOptions.Builder b = EvalOptions.builder().model(model).adapter(adapter).textFile(textFile)
                .blockSize(blockSize).batchSize(batchSize).neatPacking(neatPacking);
        if (threads != null) b.threads(threads);
        Evaluation.Result r = Cpt4j.eval(b.build());
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        if (json) {
            out.println(r.toJson());
        } else {
            out.printf(Locale.ROOT, "loss %.6f  perplexity %.4f  (%d blocks of %d tokens; %d text tokens, %d dropped)%n",
                    r.loss(), r.perplexity(), r.blocks(), r.blockSize(), r.textTokens(), r.textTokens() - r.tokens());
        }
        return 0;
    }
}
