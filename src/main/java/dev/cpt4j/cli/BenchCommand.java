package dev.cpt4j.cli;

import picocli.CommandLine.Command;

/** Placeholder until this subcommand lands. */
@Command(name = "bench", description = "(not yet available)")
final class BenchCommand implements java.util.concurrent.Callable<Integer> {
    @Override
    public Integer call() {
        throw new dev.cpt4j.UserError("'bench' is not available in this build yet");
    }
}
