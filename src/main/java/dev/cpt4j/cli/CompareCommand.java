package dev.cpt4j.cli;

import dev.cpt4j.UserError;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
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
        if (numReturnSequences < 1)
            throw new UserError("--num-return-sequences must be at least 1, got " + numReturnSequences);
        List<String> lines = readPrompts(prompts);
        if (Files.exists(output) && !Files.isDirectory(output))
            throw new UserError("--output " + output + " exists and is not a directory");
        // wired to evaluation (perplexity on held-out blocks) and model loading when they land; then
        // CompareReport(...).write(output)
        throw new UserError("'compare' needs model loading and evaluation, which are not yet available in this build ("
                + lines.size() + " prompts read from " + prompts + ")");
    }

    static List<String> readPrompts(Path file) throws IOException {
        if (!Files.isRegularFile(file)) throw new UserError("--prompts " + file + " does not exist or is not a file");
        List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8).stream()
                .map(String::strip).filter(s -> !s.isEmpty()).toList();
        if (lines.isEmpty()) throw new UserError("--prompts " + file + " has no prompts; write one prompt per line");
        return lines;
    }
}
