package dev.cpt4j.tokenizer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The one list of tokenizer file names: which files {@link Tokenizer#load} reads a directory's tokenizer from, and
 * every file that belongs to a tokenizer (what training output, merged models and adapters carry along).
 */
public final class TokenizerFiles {
    private TokenizerFiles() {}

    /**
     * The files a tokenizer is loaded from, in the order {@link Tokenizer#load} tries them in a directory:
     * {@code tokenizer.json} (HF tokenizers), {@code vocab.txt} (BertTokenizer), {@code vocab.json} (GPT2Tokenizer,
     * with {@code merges.txt}), {@code encoder.json} (OpenAI's, with {@code vocab.bpe}), {@code tokenizer.model}
     * (SentencePiece).
     */
    public static final List<String> MAIN = List.of("tokenizer.json", "vocab.txt", "vocab.json", "encoder.json",
            "tokenizer.model");

    /** The transformers-side files read beside a main file. */
    public static final List<String> SIDE = List.of("tokenizer_config.json", "special_tokens_map.json",
            "added_tokens.json", "merges.txt", "vocab.bpe");

    /** Every tokenizer file: {@link #MAIN} then {@link #SIDE} (copied along when present). */
    public static final List<String> ALL = List.of("tokenizer.json", "vocab.txt", "vocab.json", "encoder.json",
            "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "merges.txt",
            "vocab.bpe");

    /** True when {@code dir} holds one of the {@link #MAIN} files. */
    public static boolean present(Path dir) {
        for (String f : MAIN) if (Files.isRegularFile(dir.resolve(f))) return true;
        return false;
    }
}
