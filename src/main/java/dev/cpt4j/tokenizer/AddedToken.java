package dev.cpt4j.tokenizer;

/** A token matched in raw text before pre-tokenization (tokenizers' {@code AddedToken}). */
record AddedToken(int id, String content, boolean special, boolean lstrip, boolean rstrip, boolean singleWord,
                  boolean normalized) {}
