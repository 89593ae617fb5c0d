package dev.cpt4j.cli;

import picocli.CommandLine.Command;

/** Placeholder until this subcommand lands. */
@Command(name = "compare", description = "(not yet available)")
final class CompareCommand implements java.util.concurrent.Callable<Integer> {
    @Override
    public Integer call() {
        throw new dev.cpt4j.UserError("'compare' is not available in this build yet");
    }
}
