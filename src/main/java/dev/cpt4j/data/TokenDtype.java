package dev.cpt4j.data;

/**
 * How token ids are stored on disk: little-endian unsigned 16-bit when every id fits (vocabulary of at most 65,536),
 * else unsigned 32-bit (ids stay below 2³¹ in practice).
 */
public enum TokenDtype {
    U16(2),
    U32(4);

    private final int bytes;

    TokenDtype(int bytes) {
        this.bytes = bytes;
    }

    /** Bytes per token. */
    public int bytes() {
        return bytes;
    }

    /** The narrowest type that holds every id of a vocabulary of {@code vocabSize} tokens. */
    public static TokenDtype forVocab(int vocabSize) {
        return vocabSize <= 65536 ? U16 : U32;
    }

    /** Name used in the manifest: "u16" or "u32". */
    public String id() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    static TokenDtype fromId(String id) {
        for (TokenDtype d : values()) if (d.id().equals(id)) return d;
        throw new IllegalArgumentException("unknown token dtype '" + id + "'");
    }
}
