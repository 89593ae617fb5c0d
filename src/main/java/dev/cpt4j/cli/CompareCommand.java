package dev.cpt4j.cli;

import dev.cpt4j.Cpt4j;
import dev.cpt4j.UserError;
import dev.cpt4j.generate.CompareOptions;
import dev.cpt4j.generate.CompareReport;
import dev.cpt4j.generate.EvalOptions;
import dev.cpt4j.generate.Evaluation;
import dev.cpt4j.generate.GenerateOptions;
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
 * {@code cpt4j compare}: two models — base vs. base + adapter, or any two with {@code --base-model} /
 * {@code --base-adapter} — on perplexity on the same held-out blocks and continuations of the same prompts with the
 * same seeds, as a Markdown and an HTML report ({@code generate.CompareReport}).
 */
@Command(name = "compare", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Compare two models: held-out perplexity and side-by-side samples, as a Markdown and an HTML report.",
                "By default --model is compared with --model + --adapter. With --base-model and/or --base-adapter any "
                        + "two: a base and its full fine-tune (--base-model BASE --model OUT), two adapters or two LoRA "
                        + "checkpoints (--model BASE --base-adapter OUT/checkpoint-100 --adapter OUT/checkpoint-200), two "
                        + "full checkpoints (--base-model OUT/checkpoint-100 --model OUT/checkpoint-200)."})
final class CompareCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR",
            description = "The model compared (right column): a model directory, a full fine-tune's output or "
                    + "checkpoint-N folder, or the base of --adapter. Required.")
    Path model;

    @Option(names = "--adapter", paramLabel = "DIR",
            description = "LoRA adapter on --model: a LoRA run's output or one of its checkpoint-N folders (default: none).")
    Path adapter;

    @Option(names = {"--base-model", "--base_model"}, paramLabel = "DIR",
            description = "The reference model (left column) (default: --model without --adapter).")
    Path baseModel;

    @Option(names = {"--base-adapter", "--base_adapter"}, paramLabel = "DIR",
            description = "LoRA adapter on the reference model (default: none).")
    Path baseAdapter;

    @ArgGroup(exclusive = true, multiplicity = "1")
    EvalData data;

    static final class EvalData {
        @Option(names = "--data", paramLabel = "DIR",
                description = "Output of 'cpt4j prepare'; its validation split is the held-out data. This or --text-file is required.")
        Path prepared;

        @Option(names = {"--text-file", "--text_file"}, paramLabel = "FILE",
                description = "Held-out UTF-8 text, one example per line. This or --data is required.")
        Path textFile;
    }

    @Option(names = "--prompts", required = true, paramLabel = "FILE", description = "UTF-8 file, one prompt per line. Required.")
    Path prompts;

    @Option(names = "--seed", defaultValue = "" + GenerateOptions.DEFAULT_SEED, paramLabel = "N",
            description = "Sampling seed, the same for both models (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = {"--num-return-sequences", "--num_return_sequences"},
            defaultValue = "" + CompareOptions.DEFAULT_NUM_RETURN_SEQUENCES, paramLabel = "N",
            description = "Samples per prompt and model (default: ${DEFAULT-VALUE}).")
    int numReturnSequences;

    @Option(names = {"--block-size", "--block_size"}, paramLabel = "N",
            description = "Tokens per held-out block with --text-file (default: the model's context, at most "
                    + Evaluation.DEFAULT_BLOCK_SIZE + ", as train and eval).")
    int blockSize;

    @Option(names = {"--batch-size", "--batch_size"}, defaultValue = "" + EvalOptions.DEFAULT_BATCH_SIZE, paramLabel = "N",
            description = "Blocks per forward pass; does not change the result (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = {"--neat_packing", "--neat-packing"}, arity = "0..1", fallbackValue = "true", paramLabel = "BOOL",
            description = "Score each document (line) of a block alone, as training with --neat_packing sees it (default: off).")
    boolean neatPacking;

    @Option(names = {"--general_eval_file", "--general-eval-file"}, paramLabel = "FILE",
            description = "General-domain held-out text: its perplexity on both models too, i.e. what the adaptation cost there (default: none).")
    Path generalEvalFile;

    @Option(names = {"--max-new-tokens", "--max_new_tokens"}, defaultValue = "" + CompareOptions.DEFAULT_MAX_NEW_TOKENS,
            paramLabel = "N", description = "New tokens per sample (default: ${DEFAULT-VALUE}).")
    int maxNewTokens;

    @Option(names = {"--top-p", "--top_p"}, defaultValue = "" + CompareOptions.DEFAULT_TOP_P, paramLabel = "X",
            description = "Nucleus filter of the sampling, with top-k 50 and temperature 1 (default: ${DEFAULT-VALUE}, the blog's recipe).")
    float topP;

    @Option(names = {"--eos-token-id", "--eos_token_id"}, split = ",", paramLabel = "ID",
            description = "End-of-text token id(s), comma-separated (default: the tokenizer's <|endoftext|>, </s> or [SEP]).")
    int[] eosTokenIds;

    @Option(names = "--threads", paramLabel = "N", description = "Worker threads (default: all cores).")
    Integer threads;

    @Option(names = "--output", defaultValue = "compare-report", paramLabel = "DIR",
            description = "Where report.md and report.html go (default: ${DEFAULT-VALUE}).")
    Path output;

    @Override
    public Integer call() throws IOException {
        List<String> lines = readPrompts(prompts);
        if (Files.exists(output) && !Files.isDirectory(output))
            throw new UserError("--output " + output + " exists and is not a directory");
        CompareOptions.Builder b = CompareOptions.builder().model(model).adapter(adapter).baseModel(baseModel)
                .baseAdapter(baseAdapter).data(data.prepared).textFile(data.textFile).blockSize(blockSize)
                .batchSize(batchSize).prompts(lines).seed(seed).numReturnSequences(numReturnSequences)
                .maxNewTokens(maxNewTokens).topP(topP).neatPacking(neatPacking).generalEvalFile(generalEvalFile);
        if (eosTokenIds != null) b.eosTokenIds(eosTokenIds);
        if (threads != null) b.threads(threads);
        CompareReport r = Cpt4j.compare(b.build(), s -> System.err.println("compare: " + s));
        r.write(output);
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        out.printf(Locale.ROOT, "perplexity on %d held-out blocks (%s): %s %.4f -> %s %.4f (%+.1f%%)%n",
                r.blocks(), r.evalSource(), r.before().heading(), r.perplexityBefore(), r.after().heading(),
                r.perplexityAfter(), 100 * r.perplexityChange());
        if (r.general() != null)
            out.printf(Locale.ROOT, "general-domain perplexity on %d blocks (%s): %s %.4f -> %s %.4f (%+.1f%%)%n",
                    r.general().blocks(), r.general().source(), r.before().heading(), r.general().perplexityBefore(),
                    r.after().heading(), r.general().perplexityAfter(), 100 * r.general().perplexityChange());
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
