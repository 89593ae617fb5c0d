package dev.cpt4j.cli;

import picocli.CommandLine.Command;

/** Placeholder until this subcommand lands. */
@Command(name = "tokenizer", description = "(not yet available)")
final class TokenizerCommand implements java.util.concurrent.Callable<Integer> {
    @Override
    public Integer call() {
        throw new dev.cpt4j.UserError("'tokenizer' is not available in this build yet");
    }
}
