package dev.cpt4j.cli;

import dev.cpt4j.data.Prepare;
import dev.cpt4j.data.PrepareOptions;
import dev.cpt4j.data.PrepareProgress;
import dev.cpt4j.data.TokenStore;
import dev.cpt4j.tokenizer.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code cpt4j prepare}: tokenizes a corpus into a reusable, memory-mapped token store (see {@link Prepare}). */
@Command(name = "prepare", mixinStandardHelpOptions = true,
        description = {"Tokenize a corpus into packed blocks for training (train does it too, into the same cache).",
                "Every line of every *.txt (or the \"text\" of every *.jsonl record, .gz allowed) is one example, "
                + "tokenized with special tokens, concatenated and cut into --block_size blocks; a fraction of blocks "
                + "is held out for validation.",
                "The result is reused while the tokenizer, block size, split and files stay the same; an interrupted "
                + "run resumes with the files it had finished."})
final class PrepareCommand implements Callable<Integer> {
    @Option(names = {"--tokenizer", "--tokenizer_name_or_path", "--tokenizer-name-or-path"}, required = true,
            paramLabel = "PATH", description = "Tokenizer directory or file (tokenizer.json, vocab.txt, ...). Required.")
    Path tokenizer;

    @Option(names = {"--dataset_dir", "--dataset-dir"}, required = true, split = ",", paramLabel = "DIR",
            description = "Corpus directory (searched recursively) or files; repeat or separate with commas. Required.")
    List<Path> dataset;

    @Option(names = {"--block_size", "--block-size"}, required = true, paramLabel = "N",
            description = "Tokens per training block (the Chinese-LLaMA-Alpaca recipe uses 512). Required.")
    int blockSize;

    @Option(names = {"--output", "--data_cache_dir", "--data-cache-dir"}, required = true, paramLabel = "DIR",
            description = "Where the token store goes (new, empty, or a previous store). Required.")
    Path output;

    @Option(names = {"--validation_split_percentage", "--validation-split-percentage"}, paramLabel = "FRACTION",
            description = "Fraction of blocks held out (a fraction, as in run_clm_pt_with_peft.py: 0.001 = 0.1 %%); "
                    + "any FRACTION > 0 holds out at least one block when there are 2 or more (default: ${DEFAULT-VALUE}, "
                    + "as cpt4j train).")
    double validationFraction = PrepareOptions.DEFAULT_VALIDATION_FRACTION;

    @Option(names = {"--preprocessing_num_workers", "--preprocessing-num-workers"}, paramLabel = "N",
            description = "Tokenizer threads (default: all cores).")
    Integer workers;

    @Option(names = "--seed", paramLabel = "N", description = "Seed of the validation split (train uses the same) (default: ${DEFAULT-VALUE}).")
    long seed = PrepareOptions.DEFAULT_SEED;

    @Option(names = {"--skip-invalid-lines", "--skip_invalid_lines"},
            description = "Skip and count lines that are not valid UTF-8 (or JSON) instead of stopping (default: off).")
    boolean skipInvalidLines;

    @Option(names = {"--no-progress", "--no_progress"}, description = "No progress bar (there is none either when stderr is not a terminal) (default: off).")
    boolean noProgress;

    @Override
    public Integer call() {
        PrepareOptions o = new PrepareOptions(dataset, output, blockSize, validationFraction,
                workers == null ? Runtime.getRuntime().availableProcessors() : workers, seed, skipInvalidLines, 0);
        Prepare.check(o); // dataset and output first: a mistake there should not wait for the tokenizer
        if (!Files.exists(tokenizer)) {
            String hub = dev.cpt4j.io.HubIds.hint(tokenizer);
            throw new dev.cpt4j.UserError("tokenizer " + tokenizer + " does not exist"
                    + (hub.isEmpty() ? "; pass --tokenizer with a tokenizer directory or file" : hub));
        }
        Tokenizer tok = Tokenizer.load(tokenizer);
        dev.cpt4j.dist.Collective comm = dev.cpt4j.dist.Collectives.fromEnvironment();
        if (comm.size() > 1) {
            // under mpirun: every rank tokenizes its share of the files, rank 0 assembles the store and prints it
            try {
                Prepare.tokenizeShare(o, tok, comm.rank(), comm.size(), msg -> { });
                comm.barrier();
                if (comm.isRoot()) {
                    try (TokenStore store = Prepare.run(o, tok, msg -> System.err.println("cpt4j: " + msg))) {
                        System.out.println(store.dir());
                    }
                }
                comm.barrier();
                comm.close();
                return 0;
            } catch (RuntimeException e) {
                System.err.println("cpt4j: rank " + comm.rank() + " of " + comm.size() + ": " + e.getMessage()
                        + "; stopping every rank");
                comm.abort(e instanceof dev.cpt4j.UserError ? 2 : 1);
                throw e;
            }
        }
        PrepareProgress progress = noProgress || !dev.cpt4j.train.Progress.terminal(System.getenv(dev.cpt4j.train.Progress.ENV),
                System.getProperty(dev.cpt4j.train.Progress.TERMINAL_PROPERTY))
                ? PrepareProgress.none() : PrepareProgress.console(System.err);
        try (TokenStore store = Prepare.run(o, tok, msg -> System.err.println("cpt4j: " + msg), progress)) {
            System.out.println(store.dir());
        }
        return 0;
    }
}
