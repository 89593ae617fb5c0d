package dev.cpt4j;

import dev.cpt4j.data.Prepare;
import dev.cpt4j.data.PrepareOptions;
import dev.cpt4j.data.PrepareProgress;
import dev.cpt4j.data.TokenStore;
import dev.cpt4j.generate.CompareOptions;
import dev.cpt4j.generate.CompareReport;
import dev.cpt4j.generate.Comparison;
import dev.cpt4j.generate.EvalOptions;
import dev.cpt4j.generate.Evaluation;
import dev.cpt4j.generate.GenerateOptions;
import dev.cpt4j.generate.TextGeneration;
import dev.cpt4j.tokenizer.Tokenizer;
import dev.cpt4j.train.TrainOptions;
import dev.cpt4j.train.Trainer;

import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;

/**
 * cpt4j as a Java library: the five things the command line does, one call each, configured by the same options
 * the commands build ({@code cpt4j prepare | train | eval | generate | compare} are thin layers on these calls).
 * Every option type has a builder with the command line's defaults:
 *
 * <pre>{@code
 * Cpt4j.Prepared data = Cpt4j.prepare(Path.of("models/base"),
 *         PrepareOptions.builder().dataset(Path.of("corpus")).output(Path.of("cache")).blockSize(512).build());
 * Trainer.Result run = Cpt4j.train(TrainOptions.builder()
 *         .modelNameOrPath(Path.of("models/base")).dataCacheDir(Path.of("cache")).blockSize(512)
 *         .outputDir(Path.of("out")).loraRank(8).loraAlpha(32).trainable(List.of("c_attn")).maxSteps(100).build());
 * Evaluation.Result r = Cpt4j.eval(EvalOptions.builder()
 *         .model(Path.of("models/base")).adapter(Path.of("out")).textFile(Path.of("test.txt")).build());
 * List<TextGeneration.Sample> s = Cpt4j.generate(GenerateOptions.builder()
 *         .model(Path.of("models/base")).adapter(Path.of("out")).prompt("床前明月光").maxNewTokens(32).build());
 * }</pre>
 *
 * <p>Wherever a model or an adapter is taken, a training run's output folder or one of its {@code checkpoint-N}
 * folders may be given ({@link dev.cpt4j.hf.ModelSource}). A mistake in the input (a path, a setting) is a
 * {@link UserError} whose message says what to change; the calls print nothing unless given a stream. Worked
 * examples: {@code docs/LIBRARY.md}.
 */
public final class Cpt4j {
    private Cpt4j() {}

    /**
     * A prepared token store, summarized (the store itself is closed again).
     *
     * @param dir              the store directory, for {@link TrainOptions.Builder#dataCacheDir} or
     *                         {@link CompareOptions.Builder#data}
     * @param blockSize        tokens per block
     * @param trainBlocks      training blocks
     * @param validationBlocks held-out blocks
     */
    public record Prepared(Path dir, int blockSize, long trainBlocks, long validationBlocks) {}

    /**
     * Tokenizes a corpus into packed blocks ({@code cpt4j prepare}) with the tokenizer in {@code tokenizer} (a
     * model directory or a tokenizer file), quietly.
     */
    public static Prepared prepare(Path tokenizer, PrepareOptions o) {
        return prepare(tokenizer, o, null);
    }

    /** As {@link #prepare(Path, PrepareOptions)}, with one line per stage to {@code log} (may be null). */
    public static Prepared prepare(Path tokenizer, PrepareOptions o, Consumer<String> log) {
        Prepare.check(o); // dataset and output first: a mistake there should not wait for the tokenizer
        if (tokenizer == null || !Files.exists(tokenizer))
            throw new UserError("tokenizer " + tokenizer + " does not exist; pass --tokenizer with a tokenizer directory or file");
        Tokenizer tok = Tokenizer.load(tokenizer);
        try (TokenStore store = Prepare.run(o, tok, log == null ? m -> {} : log, PrepareProgress.none())) {
            return new Prepared(store.dir(), store.blockSize(), store.train().blockCount(), store.validation().blockCount());
        }
    }

    /**
     * Trains ({@code cpt4j train}): continued pretraining with LoRA or in full, checkpoints, the final adapter or model
     * in {@link TrainOptions#outputDir()}; quietly (the metrics still go to {@code metrics.jsonl}).
     */
    public static Trainer.Result train(TrainOptions o) {
        return Trainer.train(o, new PrintStream(OutputStream.nullOutputStream()));
    }

    /** As {@link #train(TrainOptions)}, with the progress and messages the command prints going to {@code log}. */
    public static Trainer.Result train(TrainOptions o, PrintStream log) {
        return Trainer.train(o, log);
    }

    /** Held-out loss and perplexity of a model, optionally with an adapter ({@code cpt4j eval}). */
    public static Evaluation.Result eval(EvalOptions o) {
        return Evaluation.evaluate(o);
    }

    /** Continues a prompt ({@code cpt4j generate}); one clean {@link TextGeneration.Sample} per returned sequence. */
    public static List<TextGeneration.Sample> generate(GenerateOptions o) {
        return TextGeneration.run(o, null);
    }

    /**
     * As {@link #generate(GenerateOptions)}; with one sequence, the text (prompt first) also goes to {@code stream}
     * piece by piece as it is generated.
     */
    public static List<TextGeneration.Sample> generate(GenerateOptions o, Consumer<String> stream) {
        return TextGeneration.run(o, stream);
    }

    /**
     * Compares two models on held-out perplexity and side-by-side samples ({@code cpt4j compare}); write the report
     * with {@link CompareReport#write}.
     */
    public static CompareReport compare(CompareOptions o) {
        return Comparison.run(o, null);
    }

    /** As {@link #compare(CompareOptions)}, with one line per stage to {@code progress} (may be null). */
    public static CompareReport compare(CompareOptions o, Consumer<String> progress) {
        return Comparison.run(o, progress);
    }
}
