package dev.cpt4j.cli;

import picocli.CommandLine.Command;

/** Placeholder until this subcommand lands. */
@Command(name = "tokenize", description = "(not yet available)")
final class TokenizeCommand implements java.util.concurrent.Callable<Integer> {
    @Override
    public Integer call() {
        throw new dev.cpt4j.UserError("'tokenize' is not available in this build yet");
    }
}
