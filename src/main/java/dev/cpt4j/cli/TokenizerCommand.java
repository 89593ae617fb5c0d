package dev.cpt4j.cli;

import dev.cpt4j.tokenizer.VocabExtender;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code cpt4j tokenizer extend|train}: vocabulary extension and training from scratch. */
@Command(name = "tokenizer", mixinStandardHelpOptions = true,
        description = "Extend a tokenizer's vocabulary from a domain corpus, or train one from scratch.",
        subcommands = {TokenizerCommand.Extend.class, TokenizerCommand.Train.class})
final class TokenizerCommand implements Runnable {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    static void print(VocabExtender.Report r) {
        System.out.printf("wrote %s%n", r.tokenizerJson());
        if (r.sentencePieceModel() != null) System.out.printf("wrote %s (SentencePiece, the base's pieces plus the new ones)%n", r.sentencePieceModel());
        System.out.printf("vocabulary: %d -> %d ids (%d new tokens, %d new merges)%n", r.baseVocabSize(), r.newVocabSize(), r.newTokens(), r.newMerges());
        if (Double.isNaN(r.tokensPer1kCharsBefore())) {
            System.out.printf("held-out text (%d lines, %d chars): %.1f tokens per 1,000 chars%n", r.heldOutLines(), r.heldOutChars(), r.tokensPer1kCharsAfter());
        } else {
            System.out.printf("held-out text (%d lines, %d chars): %.1f -> %.1f tokens per 1,000 chars (%.1f%%)%n", r.heldOutLines(), r.heldOutChars(),
                    r.tokensPer1kCharsBefore(), r.tokensPer1kCharsAfter(), 100.0 * (r.tokensPer1kCharsAfter() / r.tokensPer1kCharsBefore() - 1));
        }
    }

    @Command(name = "extend", mixinStandardHelpOptions = true,
            description = {"Learn N new tokens (BPE merges, or WordPiece pieces) from *.txt files; existing ids stay unchanged.", "Every 20th line is held out for the report."})
    static final class Extend implements Callable<Integer> {
        @Option(names = "--base", required = true, paramLabel = "PATH", description = "Tokenizer to extend (directory or file). Required.")
        Path base;

        @Option(names = "--corpus", required = true, paramLabel = "DIR", description = "Directory of *.txt files, one example per line. Required.")
        Path corpus;

        @Option(names = "--add", required = true, paramLabel = "N", description = "Number of new tokens (merges) to learn. Required.")
        int add;

        @Option(names = "--output", required = true, paramLabel = "DIR", description = "Output directory: tokenizer.json, plus tokenizer.model when the base ships one, and the base's tokenizer_config.json / special_tokens_map.json. Required.")
        Path output;

        @Override
        public Integer call() {
            print(VocabExtender.extend(base, corpus, add, output));
            return 0;
        }
    }

    @Command(name = "train", mixinStandardHelpOptions = true, description = "Train a tokenizer from scratch on *.txt files.")
    static final class Train implements Callable<Integer> {
        @Option(names = "--corpus", required = true, paramLabel = "DIR", description = "Directory of *.txt files, one example per line. Required.")
        Path corpus;

        @Option(names = "--type", defaultValue = "bpe", paramLabel = "bpe|wordpiece", description = "bpe (GPT-2 byte-level) or wordpiece (BERT) (default: ${DEFAULT-VALUE}).")
        String type;

        @Option(names = {"--vocab-size", "--vocab_size"}, required = true, paramLabel = "N", description = "Target vocabulary size. Required.")
        int vocabSize;

        @Option(names = "--output", required = true, paramLabel = "DIR", description = "Output directory (tokenizer.json is written there). Required.")
        Path output;

        @Override
        public Integer call() {
            print(VocabExtender.train(corpus, type.toLowerCase(java.util.Locale.ROOT), vocabSize, output));
            return 0;
        }
    }
}
