package dev.cpt4j.tokenizer;

import java.nio.file.Path;

/**
 * A text tokenizer loaded from Hugging Face files. Implementations are immutable and thread-safe.
 */
public interface Tokenizer {
    /** Token ids of {@code text}; with {@code addSpecialTokens} the post-processor's special tokens are added, as HF does. */
    int[] encode(String text, boolean addSpecialTokens);

    /** Text for people: special tokens skipped, no spaces between CJK characters, word pieces joined. */
    String decode(int[] ids);

    /** Number of ids, added tokens included (the embedding rows a model needs). */
    int vocabSize();

    /** Id of a token string (vocabulary or added token), or -1 if absent. */
    int tokenToId(String token);

    /** Stable hash of everything that affects encoding; a change invalidates prepared data. */
    String fingerprint();

    /** Loads a tokenizer from a directory or a file (tokenizer.json, vocab.txt, vocab.json, tokenizer.model). */
    static Tokenizer load(Path path) {
        return TokenizerLoader.load(path);
    }
}
