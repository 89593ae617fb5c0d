package dev.cpt4j.cli;

import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tokenizer.LineEncoder;
import dev.cpt4j.tokenizer.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.BufferedWriter;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code cpt4j tokenize}: one JSON array of token ids per input line, on stdout. */
@Command(name = "tokenize", mixinStandardHelpOptions = true,
        description = "Encode each line of a text file (split on \\n only) into a JSON array of token ids, one per output line.")
final class TokenizeCommand implements Callable<Integer> {
    @Option(names = "--tokenizer", required = true, paramLabel = "PATH", description = "Tokenizer directory or file (tokenizer.json, vocab.txt, vocab.json, tokenizer.model). Required.")
    Path tokenizer;

    @Option(names = "--input", required = true, paramLabel = "FILE", description = "UTF-8 text file. Required.")
    Path input;

    @Option(names = {"--no-special-tokens", "--no_special_tokens"}, description = "Do not add the post-processor's special tokens (e.g. [CLS] … [SEP]) (default: off (they are added)).")
    boolean noSpecialTokens;

    @Override
    public Integer call() throws Exception {
        Tokenizer tok = Tokenizer.load(tokenizer);
        var lines = LineEncoder.readLines(input);
        var out = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8), 1 << 16);
        try (Parallel par = Parallel.allCores()) {
            LineEncoder.encodeLines(tok, lines, !noSpecialTokens, par, out);
        }
        return 0;
    }
}
