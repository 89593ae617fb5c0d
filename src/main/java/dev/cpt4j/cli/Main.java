package dev.cpt4j.cli;

import dev.cpt4j.UserError;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * cpt4j's command line: parses, validates and calls the library. A user mistake ({@link UserError}, a bad flag)
 * prints one line and exits 2; any other failure, an {@link OutOfMemoryError} included, prints one line and exits 1;
 * {@code --verbose} adds stack traces.
 */
@Command(name = "cpt4j", mixinStandardHelpOptions = true, version = "cpt4j 0.1.0",
        description = "Continued pretraining of language models on the JVM.",
        subcommands = {
            PrepareCommand.class, TrainCommand.class, EvalCommand.class, GenerateCommand.class,
            CompareCommand.class, TokenizeCommand.class, MergeCommand.class, TokenizerCommand.class,
            DemoCommand.class, BenchCommand.class, ServeCommand.class,
        })
public final class Main implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    public static void main(String[] args) {
        System.exit(execute(args));
    }

    /** Runs the CLI and returns the exit code (for tests). */
    public static int execute(String... args) {
        boolean verbose = java.util.Arrays.asList(args).contains("--verbose");
        String[] rest = java.util.Arrays.stream(args).filter(a -> !a.equals("--verbose")).toArray(String[]::new);
        CommandLine cl = new CommandLine(new Main());
        cl.setCaseInsensitiveEnumValuesAllowed(true);
        cl.setOverwrittenOptionsAllowed(true);   // a repeated flag takes its last value, as argparse does
        cl.setParameterExceptionHandler((ex, a) -> {
            System.err.println("cpt4j: " + parameterMessage(ex) + " (see: cpt4j " + ex.getCommandLine().getCommandName() + " --help)");
            return 2;
        });
        cl.setExecutionExceptionHandler((ex, commandLine, parseResult) -> {
            if (verbose) ex.printStackTrace();
            for (Throwable c = ex; c != null; c = c.getCause())
                if (c instanceof OutOfMemoryError) return outOfMemory();
            if (ex instanceof UserError) {
                System.err.println("cpt4j: " + ex.getMessage());
                return 2;
            }
            String msg = ex.getMessage() == null ? ex.getClass().getSimpleName() : ex.getMessage();
            System.err.println("cpt4j: error: " + msg + (verbose ? "" : " (run with --verbose for details)"));
            return 1;
        });
        try {
            return cl.execute(rest);
        } catch (OutOfMemoryError e) {   // picocli passes Errors through; the allocation that failed is garbage now
            if (verbose) e.printStackTrace();
            return outOfMemory();
        }
    }

    /**
     * picocli's message, but an unknown option gets a "did you mean" from the command's own options
     * ({@code unknown option --lora_rnak; did you mean --lora_rank?}).
     */
    static String parameterMessage(CommandLine.ParameterException ex) {
        if (!(ex instanceof CommandLine.UnmatchedArgumentException u) || u.getUnmatched().isEmpty()) return ex.getMessage();
        String first = u.getUnmatched().get(0);
        if (!first.startsWith("-")) return ex.getMessage();
        String flag = first.contains("=") ? first.substring(0, first.indexOf('=')) : first;
        String best = closest(flag, u.getCommandLine().getCommandSpec());
        return "unknown option " + flag + (best != null ? "; did you mean " + best + "?" : "");
    }

    /** The visible option name nearest to {@code flag} (edit distance, '-' and '_' alike), or null when none is near. */
    static String closest(String flag, CommandLine.Model.CommandSpec spec) {
        String norm = flag.replace('-', '_').toLowerCase(java.util.Locale.ROOT);
        String best = null;
        int bestD = Integer.MAX_VALUE;
        for (CommandLine.Model.OptionSpec o : spec.options()) {
            if (o.hidden()) continue;
            for (String n : o.names()) {
                if (!n.startsWith("--")) continue;
                int d = distance(norm, n.replace('-', '_').toLowerCase(java.util.Locale.ROOT));
                if (d < bestD) {
                    bestD = d;
                    best = o.longestName().contains("_") ? preferSnake(o) : o.longestName();
                }
            }
        }
        return bestD <= Math.max(2, norm.length() / 4) ? best : null;
    }

    private static String preferSnake(CommandLine.Model.OptionSpec o) {
        for (String n : o.names()) if (n.contains("_")) return n;
        return o.longestName();
    }

    /** Levenshtein distance. */
    private static int distance(String a, String b) {
        int[] prev = new int[b.length() + 1], cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) prev[j] = j;
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++)
                cur[j] = Math.min(Math.min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1));
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
    }

    /** The one line for an {@link OutOfMemoryError} anywhere in a command; exit code 1. */
    private static int outOfMemory() {
        long mib = Runtime.getRuntime().maxMemory() >> 20;
        System.err.println("cpt4j: out of memory: the Java heap (at most " + mib + " MiB) is too small for this command; "
                + "give the JVM more with CPT4J_JAVA_OPTS=-Xmx<size> (e.g. -Xmx" + Math.max(2, 2 * ((mib + 1023) >> 10))
                + "g, if the machine has it), or use a smaller batch or block (train: also --gradient_checkpointing)");
        return 1;
    }
}
