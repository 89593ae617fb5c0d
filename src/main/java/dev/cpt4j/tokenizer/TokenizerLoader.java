package dev.cpt4j.tokenizer;

import java.nio.file.Path;

/** Finds and loads the tokenizer files in a directory or a file path. */
final class TokenizerLoader {
    private TokenizerLoader() {}

    static Tokenizer load(Path path) {
        throw new UnsupportedOperationException("tokenizer loading is being written");
    }
}
