package dev.cpt4j.tokenizer;

import java.util.Map;

/** Turns one pre-tokenized word into ids (tokenizers' {@code Model}: WordPiece or BPE). */
interface Model {
    void encode(String s, int start, int end, IntList out);

    /** The base vocabulary, token → id (added tokens excluded). */
    Map<String, Integer> vocab();

    /** Token string of an id, or null. */
    String idToToken(int id);
}
