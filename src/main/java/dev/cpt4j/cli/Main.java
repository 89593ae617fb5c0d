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
        cl.setParameterExceptionHandler((ex, a) -> {
            System.err.println("cpt4j: " + ex.getMessage() + " (see: cpt4j " + ex.getCommandLine().getCommandName() + " --help)");
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

    /** The one line for an {@link OutOfMemoryError} anywhere in a command; exit code 1. */
    private static int outOfMemory() {
        long mib = Runtime.getRuntime().maxMemory() >> 20;
        System.err.println("cpt4j: out of memory: the Java heap (at most " + mib + " MiB) is too small for this command; "
                + "give the JVM more with CPT4J_JAVA_OPTS=-Xmx<size> (e.g. -Xmx" + Math.max(2, 2 * ((mib + 1023) >> 10))
                + "g, if the machine has it), or use a smaller batch or block (train: also --gradient_checkpointing)");
        return 1;
    }
}
