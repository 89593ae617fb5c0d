package dev.cpt4j.tokenizer;

import dev.cpt4j.UserError;

import java.nio.file.Path;

/** SentencePiece {@code tokenizer.model} loading. */
final class SentencePieceLoader {
    private SentencePieceLoader() {}

    static Tokenizer load(Path file, Path dir) {
        throw new UserError("tokenizer file " + file + ": SentencePiece .model files are not supported yet; convert it to tokenizer.json (transformers: AutoTokenizer.from_pretrained(dir).save_pretrained(out))");
    }
}
