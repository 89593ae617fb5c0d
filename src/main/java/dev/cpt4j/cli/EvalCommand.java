package dev.cpt4j.cli;

import picocli.CommandLine.Command;

/** Placeholder until this subcommand lands. */
@Command(name = "eval", description = "(not yet available)")
final class EvalCommand implements java.util.concurrent.Callable<Integer> {
    @Override
    public Integer call() {
        throw new dev.cpt4j.UserError("'eval' is not available in this build yet");
    }
}
