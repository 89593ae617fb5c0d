package dev.cpt4j.cli;

import dev.cpt4j.demo.Demo;
import dev.cpt4j.generate.CompareReport;
import dev.cpt4j.train.Progress;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code cpt4j demo}: the whole mission on the shipped base model (see {@link Demo}). */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = {"Continued pretraining end to end on the small Chinese base model shipped with cpt4j.",
                "Song ci (a form and script the base has barely seen) → held-out perplexity → LoRA (r 8, α 32, c_attn; "
                        + "wte + lm_head trained) → perplexity after → samples before/after from the same prompts and seeds."})
final class DemoCommand implements Callable<Integer> {
    @Option(names = {"--output", "--output_dir", "--output-dir"}, paramLabel = "DIR",
            description = "Where the demo writes corpus, prepared blocks, adapter and report (default: ${DEFAULT-VALUE}).")
    Path output = Path.of("cpt4j-demo");
    @Option(names = {"--base-model", "--base_model"}, paramLabel = "DIR",
            description = "Base model (default: models/cpt4j-poetry-base of this checkout).")
    Path baseModel;
    @Option(names = {"--max-steps", "--max_steps"}, paramLabel = "N", description = "LoRA steps (default: ${DEFAULT-VALUE}).")
    int maxSteps = 120;
    @Option(names = "--threads", paramLabel = "N", description = "Compute threads (default: all cores).")
    Integer threads;
    @Option(names = "--offline", description = "Don't try npm; use the bundled Song ci excerpt unless the full corpus is cached (default: try npm).")
    boolean offline;
    @Option(names = "--excerpt", description = "Always use the Song ci excerpt bundled in cpt4j, faster: every 11th ci (default: the full corpus).")
    boolean excerpt;
    @Option(names = "--json", description = "Print the result as one JSON object on the last stdout line (default: text only).")
    boolean json;

    @Override
    public Integer call() {
        String homeProp = System.getProperty("cpt4j.home");
        Path home = homeProp != null ? Path.of(homeProp) : Path.of("").toAbsolutePath();
        Path base = baseModel != null ? baseModel : home.resolve("models/cpt4j-poetry-base");
        int n = threads != null ? threads : Runtime.getRuntime().availableProcessors();
        PrintStream log = System.err;
        Demo.Options o = new Demo.Options(home, base, output.toAbsolutePath(), maxSteps, n,
                excerpt ? Demo.Corpus.EXCERPT : offline ? Demo.Corpus.OFFLINE : Demo.Corpus.AUTO);
        Demo.Result r;
        try (Progress progress = Progress.forTerminal(log)) {
            r = Demo.run(o, DemoCommand::parseTrainFlags, log, progress);
        }
        PrintStream out = System.out;
        CompareReport c = r.comparison();
        out.println();
        out.println("cpt4j demo — continued pretraining of a Tang/Song-shi GPT-2 on Song ci (LoRA r 8, α 32, c_attn; wte + lm_head trained)");
        out.printf(Locale.ROOT, "  corpus:            %s%n", r.corpus());
        out.printf(Locale.ROOT, "  held-out:          %d blocks of %d tokens%n", r.heldOutBlocks(), Demo.BLOCK);
        out.printf(Locale.ROOT, "  perplexity before: %.1f%n", r.perplexityBefore());
        out.printf(Locale.ROOT, "  perplexity after:  %.1f   (%+.1f %%)%n", r.perplexityAfter(), 100 * r.change());
        if (c.general() != null)
            out.printf(Locale.ROOT, "  forgetting:        perplexity on %d blocks of Tang shi (the base's own domain) %.1f -> %.1f   (%+.1f %%)%n",
                    c.general().blocks(), c.general().perplexityBefore(), c.general().perplexityAfter(),
                    100 * c.general().perplexityChange());
        out.printf(Locale.ROOT, "  training:          %d steps in %.0f s; whole demo %.0f s%n", r.steps(), r.trainSeconds(), r.totalSeconds());
        out.println("  samples (same prompt, same seed; before = base, after = base + adapter):");
        for (CompareReport.PromptSamples s : c.samples()) for (String line : Demo.sideBySide(s)) out.println(line);
        out.printf(Locale.ROOT, "  adapter (peft format): %s%n  report: %s/report.md and report.html%n", r.adapter(), r.report());
        if (json) out.println(r.toJson());
        return 0;
    }

    /** The train command's own parsing and validation, so the demo runs exactly what {@code cpt4j train} runs. */
    static dev.cpt4j.train.TrainOptions parseTrainFlags(List<String> flags) {
        TrainCommand t = new TrainCommand();
        new CommandLine(t).setOverwrittenOptionsAllowed(true).parseArgs(flags.toArray(String[]::new));
        return t.options();
    }
}
