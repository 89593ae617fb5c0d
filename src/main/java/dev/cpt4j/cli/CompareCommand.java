package dev.cpt4j.cli;

import dev.cpt4j.UserError;
import dev.cpt4j.generate.CompareReport;
import dev.cpt4j.generate.Comparison;
import dev.cpt4j.generate.GenerationConfig;
import dev.cpt4j.generate.LoadedModel;
import dev.cpt4j.generate.TextGeneration;
import dev.cpt4j.tensor.Parallel;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code cpt4j compare}: base model vs. base + adapter — perplexity on the same held-out blocks and continuations of
 * the same prompts with the same seeds, as a Markdown and an HTML report ({@code generate.CompareReport}).
 */
@Command(name = "compare", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Compare a base model with base + adapter: held-out perplexity and side-by-side samples.")
final class CompareCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Base model directory.")
    Path model;

    @Option(names = "--adapter", required = true, paramLabel = "DIR", description = "LoRA adapter directory.")
    Path adapter;

    @ArgGroup(exclusive = true, multiplicity = "1")
    EvalData data;

    static final class EvalData {
        @Option(names = "--data", paramLabel = "PREPARED_DIR", description = "Prepared data; its validation split is used.")
        Path prepared;

        @Option(names = {"--text-file", "--text_file"}, paramLabel = "FILE", description = "Held-out UTF-8 text, one example per line.")
        Path textFile;
    }

    @Option(names = "--prompts", required = true, paramLabel = "FILE", description = "UTF-8 file, one prompt per line.")
    Path prompts;

    @Option(names = "--seed", defaultValue = "42", description = "Sampling seed, the same for both models (default ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = {"--num-return-sequences", "--num_return_sequences"}, defaultValue = "3",
            description = "Samples per prompt and model (default ${DEFAULT-VALUE}).")
    int numReturnSequences;

    @Option(names = {"--block-size", "--block_size"}, defaultValue = "128", paramLabel = "N",
            description = "Tokens per held-out block with --text-file (default ${DEFAULT-VALUE}, capped at the model's context).")
    int blockSize;

    @Option(names = {"--batch-size", "--batch_size"}, defaultValue = "8", paramLabel = "B", description = "Blocks per forward pass.")
    int batchSize;

    @Option(names = {"--neat_packing", "--neat-packing"}, arity = "0..1", fallbackValue = "true", paramLabel = "BOOL",
            description = "Score each document (line) of a block alone, as training with --neat_packing sees it.")
    boolean neatPacking;

    @Option(names = {"--general_eval_file", "--general-eval-file"}, paramLabel = "FILE",
            description = "General-domain held-out text: its perplexity before and after too (what the adapter cost there).")
    Path generalEvalFile;

    @Option(names = {"--max-new-tokens", "--max_new_tokens"}, defaultValue = "64", paramLabel = "N",
            description = "New tokens per sample (default ${DEFAULT-VALUE}).")
    int maxNewTokens;

    @Option(names = {"--top-p", "--top_p"}, defaultValue = "0.9", description = "Nucleus filter (default ${DEFAULT-VALUE}, as the seed).")
    float topP;

    @Option(names = {"--eos-token-id", "--eos_token_id"}, split = ",", paramLabel = "ID",
            description = "End-of-text id(s) (default: the tokenizer's <|endoftext|>, </s> or [SEP]).")
    int[] eosTokenIds;

    @Option(names = "--threads", paramLabel = "N", description = "Worker threads (default: all cores).")
    Integer threads;

    @Option(names = "--output", defaultValue = "compare-report", paramLabel = "DIR",
            description = "Where report.md and report.html go (default ${DEFAULT-VALUE}).")
    Path output;

    @Override
    public Integer call() throws IOException {
        GenerateCommand.requireDir(model, "--model");
        GenerateCommand.requireDir(adapter, "--adapter");
        if (data.prepared != null && !Files.isDirectory(data.prepared))
            throw new UserError("--data " + data.prepared + " is not a directory; give the output directory of 'cpt4j prepare'");
        if (data.textFile != null && !Files.isRegularFile(data.textFile))
            throw new UserError("--text-file " + data.textFile + " does not exist or is not a file");
        if (generalEvalFile != null && !Files.isRegularFile(generalEvalFile))
            throw new UserError("--general_eval_file " + generalEvalFile + " does not exist or is not a file");
        if (numReturnSequences < 1)
            throw new UserError("--num-return-sequences must be at least 1, got " + numReturnSequences);
        List<String> lines = readPrompts(prompts);
        if (Files.exists(output) && !Files.isDirectory(output))
            throw new UserError("--output " + output + " exists and is not a directory");
        if (blockSize < 2) throw new UserError("--block-size must be at least 2, got " + blockSize);
        if (batchSize < 1) throw new UserError("--batch-size must be at least 1, got " + batchSize);
        if (threads != null && threads < 1) throw new UserError("--threads must be at least 1, got " + threads);
        int[] eos = eosTokenIds != null ? eosTokenIds
                : TextGeneration.defaultEos(LoadedModel.tokenizerOf(model, adapter));
        GenerationConfig gen = new GenerationConfig(true, 1f, 50, topP, 1f, numReturnSequences, GenerationConfig.UNSET,
                maxNewTokens, 0, eos, GenerationConfig.UNSET, seed);
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        CompareReport r;
        try (Parallel par = threads == null ? Parallel.allCores() : new Parallel(threads)) {
            r = Comparison.run(model, adapter, new Comparison.EvalData(data.prepared, data.textFile, blockSize, neatPacking, generalEvalFile), lines, gen,
                    batchSize, par, s -> System.err.println("compare: " + s));
        }
        r.write(output);
        out.printf(Locale.ROOT, "perplexity on %d held-out blocks (%s): base %.4f -> base + adapter %.4f (%+.1f%%)%n",
                r.blocks(), r.evalSource(), r.perplexityBefore(), r.perplexityAfter(), 100 * r.perplexityChange());
        if (r.general() != null)
            out.printf(Locale.ROOT, "general-domain perplexity on %d blocks (%s): base %.4f -> base + adapter %.4f (%+.1f%%)%n",
                    r.general().blocks(), r.general().source(), r.general().perplexityBefore(),
                    r.general().perplexityAfter(), 100 * r.general().perplexityChange());
        for (CompareReport.PromptSamples s : r.samples()) {
            out.println("prompt: " + s.prompt());
            out.println("  before: " + s.before().getFirst());
            out.println("  after:  " + s.after().getFirst());
        }
        out.println("report: " + output.resolve("report.md") + ", " + output.resolve("report.html"));
        return 0;
    }

    static List<String> readPrompts(Path file) throws IOException {
        if (!Files.isRegularFile(file)) throw new UserError("--prompts " + file + " does not exist or is not a file");
        List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8).stream()
                .map(String::strip).filter(s -> !s.isEmpty()).toList();
        if (lines.isEmpty()) throw new UserError("--prompts " + file + " has no prompts; write one prompt per line");
        return lines;
    }
}
